"""ExplorerState: the one source of truth for the logits, labels and check settings.

A ``QObject``, not a widget. Setters validate (raising ``ValueError`` with a message
that names the bad value), return early when nothing changes, and emit ``changed``
once per logical change with a :class:`Change` saying what changed. Bulk edits
happen inside :meth:`ExplorerState.batch`, which merges their notifications into one.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray
from PySide6.QtCore import QObject, Signal

from explorer.core import CheckSettings

__all__ = ["MAX_CLASSES", "MAX_SAMPLES", "Change", "ExplorerState"]

#: Largest grid the window edits; larger problems are refused with this limit in the message.
MAX_SAMPLES = 4096
MAX_CLASSES = 4096


@dataclass(frozen=True)
class Change:
    """What one notification covers.

    Attributes
    ----------
    logits : tuple (r0, c0, r1, c1) or None
        Half-open block of logits whose values changed.
    labels : bool
    shape : bool
        N or C changed (or everything was replaced): views must reset.
    settings : frozenset of str
        Names of changed :class:`~explorer.core.CheckSettings` fields.
    """

    logits: tuple[int, int, int, int] | None = None
    labels: bool = False
    shape: bool = False
    settings: frozenset[str] = frozenset()

    def merged(self, other: Change) -> Change:
        if self.logits is None:
            block = other.logits
        elif other.logits is None:
            block = self.logits
        else:
            a, b = self.logits, other.logits
            block = (min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3]))
        return Change(block, self.labels or other.labels, self.shape or other.shape, self.settings | other.settings)

    @property
    def data(self) -> bool:
        """True when logits, labels or the shape changed."""
        return self.logits is not None or self.labels or self.shape


def _check_shape(n: int, c: int) -> None:
    if not (1 <= n <= MAX_SAMPLES and 1 <= c <= MAX_CLASSES):
        raise ValueError(
            f"a {n} x {c} grid is outside the editable range 1..{MAX_SAMPLES} samples x 1..{MAX_CLASSES} classes"
        )


class ExplorerState(QObject):
    """Logits ``(N, C)`` float64, labels ``(N,)`` int64 and :class:`~explorer.core.CheckSettings`.

    Signals
    -------
    changed(Change)
        Emitted once per logical change (once per :meth:`batch`).

    The logits are kept in float64 as typed; the check rounds them to the
    selected dtype, so switching dtype back and forth loses nothing.
    """

    changed = Signal(object)

    def __init__(self, logits: ArrayLike | None = None, labels: ArrayLike | None = None, parent: QObject | None = None):
        super().__init__(parent)
        x = np.zeros((3, 10)) if logits is None else np.array(logits, dtype=np.float64)
        y = np.zeros(x.shape[0], dtype=np.int64) if labels is None else np.array(labels, dtype=np.int64)
        self._validate_problem(x, y)
        self._logits: NDArray = x
        self._labels: NDArray = y
        self._settings = CheckSettings(eps=1e-5, scheme="central", dtype="float64", reduction="sum")
        self._batch_depth = 0
        self._pending: Change | None = None

    # ----------------------------------------------------------------- reading
    @property
    def logits(self) -> NDArray:
        """Read-only view of the logits (N, C)."""
        v = self._logits.view()
        v.flags.writeable = False
        return v

    @property
    def labels(self) -> NDArray:
        """Read-only view of the labels (N,)."""
        v = self._labels.view()
        v.flags.writeable = False
        return v

    @property
    def settings(self) -> CheckSettings:
        return self._settings

    @property
    def shape(self) -> tuple[int, int]:
        n, c = self._logits.shape
        return int(n), int(c)

    def snapshot(self) -> tuple[NDArray, NDArray, CheckSettings]:
        """Copies of everything a computation needs, safe to hand to a worker thread."""
        return self._logits.copy(), self._labels.copy(), self._settings

    # ---------------------------------------------------------------- batching
    @contextmanager
    def batch(self) -> Iterator[None]:
        """Group several setters into one ``changed`` emission."""
        self._batch_depth += 1
        try:
            yield
        finally:
            self._batch_depth -= 1
            if self._batch_depth == 0 and self._pending is not None:
                change, self._pending = self._pending, None
                self.changed.emit(change)

    def _notify(self, change: Change) -> None:
        if self._batch_depth:
            self._pending = change if self._pending is None else self._pending.merged(change)
        else:
            self.changed.emit(change)

    # ------------------------------------------------------------------ logits
    def set_logit(self, i: int, j: int, value: float) -> None:
        """Set one logit. Raises ValueError for a non-finite value or an index off the grid."""
        n, c = self.shape
        if not (0 <= i < n and 0 <= j < c):
            raise ValueError(f"cell ({i}, {j}) is outside the {n} x {c} grid")
        v = float(value)
        if not math.isfinite(v):
            raise ValueError(f"logit must be a finite number, got {value!r}")
        if self._logits[i, j] == v and math.copysign(1, self._logits[i, j]) == math.copysign(1, v):
            return
        self._logits[i, j] = v
        self._notify(Change(logits=(i, j, i + 1, j + 1)))

    def set_block(self, r0: int, c0: int, block: ArrayLike) -> None:
        """Write a 2-D block of logits with its top-left corner at (r0, c0).

        The block must fit inside the grid and be finite; otherwise ValueError
        and nothing changes.
        """
        b = np.asarray(block, dtype=np.float64)
        if b.ndim != 2 or b.size == 0:
            raise ValueError(f"a block must be a non-empty 2-D array, got shape {b.shape}")
        n, c = self.shape
        r1, c1 = r0 + b.shape[0], c0 + b.shape[1]
        if r0 < 0 or c0 < 0 or r1 > n or c1 > c:
            raise ValueError(f"a {b.shape[0]} x {b.shape[1]} block at ({r0}, {c0}) does not fit the {n} x {c} grid")
        if not np.all(np.isfinite(b)):
            raise ValueError("pasted values must be finite numbers")
        if np.array_equal(self._logits[r0:r1, c0:c1], b):
            return
        self._logits[r0:r1, c0:c1] = b
        self._notify(Change(logits=(r0, c0, r1, c1)))

    # ------------------------------------------------------------------ labels
    def set_label(self, i: int, label: int) -> None:
        """Set row ``i``'s label (a class index, or the ignore_index)."""
        n, c = self.shape
        if not 0 <= i < n:
            raise ValueError(f"row {i} is outside the grid of {n} rows")
        k = int(label)
        if k != label:
            raise ValueError(f"label must be an integer, got {label!r}")
        if not (0 <= k < c or k == self._settings.ignore_index):
            raise ValueError(f"label {k} is out of range for {c} classes (0..{c - 1})")
        if self._labels[i] == k:
            return
        self._labels[i] = k
        self._notify(Change(labels=True))

    def set_labels(self, labels: ArrayLike) -> None:
        """Replace all labels at once (same length as the grid has rows)."""
        y = np.asarray(labels)
        self._validate_problem(self._logits, y, self._settings.ignore_index)
        y = y.astype(np.int64)
        if np.array_equal(y, self._labels):
            return
        self._labels = y.copy()
        self._notify(Change(labels=True))

    # ------------------------------------------------------------------- shape
    def resize(self, n: int, c: int) -> None:
        """Change N and C, keeping the overlapping values; new cells are 0 and labels are clipped to C."""
        _check_shape(n, c)
        if (n, c) == self.shape:
            return
        old_n, old_c = self.shape
        x = np.zeros((n, c))
        x[: min(n, old_n), : min(c, old_c)] = self._logits[:n, :c]
        y = np.zeros(n, dtype=np.int64)
        y[: min(n, old_n)] = self._labels[:n]
        ignore = self._settings.ignore_index
        y = np.where((y != ignore) & (y >= c), c - 1, y)
        self._logits, self._labels = x, y
        with self.batch():
            if self._settings.weight is not None and len(self._settings.weight) != c:
                self._replace_settings(weight=None)
            self._notify(Change(shape=True, labels=True))

    def replace(self, logits: ArrayLike, labels: ArrayLike, **settings: object) -> None:
        """Replace the whole problem (a preset, a random grid, a file) in one change."""
        x = np.array(logits, dtype=np.float64)
        y = np.asarray(labels)
        if x.ndim != 2:
            raise ValueError(f"logits must be a 2-D (N, C) array, got shape {x.shape}")
        if "weight" not in settings and self._settings.weight is not None and len(self._settings.weight) != x.shape[1]:
            settings = {**settings, "weight": None}  # the old class weights do not fit the new classes
        # Settings are checked against the new problem (an undo may restore weights for another C).
        new_settings = self._settings_with(n_classes=x.shape[1], **settings) if settings else self._settings
        self._validate_problem(x, y, new_settings.ignore_index)
        same_shape = x.shape == self._logits.shape
        self._logits, self._labels = x, y.astype(np.int64).copy()
        with self.batch():
            self._set_settings(new_settings)
            if same_shape:
                self._notify(Change(logits=(0, 0, *x.shape), labels=True))
            else:
                self._notify(Change(shape=True, labels=True))

    @staticmethod
    def _validate_problem(x: NDArray, y: NDArray, ignore_index: int = -100) -> None:
        if x.ndim != 2:
            raise ValueError(f"logits must be a 2-D (N, C) array, got shape {x.shape}")
        _check_shape(*x.shape)
        if not np.all(np.isfinite(x)):
            bad = np.argwhere(~np.isfinite(x))[0]
            raise ValueError(f"logit at row {bad[0]}, class {bad[1]} is not a finite number")
        if y.shape != (x.shape[0],):
            raise ValueError(f"expected {x.shape[0]} labels (one per row), got shape {y.shape}")
        if y.dtype.kind not in "iu" and not (y.dtype.kind == "f" and np.all(y == np.round(y))):
            raise ValueError("labels must be integer class indices")
        c = x.shape[1]
        bad_rows = np.flatnonzero((y != ignore_index) & ((y < 0) | (y >= c)))
        if bad_rows.size:
            i = int(bad_rows[0])
            raise ValueError(f"label {int(y[i])} in row {i} is out of range for {c} classes (0..{c - 1})")

    # ---------------------------------------------------------------- settings
    def _settings_with(self, n_classes: int | None = None, **changes: object) -> CheckSettings:
        """The current settings with ``changes``, validated by :class:`CheckSettings` and against the grid."""
        new = self._settings.replace(**changes)
        new.check_classes(self.shape[1] if n_classes is None else int(n_classes))
        return new

    def _set_settings(self, new: CheckSettings) -> None:
        names = frozenset(
            f.name for f in dataclasses.fields(CheckSettings) if getattr(new, f.name) != getattr(self._settings, f.name)
        )
        if not names:
            return
        old_ignore = self._settings.ignore_index
        self._settings = new
        relabelled = False
        if "ignore_index" in names and not 0 <= old_ignore < self.shape[1]:
            # Rows marked ignored with a marker that is not a class keep being ignored.
            marked = self._labels == old_ignore
            relabelled = bool(np.any(marked))
            self._labels = np.where(marked, new.ignore_index, self._labels)
        self._notify(Change(settings=names, labels=relabelled))

    def _replace_settings(self, **changes: object) -> None:
        self._set_settings(self._settings_with(None, **changes))

    def set_settings(self, **changes: object) -> None:
        """Change one or more check settings (validated all together; all or nothing)."""
        self._replace_settings(**changes)
