"""Control panel: problem size, presets, randomize, eps, scheme, dtype, pitfall mode and loss options.

Controls never keep their own copy of the settings: they write through the
EditController and re-sync from the state with their signals blocked.
"""

from __future__ import annotations

import math

from PySide6.QtCore import QEvent, QLocale, QObject, QPointF, QSignalBlocker, Qt, Signal
from PySide6.QtGui import QWheelEvent
from PySide6.QtWidgets import (
    QAbstractScrollArea,
    QAbstractSpinBox,
    QApplication,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSlider,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from explorer.app.edits import EditController
from explorer.app.state import MAX_CLASSES, MAX_SAMPLES, Change
from explorer.core import (
    DTYPE_NAMES,
    EPS_MAX,
    EPS_MIN,
    EVALUATE_MODES,
    REDUCTIONS,
    SCHEMES,
    TOLERANCE_MODES,
    default_eps,
)
from explorer.files.numbers import parse_number
from explorer.files.presets import RANDOM_KINDS, get_preset, presets, random_labels, random_logits

__all__ = ["EVALUATE_LABELS", "PERTURB_LABELS", "TOLERANCE_LABELS", "ControlsPanel"]

#: Slider steps per decade of eps.
SLIDER_STEPS_PER_DECADE = 20

PERTURB_LABELS: dict[str, str] = {
    "element": "One element at a time (correct)",
    "row": "A whole row at once (pitfall)",
    "all": "All logits at once (pitfall)",
}
EVALUATE_LABELS: dict[str, str] = {
    "row": "Each row's loss",
    "loss": "The whole loss",
}
#: The sentence beside the Evaluate control: which real checks each mode matches.
EVALUATE_TIPS: dict[str, str] = {
    "row": "Differences each row's loss, as the origin question's code does (and a per-row check that "
    "re-evaluates only the sample it perturbs): the least rounding noise.",
    "loss": "Differences the whole reduced loss, as torch.autograd.gradcheck, jax.test_util.check_grads and "
    "most hand-written checks do: the rounding of the sum over rows and of the batch mean grows with the "
    "batch, and so do the noise and the best eps.",
}
TOLERANCE_LABELS: dict[str, str] = {
    "noise": "Expected noise",
    "fixed": "Fixed atol + rtol·|ana|",
}
TOLERANCE_TIPS: dict[str, str] = {
    "noise": "Pass an element when |num − ana| is within a few times the error expected of the numeric "
    "estimate at this eps, dtype, scheme and evaluate mode",
    "fixed": "Pass an element when |num − ana| ≤ atol + rtol·|ana|, as torch.autograd.gradcheck "
    "(the defaults per dtype, or the atol and rtol given)",
}
REDUCTION_TIPS = {
    "mean": "Mean over rows (weighted by the label's class weight)",
    "sum": "Sum of row losses",
    "none": "Per-row losses; the gradient is that of their sum",
}


def _narrow(form: QFormLayout) -> None:
    """Let a form fit a narrow dock: labels above their fields when a row is too long for the dock."""
    form.setRowWrapPolicy(QFormLayout.RowWrapPolicy.WrapLongRows)


class _WheelNeedsFocus(QObject):
    """Hands a wheel event over an unfocused field to the scroll area around it (which scrolls)."""

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if event.type() != QEvent.Type.Wheel or not isinstance(watched, QWidget) or watched.hasFocus():
            return False
        assert isinstance(event, QWheelEvent)
        area = watched.parentWidget()
        while area is not None and not isinstance(area, QAbstractScrollArea):
            area = area.parentWidget()
        if area is not None:
            viewport = area.viewport()
            pos = QPointF(viewport.mapFromGlobal(event.globalPosition().toPoint()))
            QApplication.sendEvent(viewport, QWheelEvent(
                pos, event.globalPosition(), event.pixelDelta(), event.angleDelta(), event.buttons(),
                event.modifiers(), event.phase(), event.inverted()))  # fmt: skip
        return True  # not the field's


class ControlsPanel(QWidget):
    """All the knobs. Emits ``message(str)`` for the status bar when an input is refused."""

    message = Signal(str)

    def __init__(self, controller: EditController, parent: QWidget | None = None):
        super().__init__(parent)
        self.controller = controller
        self.state = controller.state
        layout = QVBoxLayout(self)
        layout.addWidget(self._build_problem_box())
        layout.addWidget(self._build_check_box())
        layout.addWidget(self._build_loss_box())
        layout.addStretch(1)
        self._loading_preset = False
        for combo in self.findChildren(QComboBox):  # narrow docks: combos shrink to 6 characters, not past the dock
            combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
            combo.setMinimumContentsLength(6)
        # The dock scrolls on small screens: a wheel turned over a field scrolls it, unless the field was clicked
        # first (a wheel over the Perturb box switched the check to the pitfall mode on the way down).
        self._wheel_guard = _WheelNeedsFocus(self)
        for field in (*self.findChildren(QComboBox), *self.findChildren(QAbstractSpinBox), *self.findChildren(QSlider)):
            field.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
            field.installEventFilter(self._wheel_guard)
        self.state.changed.connect(self._on_state_changed)
        self.sync_from_state()

    # ----------------------------------------------------------------- build
    def _build_problem_box(self) -> QGroupBox:
        box = QGroupBox("Problem")
        form = QFormLayout(box)
        _narrow(form)
        self.n_spin = QSpinBox(objectName="samplesSpin", minimum=1, maximum=MAX_SAMPLES)
        self.n_spin.setToolTip("N: number of samples (rows)")
        self.n_spin.setKeyboardTracking(False)
        self.c_spin = QSpinBox(objectName="classesSpin", minimum=1, maximum=MAX_CLASSES)
        self.c_spin.setToolTip("C: number of classes (columns)")
        self.c_spin.setKeyboardTracking(False)
        size = QHBoxLayout()
        size.addWidget(self.n_spin)
        size.addWidget(self.c_spin)
        form.addRow("Samples × classes", size)
        self.n_spin.valueChanged.connect(self._on_size_spin_changed)
        self.c_spin.valueChanged.connect(self._on_size_spin_changed)

        self.preset_combo = QComboBox(objectName="presetCombo")
        self.preset_combo.addItem("Choose a preset…", None)
        for p in presets():
            self.preset_combo.addItem(p.title, p.name)
            self.preset_combo.setItemData(self.preset_combo.count() - 1, p.description, Qt.ItemDataRole.ToolTipRole)
        self.preset_combo.setToolTip("Load a ready-made problem (undoable)")
        self.preset_combo.activated.connect(self._on_preset_combo_activated)
        form.addRow("Preset", self.preset_combo)
        self.preset_description = QLabel(objectName="presetDescription")
        self.preset_description.setWordWrap(True)
        self.preset_description.setVisible(False)
        form.addRow("", self.preset_description)

        self.random_kind = QComboBox(objectName="randomKindCombo")
        for kind, tip in RANDOM_KINDS.items():
            self.random_kind.addItem(kind, kind)
            self.random_kind.setItemData(self.random_kind.count() - 1, tip, Qt.ItemDataRole.ToolTipRole)
        self.random_kind.setToolTip("Distribution of random logits")
        self.seed_spin = QSpinBox(objectName="seedSpin", minimum=0, maximum=2**31 - 1)
        self.seed_spin.setToolTip("Random seed: the same seed gives the same grid")
        self.random_button = QPushButton("Randomize", objectName="randomizeButton")
        self.random_button.setToolTip("Fill the grid with random logits and labels (Ctrl+R)")
        self.random_button.clicked.connect(self.randomize)
        rnd = QHBoxLayout()
        rnd.addWidget(self.random_kind, 1)
        rnd.addWidget(self.random_button)
        form.addRow("Random", rnd)
        form.addRow("Seed", self.seed_spin)  # its own row: three fields side by side overflow a 1024 px screen's dock
        return box

    def _build_check_box(self) -> QGroupBox:
        box = QGroupBox("Finite differences")
        form = QFormLayout(box)
        _narrow(form)
        self.eps_edit = QLineEdit(objectName="epsEdit")
        self.eps_edit.setToolTip(
            f"Step eps, e.g. 1e-5 (between {EPS_MIN:g} and {EPS_MAX:g} on the slider; press Enter)"
        )
        self.eps_edit.setLocale(QLocale.c())
        self.eps_edit.returnPressed.connect(self._on_eps_edit_return_pressed)
        self.eps_edit.editingFinished.connect(self._on_eps_edit_editing_finished)
        self.eps_slider = QSlider(Qt.Orientation.Horizontal, objectName="epsSlider")
        self.eps_slider.setRange(
            round(math.log10(EPS_MIN) * SLIDER_STEPS_PER_DECADE), round(math.log10(EPS_MAX) * SLIDER_STEPS_PER_DECADE)
        )
        self.eps_slider.setToolTip("eps on a log scale, 1e-20 … 1e-1")
        self.eps_slider.valueChanged.connect(self._on_eps_slider_value_changed)
        self.default_eps_button = QPushButton("Default", objectName="defaultEpsButton")
        self.default_eps_button.setToolTip("The textbook optimum for this scheme and dtype, rounded to a power of ten")
        self.default_eps_button.clicked.connect(self._on_default_eps_clicked)
        eps_row = QHBoxLayout()
        eps_row.addWidget(self.eps_edit, 1)
        eps_row.addWidget(self.default_eps_button)
        form.addRow("eps", eps_row)
        form.addRow("", self.eps_slider)

        self.scheme_combo = QComboBox(objectName="schemeCombo")
        for name, sch in SCHEMES.items():
            self.scheme_combo.addItem(sch.label, name)
        self.scheme_combo.setToolTip(
            "Difference scheme: forward/backward O(h), central O(h²), 5-point O(h⁴), complex step"
        )
        self.scheme_combo.currentIndexChanged.connect(self._on_scheme_combo_changed)
        form.addRow("Scheme", self.scheme_combo)

        self.dtype_combo = QComboBox(objectName="dtypeCombo")
        for name in DTYPE_NAMES:
            self.dtype_combo.addItem(name, name)
        self.dtype_combo.setToolTip(
            "Precision the logits are rounded to and the check runs in (float16 and bfloat16 compute in "
            "float32 and round each result back, as PyTorch does on the CPU)"
        )
        self.dtype_combo.currentIndexChanged.connect(self._on_dtype_combo_changed)
        form.addRow("dtype", self.dtype_combo)

        self.perturb_combo = QComboBox(objectName="perturbCombo")
        for key, text in PERTURB_LABELS.items():
            self.perturb_combo.addItem(text, key)
        self.perturb_combo.setToolTip(
            "Pitfall mode: perturbing a whole row or all logits at once gives about 0 (shift invariance)"
        )
        self.perturb_combo.currentIndexChanged.connect(self._on_perturb_combo_changed)
        form.addRow("Perturb", self.perturb_combo)

        self.evaluate_combo = QComboBox(objectName="evaluateCombo")
        for key in EVALUATE_MODES:
            self.evaluate_combo.addItem(EVALUATE_LABELS[key], key)
            self.evaluate_combo.setItemData(
                self.evaluate_combo.count() - 1, EVALUATE_TIPS[key], Qt.ItemDataRole.ToolTipRole
            )
        self.evaluate_combo.currentIndexChanged.connect(self._on_evaluate_combo_changed)
        self.evaluate_note = QLabel(objectName="evaluateNote", wordWrap=True)
        form.addRow("Re-evaluate", self.evaluate_combo)
        form.addRow("", self.evaluate_note)

        self.tolerance_combo = QComboBox(objectName="toleranceCombo")
        for key in TOLERANCE_MODES:
            self.tolerance_combo.addItem(TOLERANCE_LABELS[key], key)
            self.tolerance_combo.setItemData(
                self.tolerance_combo.count() - 1, TOLERANCE_TIPS[key], Qt.ItemDataRole.ToolTipRole
            )
        self.tolerance_combo.setToolTip("Which tolerance decides the verdict")
        self.tolerance_combo.currentIndexChanged.connect(self._on_tolerance_combo_changed)
        form.addRow("Verdict", self.tolerance_combo)
        return box

    def _build_loss_box(self) -> QGroupBox:
        box = QGroupBox("Loss (torch cross_entropy)")  # a title wider than a 1024 px screen's dock would widen it
        box.setToolTip("The loss and its options, with torch.nn.functional.cross_entropy's meaning")
        form = QFormLayout(box)
        _narrow(form)
        self.reduction_combo = QComboBox(objectName="reductionCombo")
        for name in REDUCTIONS:
            self.reduction_combo.addItem(name, name)
            self.reduction_combo.setItemData(
                self.reduction_combo.count() - 1, REDUCTION_TIPS[name], Qt.ItemDataRole.ToolTipRole
            )
        self.reduction_combo.setToolTip("How row losses are combined")
        self.reduction_combo.currentIndexChanged.connect(self._on_reduction_combo_changed)
        form.addRow("Reduction", self.reduction_combo)

        self.smoothing_spin = QDoubleSpinBox(
            objectName="smoothingSpin", minimum=0.0, maximum=1.0, singleStep=0.05, decimals=3
        )
        self.smoothing_spin.setKeyboardTracking(False)
        self.smoothing_spin.setToolTip("Label smoothing s: the target becomes (1 − s)·onehot + s/C")
        self.smoothing_spin.valueChanged.connect(self._on_smoothing_spin_changed)
        form.addRow("Label smoothing", self.smoothing_spin)

        self.weights_edit = QLineEdit(objectName="weightsEdit")
        self.weights_edit.setPlaceholderText("none (all 1)")
        self.weights_edit.setToolTip("Class weights: C numbers separated by commas or spaces; empty for none")
        self.weights_edit.editingFinished.connect(self._on_weights_edit_finished)
        form.addRow("Class weights", self.weights_edit)

        self.ignore_spin = QSpinBox(objectName="ignoreIndexSpin", minimum=-1000, maximum=MAX_CLASSES)
        self.ignore_spin.setKeyboardTracking(False)
        self.ignore_spin.setToolTip(
            "Rows whose label equals this value are left out (PyTorch's ignore_index, default -100)"
        )
        self.ignore_spin.valueChanged.connect(self._on_ignore_spin_changed)
        form.addRow("ignore_index", self.ignore_spin)
        return box

    # ------------------------------------------------------------------ sync
    def _on_state_changed(self, change: Change) -> None:
        if not self._loading_preset and self.preset_combo.currentIndex() != 0:
            # The problem is no longer the preset as loaded: say so by showing no preset.
            with QSignalBlocker(self.preset_combo):
                self.preset_combo.setCurrentIndex(0)
            self.preset_description.setVisible(False)
        if change.shape or change.settings:  # what the controls show (a typed logit or label changes none of it)
            self.sync_from_state()

    def sync_from_state(self) -> None:
        """Show the state's values; signals blocked so nothing is written back."""
        s = self.state.settings
        n, c = self.state.shape
        widgets = (self.n_spin, self.c_spin, self.eps_slider, self.scheme_combo, self.dtype_combo, self.perturb_combo,
                   self.evaluate_combo, self.tolerance_combo, self.reduction_combo, self.smoothing_spin,
                   self.ignore_spin)  # fmt: skip
        blockers = [QSignalBlocker(w) for w in widgets]
        self.n_spin.setValue(n)
        self.c_spin.setValue(c)
        if not self.eps_edit.hasFocus() or self.eps_edit.text() == "":
            self.eps_edit.setText(f"{s.eps:g}")
        position = round(math.log10(s.eps) * SLIDER_STEPS_PER_DECADE)
        # An eps typed beyond the slider's range widens the range, so the slider never contradicts the field.
        if position < self.eps_slider.minimum():
            self.eps_slider.setMinimum(position)
        if position > self.eps_slider.maximum():
            self.eps_slider.setMaximum(position)
        self.eps_slider.setValue(position)
        self.scheme_combo.setCurrentIndex(self.scheme_combo.findData(s.scheme))
        self.dtype_combo.setCurrentIndex(self.dtype_combo.findData(s.dtype))
        self.perturb_combo.setCurrentIndex(self.perturb_combo.findData(s.perturb))
        self.evaluate_combo.setCurrentIndex(self.evaluate_combo.findData(s.evaluate))
        self.evaluate_combo.setToolTip(EVALUATE_TIPS[s.evaluate])
        self.evaluate_note.setText(EVALUATE_TIPS[s.evaluate])
        self.evaluate_combo.setEnabled(s.perturb == "element")
        self.tolerance_combo.setCurrentIndex(self.tolerance_combo.findData(s.tolerance))
        self.reduction_combo.setCurrentIndex(self.reduction_combo.findData(s.reduction))
        self.smoothing_spin.setValue(s.label_smoothing)
        self.ignore_spin.setValue(s.ignore_index)
        if not self.weights_edit.hasFocus():
            self.weights_edit.setText("" if s.weight is None else ", ".join(f"{w:g}" for w in s.weight))
        del blockers

    # ----------------------------------------------------------------- edits
    def _apply(self, what: str, **changes: object) -> bool:
        try:
            self.controller.set_settings(None, False, **changes)
        except ValueError as exc:
            self.message.emit(f"{what} unchanged: {exc}")
            self.sync_from_state()
            return False
        return True

    def _on_size_spin_changed(self, _value: int) -> None:
        try:
            self.controller.resize(self.n_spin.value(), self.c_spin.value())
        except ValueError as exc:
            self.message.emit(f"Size unchanged: {exc}")
            self.sync_from_state()

    def _on_preset_combo_activated(self, index: int) -> None:
        name = self.preset_combo.itemData(index)
        if name:
            self.load_preset(str(name))

    def load_preset(self, name: str) -> None:
        p = get_preset(name)
        settings = dict(p.settings)
        self._loading_preset = True
        try:
            self.controller.replace(p.logits, p.labels, text=f"Load preset “{p.title}”", **settings)
        finally:
            self._loading_preset = False
        # The loaded preset stays shown, with its whole description, until the problem changes.
        with QSignalBlocker(self.preset_combo):
            self.preset_combo.setCurrentIndex(max(0, self.preset_combo.findData(p.name)))
        self.preset_description.setText(p.description)
        self.preset_description.setVisible(True)
        self.message.emit(p.description)

    def randomize(self) -> None:
        n, c = self.state.shape
        kind = str(self.random_kind.currentData())
        seed = self.seed_spin.value()
        self.controller.replace(
            random_logits(n, c, kind, seed), random_labels(n, c, seed), text=f"Randomize ({kind}, seed {seed})"
        )
        self.message.emit(f"Random {kind} logits, seed {seed}")

    def _eps_from_text(self) -> None:
        text = self.eps_edit.text()
        try:
            eps = parse_number(text, what="eps")
            if eps <= 0:
                raise ValueError(f"eps must be > 0, got {text.strip()}")
        except ValueError as exc:
            self.message.emit(f"eps unchanged: {exc}")
            self.eps_edit.setText(f"{self.state.settings.eps:g}")
            return
        self._apply("eps", eps=eps)

    def _on_eps_edit_return_pressed(self) -> None:
        self._eps_from_text()

    def _on_eps_edit_editing_finished(self) -> None:
        if self.eps_edit.text() != f"{self.state.settings.eps:g}":
            self._eps_from_text()
        self.eps_edit.setText(f"{self.state.settings.eps:g}")

    def _on_eps_slider_value_changed(self, value: int) -> None:
        eps = float(f"{10.0 ** (value / SLIDER_STEPS_PER_DECADE):.3g}")
        try:
            self.controller.set_settings(text="Change eps", merge=True, eps=eps)
        except ValueError as exc:
            self.message.emit(f"eps unchanged: {exc}")
        self.eps_edit.setText(f"{self.state.settings.eps:g}")

    def _on_default_eps_clicked(self) -> None:
        s = self.state.settings
        self._apply("eps", eps=default_eps(s.scheme, s.dtype))

    def _on_scheme_combo_changed(self, index: int) -> None:
        self._apply("Scheme", scheme=self.scheme_combo.itemData(index))

    def _on_dtype_combo_changed(self, index: int) -> None:
        self._apply("dtype", dtype=self.dtype_combo.itemData(index))

    def _on_perturb_combo_changed(self, index: int) -> None:
        self._apply("Perturbation", perturb=self.perturb_combo.itemData(index))

    def _on_evaluate_combo_changed(self, index: int) -> None:
        self._apply("Re-evaluation", evaluate=self.evaluate_combo.itemData(index))

    def _on_tolerance_combo_changed(self, index: int) -> None:
        key = self.tolerance_combo.itemData(index)
        # Choosing the noise verdict drops tolerances given earlier (they would make it fixed again).
        changes: dict[str, object] = {"tolerance": key}
        if key == "noise":
            changes.update(atol=None, rtol=None)
        self._apply("Verdict", **changes)

    def _on_reduction_combo_changed(self, index: int) -> None:
        self._apply("Reduction", reduction=self.reduction_combo.itemData(index))

    def _on_smoothing_spin_changed(self, value: float) -> None:
        self._apply("Label smoothing", label_smoothing=value)

    def _on_ignore_spin_changed(self, value: int) -> None:
        self._apply("ignore_index", ignore_index=value)

    def _on_weights_edit_finished(self) -> None:
        text = self.weights_edit.text().strip()
        current = self.state.settings.weight
        if not text:
            if current is not None:
                self._apply("Class weights", weight=None)
            return
        try:
            values = tuple(parse_number(t, what="class weight") for t in text.replace(",", " ").split())
        except ValueError as exc:
            self.message.emit(f"Class weights unchanged: {exc}")
            self.sync_from_state()
            return
        if values != current:
            self._apply("Class weights", weight=values)
