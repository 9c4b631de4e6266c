"""A stateful property test: random sequences of user actions on the real window.

After every step: nothing escaped, the shapes of state, tables and heatmaps agree,
and the heatmaps show exactly what the core computes for the current state. At the
end, undoing everything returns the exact starting arrays and settings.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import numpy as np
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule, run_state_machine_as_test
from PySide6.QtTest import QTest

from explorer.app.jobs import report_matches_state
from explorer.core import DTYPE_NAMES, REDUCTIONS, SCHEME_NAMES, CheckSettings, check_gradient
from explorer.files.io import save_session
from explorer.gui import MainWindow

CELL_TEXT = ["1.5", "-3e2", "0", "42", "1e-300", "abc", "", "1,5", "nan", "inf", "1e400", "70000", " 7 "]
LABEL_TEXT = ["0", "1", "2", "9", "-100", "-1", "x", "2.5", "100"]
PASTE_TEXT = ["1 2\n3 4", "5", "1\t2\t3", "array([[1., -2.]])", "junk", "1 2\n3", "", "1e999"]
EPS_TEXT = ["1e-4", "1e-12", "0.1", "3e-7", "-1", "0", "abc", "inf", "1e-30"]


def wait_until(predicate, timeout_ms: int = 10000) -> None:  # type: ignore[no-untyped-def]
    waited = 0
    while not predicate():
        assert waited < timeout_ms, "the window did not settle"
        QTest.qWait(5)
        waited += 5


class WindowMachine(RuleBasedStateMachine):
    files: ClassVar[dict[str, Path]] = {}

    def __init__(self) -> None:
        super().__init__()
        self.w = MainWindow(restore_settings=False)
        self.w.show()
        self.start = self.w.state.snapshot()

    def teardown(self) -> None:
        w = self.w
        stack = w.controller.stack
        while stack.canUndo():
            stack.undo()
        x, y, s = w.state.snapshot()
        np.testing.assert_array_equal(x, self.start[0])
        np.testing.assert_array_equal(y, self.start[1])
        assert s == self.start[2]
        stack.setClean()
        w.recomputer.shutdown()
        w.sweeper.shutdown()
        w.close()
        w.deleteLater()

    def _cell(self, i: int, j: int) -> tuple[int, int]:
        n, c = self.w.state.shape
        return i % n, j % c

    @rule(i=st.integers(0, 50), j=st.integers(0, 50), text=st.sampled_from(CELL_TEXT))
    def type_in_a_cell(self, i: int, j: int, text: str) -> None:
        model = self.w.grid.logits_model
        i, j = self._cell(i, j)
        model.setData(model.index(i, j), text)

    @rule(i=st.integers(0, 50), text=st.sampled_from(LABEL_TEXT))
    def type_a_label(self, i: int, text: str) -> None:
        model = self.w.grid.labels_model
        model.setData(model.index(i % self.w.state.shape[0], 0), text)

    @rule(i=st.integers(0, 50), j=st.integers(0, 50), text=st.sampled_from(PASTE_TEXT))
    def paste(self, i: int, j: int, text: str) -> None:
        self.w.grid.select_cell(*self._cell(i, j))
        self.w.grid.paste(text)

    @rule(n=st.integers(1, 6), c=st.integers(1, 8))
    def resize(self, n: int, c: int) -> None:
        self.w.controls.n_spin.setValue(n)
        self.w.controls.c_spin.setValue(c)

    @rule(text=st.sampled_from(EPS_TEXT))
    def type_eps(self, text: str) -> None:
        edit = self.w.controls.eps_edit
        edit.setText(text)
        edit.returnPressed.emit()

    @rule(scheme=st.sampled_from(SCHEME_NAMES), dtype=st.sampled_from(DTYPE_NAMES))
    def scheme_and_dtype(self, scheme: str, dtype: str) -> None:
        c = self.w.controls
        c.scheme_combo.setCurrentIndex(c.scheme_combo.findData(scheme))
        c.dtype_combo.setCurrentIndex(c.dtype_combo.findData(dtype))

    @rule(
        reduction=st.sampled_from(REDUCTIONS),
        smoothing=st.sampled_from([0.0, 0.1, 1.0]),
        weights=st.sampled_from(["", "1 2", "0.5, 1, 2, 1, 1, 1, 1, 1", "x"]),
        ignore=st.sampled_from([-100, 0, 1]),
    )
    def loss_options(self, reduction: str, smoothing: float, weights: str, ignore: int) -> None:
        c = self.w.controls
        c.reduction_combo.setCurrentIndex(c.reduction_combo.findData(reduction))
        c.smoothing_spin.setValue(smoothing)
        c.weights_edit.setText(weights)
        c.weights_edit.editingFinished.emit()
        c.ignore_spin.setValue(ignore)

    @rule(mode=st.sampled_from(["element", "row", "all"]))
    def pitfall(self, mode: str) -> None:
        combo = self.w.controls.perturb_combo
        combo.setCurrentIndex(combo.findData(mode))

    @rule(kind=st.sampled_from(["randomize", "preset"]))
    def replace_problem(self, kind: str) -> None:
        if kind == "randomize":
            self.w.controls.randomize()
        else:
            self.w.controls.load_preset("float16_overflow")

    @precondition(lambda self: self.w.controller.stack.canUndo())
    @rule()
    def undo(self) -> None:
        self.w.controller.stack.undo()

    @precondition(lambda self: self.w.controller.stack.canRedo())
    @rule()
    def redo(self) -> None:
        self.w.controller.stack.redo()

    @rule(name=st.sampled_from(["good.gradexp.json", "bad.gradexp.json", "good.csv", "bad.csv", "nan.npy"]))
    def open_file(self, name: str) -> None:
        before = self.w.state.snapshot()
        ok = self.w.open_path(str(self.files[name]))
        if not ok:  # a bad file changes nothing
            after = self.w.state.snapshot()
            np.testing.assert_array_equal(after[0], before[0])
            np.testing.assert_array_equal(after[1], before[1])
            assert after[2] == before[2]

    @invariant()
    def consistent_and_drawn(self) -> None:
        w = self.w
        wait_until(lambda: report_matches_state(w.report, w.state) and not w.recomputer.busy)
        n, c = w.state.shape
        assert w.state.labels.shape == (n,)
        assert (w.grid.logits_model.rowCount(), w.grid.logits_model.columnCount()) == (n, c)
        assert w.grid.labels_model.rowCount() == n
        expected = check_gradient(*w.state.snapshot())
        np.testing.assert_array_equal(w.heatmaps.analytic.image_item.image, expected.grad_analytic.astype(np.float64))
        np.testing.assert_array_equal(w.heatmaps.numeric.image_item.image, expected.grad_numeric.astype(np.float64))
        assert w.heatmaps.error.image_item.image.shape == (n, c)


def test_random_user_actions_keep_the_window_consistent(qtbot, tmp_path: Path) -> None:
    files = {
        "good.gradexp.json": tmp_path / "good.gradexp.json",
        "bad.gradexp.json": tmp_path / "bad.gradexp.json",
        "good.csv": tmp_path / "good.csv",
        "bad.csv": tmp_path / "bad.csv",
        "nan.npy": tmp_path / "nan.npy",
    }
    save_session(
        files["good.gradexp.json"], [[1.0, 2.0, 3.0], [0.0, -1.0, 5.0]], [2, 0], CheckSettings(scheme="forward")
    )
    files["bad.gradexp.json"].write_text('{"format": "gradient-explorer-session", "version": 1, "logits": [[1, 2]')
    files["good.csv"].write_text("1,2\n3,4\n5,6\n")
    files["bad.csv"].write_text("1,2\n3\n")
    np.save(files["nan.npy"], np.array([[1.0, np.nan]]))
    WindowMachine.files = files
    run_state_machine_as_test(
        WindowMachine, settings=settings(max_examples=8, stateful_step_count=25, deadline=None, derandomize=True)
    )
