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

from explorer.core import CheckSettings, resolve_dtype
from explorer.files.limits import GRID_LIMITS, MAX_CLASSES, MAX_ELEMENTS, MAX_SAMPLES

__all__ = ["MAX_CLASSES", "MAX_ELEMENTS", "MAX_SAMPLES", "Change", "ExplorerState", "grid_refusal"]


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


def grid_refusal(n: int, c: int) -> str | None:
    """Why an ``n x c`` grid is refused (one sentence naming the limits), or None when it fits.

    The limits: 1 <= N <= :data:`MAX_SAMPLES`, 1 <= C <= :data:`MAX_CLASSES` and N x C <= :data:`MAX_ELEMENTS`.

    Examples
    --------
    >>> grid_refusal(32, 262_144) is None
    True
    >>> grid_refusal(8192, 8192)
    'a 8192 x 8192 grid (67108864 values) is over the limit of 8192 x 262144 (33554432 values)'
    """
    if n < 1 or c < 1:
        return f"a {n} x {c} grid is empty: it needs at least 1 sample and 1 class"
    if GRID_LIMITS.refusal((n, c)) is None:
        return None
    return f"a {n} x {c} grid ({n * c} values) is over the limit of {GRID_LIMITS.describe()}"


def _check_shape(n: int, c: int) -> None:
    why = grid_refusal(int(n), int(c))
    if why is not None:
        raise ValueError(why)


def _stored(values: NDArray, dtype: np.dtype) -> NDArray:
    """``values`` rounded to the storage ``dtype`` (a new array); values beyond its range become inf."""
    with np.errstate(over="ignore"):
        return np.array(values, dtype=dtype)


def _overflow_message(values: NDArray, dtype: np.dtype, what: str) -> str | None:
    """A message when finite ``values`` do not fit ``dtype`` (they would become inf), else None."""
    if np.asarray(values).dtype.kind == "f" and np.can_cast(np.asarray(values).dtype, dtype, "safe"):
        return None  # a wider or equal float type: nothing can overflow (and no copy of a large grid is made)
    stored = _stored(values, dtype)
    bad = ~np.isfinite(stored)
    if not np.any(bad):
        return None
    v = float(np.asarray(values, dtype=np.float64)[bad].flat[0])
    return f"{what} {v:g} overflows {dtype.name} (the grid is stored in {dtype.name})"


class ExplorerState(QObject):
    """Logits ``(N, C)`` in the check's dtype, labels ``(N,)`` int64 and :class:`~explorer.core.CheckSettings`.

    Signals
    -------
    changed(Change)
        Emitted once per logical change (once per :meth:`batch`).

    The logits are stored in the dtype the settings name (float64 only where the user
    chose it): a 32 x 262,144 float32 grid takes 32 MiB, not 64. Changing the dtype
    converts them (values beyond a half-precision range become inf, as the check would
    see them); the undo step of that change keeps the previous values and restores
    them exactly. Typed and pasted values must be finite and fit the dtype.
    """

    changed = Signal(object)

    def __init__(self, logits: ArrayLike | None = None, labels: ArrayLike | None = None, parent: QObject | None = None):
        super().__init__(parent)
        x = np.zeros((3, 10)) if logits is None else np.asarray(logits)
        y = np.zeros(x.shape[0], dtype=np.int64) if labels is None else np.array(labels, dtype=np.int64)
        self._validate_problem(x, y)
        self._settings = CheckSettings(eps=1e-5, scheme="central", dtype="float64", reduction="sum")
        self._logits: NDArray = _stored(x, self.dtype)
        self._labels: NDArray = y
        self._batch_depth = 0
        #: (the array, its conversion) made by the last overflow check of a dtype change (see _settings_with).
        self._converted: tuple[NDArray, NDArray] | None = None
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
    def dtype(self) -> np.dtype:
        """The storage dtype of the logits (the settings' dtype)."""
        return resolve_dtype(self._settings.dtype)

    @property
    def shape(self) -> tuple[int, int]:
        n, c = self._logits.shape
        return int(n), int(c)

    def snapshot(self) -> tuple[NDArray, NDArray, CheckSettings]:
        """Copies of everything a computation needs, safe to hand to a worker thread."""
        return self._logits.copy(), self._labels.copy(), self._settings

    def live_snapshot(self) -> tuple[NDArray, NDArray, CheckSettings]:
        """The logits array itself (not a copy: edits write into it), copies of the labels, and the settings.

        For a worker whose result is dropped as soon as the state changes while it runs (the
        :class:`~explorer.app.jobs.Recomputer` does so), so that a large grid is not held twice.
        """
        return self._logits, self._labels.copy(), self._settings

    def rows_snapshot(self, rows: NDArray) -> tuple[NDArray, NDArray, CheckSettings]:
        """Copies of the logits of ``rows`` (k, C), of all labels (N,), and the settings: O(k C + N)."""
        return self._logits[np.asarray(rows, dtype=np.intp)], self._labels.copy(), self._settings

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
        """Set one logit, rounded to the storage dtype.

        Raises ValueError for a non-finite value, one the dtype cannot hold, or an index off the grid.
        """
        n, c = self.shape
        if not (0 <= i < n and 0 <= j < c):
            raise ValueError(f"cell ({i}, {j}) is outside the {n} x {c} grid")
        v = float(value)
        if not math.isfinite(v):
            raise ValueError(f"logit must be a finite number, got {value!r}")
        why = _overflow_message(np.array([v]), self.dtype, "logit")
        if why is not None:
            raise ValueError(why)
        stored = _stored(np.array(v), self.dtype)[()]
        old = self._logits[i, j]
        if old == stored and np.signbit(old) == np.signbit(stored):
            return
        self._logits[i, j] = stored
        self._notify(Change(logits=(i, j, i + 1, j + 1)))

    def set_block(self, r0: int, c0: int, block: ArrayLike) -> None:
        """Write a 2-D block of logits with its top-left corner at (r0, c0), rounded to the storage dtype.

        The block must fit inside the grid, be finite and fit the dtype; otherwise ValueError
        and nothing changes.
        """
        b = np.asarray(block)
        if b.dtype != self.dtype:
            b = np.asarray(b, dtype=np.float64)
        if b.ndim != 2 or b.size == 0:
            raise ValueError(f"a block must be a non-empty 2-D array, got shape {b.shape}")
        n, c = self.shape
        r1, c1 = r0 + b.shape[0], c0 + b.shape[1]
        if r0 < 0 or c0 < 0 or r1 > n or c1 > c:
            raise ValueError(f"a {b.shape[0]} x {b.shape[1]} block at ({r0}, {c0}) does not fit the {n} x {c} grid")
        if not np.all(np.isfinite(b)):
            raise ValueError("pasted values must be finite numbers")
        why = _overflow_message(b, self.dtype, "pasted value")
        if why is not None:
            raise ValueError(why)
        stored = _stored(b, self.dtype)
        current = self._logits[r0:r1, c0:c1]
        if np.array_equal(current, stored) and np.array_equal(np.signbit(current), np.signbit(stored)):
            return
        self._logits[r0:r1, c0:c1] = stored
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
        x = np.zeros((n, c), dtype=self.dtype)
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

    def replace(self, logits: ArrayLike, labels: ArrayLike, *, owned: bool = False, **settings: object) -> None:
        """Replace the whole problem (a preset, a random grid, a file) in one change.

        The logits are stored in the (new) settings' dtype; values beyond its range are
        refused (ValueError, nothing changes), as typed ones are. ``owned=True``: the caller
        hands the array over (a file just read) and keeps no reference, so one already in that
        dtype is stored as it is, without a copy.
        """
        x = np.asarray(logits)
        if x.dtype.kind in "biu" or x.dtype == np.dtype(object):
            x = np.asarray(x, dtype=np.float64)
        y = np.asarray(labels)
        if x.ndim != 2:
            raise ValueError(f"logits must be a 2-D (N, C) array, got shape {x.shape}")
        if "weight" not in settings and self._settings.weight is not None and len(self._settings.weight) != x.shape[1]:
            settings = {**settings, "weight": None}  # the old class weights do not fit the new classes
        # Settings are checked against the new problem (an undo may restore weights for another C).
        new_settings = self._settings_with(n_classes=x.shape[1], **settings) if settings else self._settings
        self._validate_problem(x, y, new_settings.ignore_index)
        dtype = resolve_dtype(new_settings.dtype)
        why = _overflow_message(x, dtype, "logit")
        if why is not None:
            raise ValueError(why)
        same_shape = x.shape == self._logits.shape
        adopt = owned and x.dtype == dtype and x.flags.c_contiguous and x.flags.writeable
        stored = x if adopt else _stored(x, dtype)
        self._logits, self._labels = stored, y.astype(np.int64).copy()
        with self.batch():
            self._set_settings(new_settings, convert=False)
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
        """The current settings with ``changes``, validated by :class:`CheckSettings` and against the grid.

        A new dtype must hold every logit (checked when ``n_classes`` is None, i.e. for the current grid).
        """
        new = self._settings.replace(**changes)
        new.check_classes(self.shape[1] if n_classes is None else int(n_classes))
        if n_classes is None and new.dtype != self._settings.dtype:
            dtype = resolve_dtype(new.dtype)
            if np.can_cast(self._logits.dtype, dtype, "safe"):
                return new  # a wider float type: nothing can overflow (the conversion happens once, in _set_settings)
            stored = _stored(self._logits, dtype)
            self._converted = (self._logits, stored)  # reused by _set_settings: the grid is converted once
            if not np.isfinite(stored).all():  # (one pass; the cells are found only when some overflow)
                self._converted = None
                bad = ~np.isfinite(stored)
                count = int(np.count_nonzero(bad))
                i, j = (int(k) for k in np.argwhere(bad)[0])
                raise ValueError(
                    f"{count} logit{'s' if count > 1 else ''} would overflow {dtype.name}, the first "
                    f"{float(self._logits[i, j]):g} at row {i}, class {j}: change {'them' if count > 1 else 'it'} "
                    f"before switching to {dtype.name}"
                )
        return new

    def _set_settings(self, new: CheckSettings, convert: bool = True) -> None:
        names = frozenset(
            f.name for f in dataclasses.fields(CheckSettings) if getattr(new, f.name) != getattr(self._settings, f.name)
        )
        if not names:
            return
        old_ignore = self._settings.ignore_index
        self._settings = new
        block = None
        if convert and "dtype" in names and self._logits.dtype != self.dtype:
            # The grid is stored in the check's dtype: convert it (the undo step keeps the old values), or take
            # the conversion the overflow check made of this very array.
            converted = self._converted
            self._converted = None
            if converted is not None and converted[0] is self._logits and converted[1].dtype == self.dtype:
                self._logits = converted[1]
            else:
                self._logits = _stored(self._logits, self.dtype)
            block = (0, 0, *self.shape)
        relabelled = False
        if "ignore_index" in names and not 0 <= old_ignore < self.shape[1]:
            # Rows marked ignored with a marker that is not a class keep being ignored.
            marked = self._labels == old_ignore
            relabelled = bool(np.any(marked))
            self._labels = np.where(marked, new.ignore_index, self._labels)
        self._notify(Change(logits=block, settings=names, labels=relabelled))

    def _replace_settings(self, **changes: object) -> None:
        self._set_settings(self._settings_with(None, **changes))

    def set_settings(self, **changes: object) -> None:
        """Change one or more check settings (validated all together; all or nothing)."""
        self._replace_settings(**changes)
