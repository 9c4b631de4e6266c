"""Undo and redo: every user change goes through :class:`EditController`, which pushes a command.

Commands store what they change, never a second copy of what the state already holds:

* a typed cell stores two floats, a label or settings change the few values it changed;
* a paste and a whole-problem replacement (preset, file, random grid) keep *one* side: the
  side that is not on screen. Undo swaps it with the state's current data, redo swaps back;
* a resize keeps only the cells, rows and columns it drops (and the labels and settings,
  which are small); grown cells are zeros and cost nothing. Stored blocks that are mostly
  zero are kept sparse (bit-exact, so ``-0.0`` survives).

The stack is bounded by bytes (:data:`UNDO_BUDGET_BYTES`) as well as by steps
(:data:`UNDO_LIMIT`). When the stored data grows beyond the budget, the oldest steps are
dropped and :attr:`EditController.historyTrimmed` says so. ``QUndoStack`` can only drop
from the bottom through ``setUndoLimit``, which Qt refuses on a non-empty stack, so the
controller rebuilds the stack from the steps it keeps: the payloads are plain Python
objects, so a rebuild copies no data and replays nothing.
"""

from __future__ import annotations

import dataclasses

import numpy as np
from numpy.typing import ArrayLike, NDArray
from PySide6.QtCore import QObject, QTimer, Signal
from PySide6.QtGui import QUndoCommand, QUndoStack

from explorer.app.state import ExplorerState
from explorer.core import CheckSettings

__all__ = ["UNDO_BUDGET_BYTES", "UNDO_LIMIT", "EditController"]

#: Commands kept on the stack.
UNDO_LIMIT = 500
#: Bytes of data the undo history may hold; the oldest steps are dropped beyond it.
UNDO_BUDGET_BYTES = 256 * 1024**2
#: Bookkeeping charged per step on top of its arrays (Python and Qt objects).
STEP_OVERHEAD_BYTES = 1024

# Merge ids: consecutive commands with the same id are merged (one undo step for a slider drag).
_MERGE_SETTING_BASE = 1000


def _mib(n: int) -> str:
    return f"{n / 1024**2:.0f} MiB" if n >= 1024**2 else f"{n / 1024:.0f} KiB"


# --------------------------------------------------------------------------- storage
def _bits(a: NDArray) -> NDArray:
    """The bit patterns of a float array (any dtype: float16, bfloat16, float32, float64) as unsigned integers."""
    return np.ascontiguousarray(a).view(f"u{a.dtype.itemsize}")


def same_bits(a: NDArray, b: NDArray) -> bool:
    """True when ``a`` and ``b`` have the same shape, dtype and bit patterns (so ``-0.0`` differs from ``0.0``)."""
    return a.shape == b.shape and a.dtype == b.dtype and np.array_equal(_bits(a), _bits(b))


class _Packed:
    """A float array (in its own dtype) stored densely, or sparsely (flat indices of the non-zero bit patterns)."""

    __slots__ = ("_dense", "_dtype", "_index", "_shape", "_values")

    def __init__(self, a: NDArray, owned: bool = False):
        """``owned=True``: nothing writes into ``a`` any more (the state has swapped in another array), so a
        dense copy is not needed: the array itself is kept."""
        a = np.ascontiguousarray(a)
        if a.dtype.kind in "biu":
            a = a.astype(np.float64)
        self._shape = a.shape
        self._dtype = a.dtype
        bits = _bits(a).ravel()
        index_size = 4 if a.size < 2**31 else 8
        # The indices are formed only when sparse storage pays; an owned array is kept as it is (no pass over it:
        # a dtype change of 2^25 cells spent 20 ms counting on the GUI thread).
        count = a.size if owned else int(np.count_nonzero(bits))
        if count * (index_size + a.dtype.itemsize) < a.size * a.dtype.itemsize:
            nonzero = np.flatnonzero(bits)
            self._dense: NDArray | None = None
            self._index: NDArray | None = nonzero.astype(np.int32 if index_size == 4 else np.int64)
            self._values: NDArray | None = bits[nonzero].view(a.dtype).copy()
        else:
            self._dense = a if owned else a.copy()
            self._index = self._values = None

    @property
    def shape(self) -> tuple[int, ...]:
        return self._shape

    @property
    def nbytes(self) -> int:
        if self._dense is not None:
            return int(self._dense.nbytes)
        assert self._index is not None and self._values is not None
        return int(self._index.nbytes + self._values.nbytes)

    def unpack(self) -> NDArray:
        if self._dense is not None:
            return self._dense.copy()
        out = np.zeros(self._shape, dtype=self._dtype)
        out.ravel()[self._index] = self._values
        return out


def _settings_fields(s: CheckSettings) -> dict[str, object]:
    return {f.name: getattr(s, f.name) for f in dataclasses.fields(CheckSettings)}


# --------------------------------------------------------------------------- payloads
class _Step:
    """What one undo step needs. ``undo``/``redo`` act on the state; ``nbytes`` is what it holds."""

    merge_id = -1

    def __init__(self, text: str):
        self.text = text

    def undo(self, st: ExplorerState) -> None:
        raise NotImplementedError

    def redo(self, st: ExplorerState) -> None:
        raise NotImplementedError

    @property
    def nbytes(self) -> int:
        return STEP_OVERHEAD_BYTES

    def merge(self, other: _Step) -> bool:
        return False


class _CellStep(_Step):
    def __init__(self, text: str, i: int, j: int, old: float, new: float):
        super().__init__(text)
        self.i, self.j, self.old, self.new = i, j, old, new

    def undo(self, st: ExplorerState) -> None:
        st.set_logit(self.i, self.j, self.old)

    def redo(self, st: ExplorerState) -> None:
        st.set_logit(self.i, self.j, self.new)


class _BlockSwap(_Step):
    """A pasted block: keeps the values that are not in the grid now, and swaps them in."""

    def __init__(self, text: str, r0: int, c0: int, other: _Packed):
        super().__init__(text)
        self.r0, self.c0 = r0, c0
        self.other = other

    def _swap(self, st: ExplorerState) -> None:
        rows, cols = self.other.shape
        current = st.logits[self.r0 : self.r0 + rows, self.c0 : self.c0 + cols]
        incoming = self.other.unpack()
        self.other = _Packed(current)
        st.set_block(self.r0, self.c0, incoming)

    undo = redo = _swap

    @property
    def nbytes(self) -> int:
        return STEP_OVERHEAD_BYTES + self.other.nbytes


class _LabelsStep(_Step):
    def __init__(self, text: str, old: NDArray, new: NDArray):
        super().__init__(text)
        self.old, self.new = old, new

    def undo(self, st: ExplorerState) -> None:
        st.set_labels(self.old)

    def redo(self, st: ExplorerState) -> None:
        st.set_labels(self.new)

    @property
    def nbytes(self) -> int:
        return STEP_OVERHEAD_BYTES + int(self.old.nbytes + self.new.nbytes)


class _SettingsStep(_Step):
    """A settings change; a change of dtype also keeps the logits as they were before the conversion."""

    def __init__(self, text: str, old: dict, new: dict, labels_old: NDArray, labels_new: NDArray, merge_id: int,
                 logits_old: _Packed | None = None):  # fmt: skip
        super().__init__(text)
        self.old, self.new = old, new
        self.labels_old, self.labels_new = labels_old, labels_new
        self.merge_id = merge_id
        self.logits_old = logits_old

    @staticmethod
    def _apply(st: ExplorerState, values: dict, labels: NDArray, logits: _Packed | None = None) -> None:
        with st.batch():
            st.set_settings(**values)
            st.set_labels(labels)
            if logits is not None:
                st.set_block(0, 0, logits.unpack())  # the exact values before the conversion

    def undo(self, st: ExplorerState) -> None:
        self._apply(st, self.old, self.labels_old, self.logits_old)

    def redo(self, st: ExplorerState) -> None:
        self._apply(st, self.new, self.labels_new)

    def merge(self, other: _Step) -> bool:
        if not isinstance(other, _SettingsStep) or other.merge_id != self.merge_id or self.merge_id < 0:
            return False
        if other.logits_old is not None and self.logits_old is None:
            self.logits_old = other.logits_old
        self.new, self.labels_new = other.new, other.labels_new
        return True

    @property
    def nbytes(self) -> int:
        logits = 0 if self.logits_old is None else self.logits_old.nbytes
        return STEP_OVERHEAD_BYTES + int(self.labels_old.nbytes + self.labels_new.nbytes) + logits


class _ResizeSwap(_Step):
    """A resize: keeps the other shape, the cells that shape has and this one lacks, the labels and settings."""

    def __init__(self, text: str, other_shape: tuple[int, int], strips: tuple[_Packed | None, _Packed | None],
                 labels: NDArray, settings: CheckSettings):  # fmt: skip
        super().__init__(text)
        self.other_shape = other_shape
        self.strips = strips
        self.labels = labels
        self.settings = settings

    @staticmethod
    def dropped(x: NDArray, n: int, c: int) -> tuple[_Packed | None, _Packed | None]:
        """The cells of ``x`` outside an ``n x c`` grid: the right strip (kept rows) and the bottom rows."""
        old_n, old_c = x.shape
        right = _Packed(x[: min(n, old_n), c:]) if old_c > c else None
        bottom = _Packed(x[n:, :]) if old_n > n else None
        return right, bottom

    def _swap(self, st: ExplorerState) -> None:
        n, c = self.other_shape
        current_shape = st.shape
        strips = self.dropped(st.logits, n, c)
        labels, settings = st.labels.copy(), st.settings
        right, bottom = self.strips
        with st.batch():
            st.resize(n, c)
            st.set_settings(**_settings_fields(self.settings))
            if right is not None:
                st.set_block(0, c - right.shape[1], right.unpack())
            if bottom is not None:
                st.set_block(n - bottom.shape[0], 0, bottom.unpack())
            st.set_labels(self.labels)
        self.other_shape, self.strips, self.labels, self.settings = current_shape, strips, labels, settings

    undo = redo = _swap

    @property
    def nbytes(self) -> int:
        strips = sum(s.nbytes for s in self.strips if s is not None)
        return STEP_OVERHEAD_BYTES + strips + int(self.labels.nbytes)


class _ProblemSwap(_Step):
    """A whole-problem replacement: keeps the problem that is not on screen and swaps it in."""

    def __init__(self, text: str, logits: _Packed, labels: NDArray, settings: CheckSettings):
        super().__init__(text)
        self.logits = logits
        self.labels = labels
        self.settings = settings

    def _swap(self, st: ExplorerState) -> None:
        x, y, s = st.logits, st.labels.copy(), st.settings
        packed = _Packed(x)
        st.replace(self.logits.unpack(), self.labels, **_settings_fields(self.settings))  # type: ignore[arg-type]
        self.logits, self.labels, self.settings = packed, y, s

    undo = redo = _swap

    @property
    def nbytes(self) -> int:
        return STEP_OVERHEAD_BYTES + self.logits.nbytes + int(self.labels.nbytes)


# --------------------------------------------------------------------------- the Qt command
class _Command(QUndoCommand):
    """Wraps a :class:`_Step` whose effect was already applied when it is pushed."""

    def __init__(self, step: _Step, controller: EditController, merge_id: int | None = None):
        super().__init__(step.text)
        self.step = step
        self._controller = controller
        self._merge_id = step.merge_id if merge_id is None else merge_id
        self._skip_redo = True

    def id(self) -> int:
        return self._merge_id

    def redo(self) -> None:
        if self._skip_redo:  # QUndoStack.push calls redo(); the edit already happened
            self._skip_redo = False
            return
        if not self._controller._muted:
            self.step.redo(self._controller.state)
            self._controller._schedule_budget_check()

    def undo(self) -> None:
        if not self._controller._muted:
            self.step.undo(self._controller.state)
            self._controller._schedule_budget_check()

    def mergeWith(self, other: QUndoCommand) -> bool:
        if not isinstance(other, _Command) or other.id() != self.id() or self.id() < 0:
            return False
        return self.step.merge(other.step)


class EditController(QObject):
    """The only way the window changes the state: validates, applies, records for undo.

    Every method raises ``ValueError`` (and changes nothing) for bad input.

    Parameters
    ----------
    state : ExplorerState
    parent : QObject, optional
    budget_bytes : int
        Bytes of data the undo history may hold (:data:`UNDO_BUDGET_BYTES`).

    Signals
    -------
    historyTrimmed(str)
        The oldest undo steps were dropped to stay within the byte budget; the text is for
        the status bar.
    """

    historyTrimmed = Signal(str)

    def __init__(self, state: ExplorerState, parent: QObject | None = None, budget_bytes: int = UNDO_BUDGET_BYTES):
        super().__init__(parent)
        self.state = state
        self.budget_bytes = int(budget_bytes)
        self.stack = QUndoStack(self)
        self.stack.setUndoLimit(UNDO_LIMIT)
        self._muted = False
        # Undo and redo can change what a step holds (a resize undone holds the grown cells):
        # the budget is checked after the stack has finished its own bookkeeping.
        self._budget_timer = QTimer(self)
        self._budget_timer.setSingleShot(True)
        self._budget_timer.setInterval(0)
        self._budget_timer.timeout.connect(self.enforce_budget)

    # ------------------------------------------------------------------ memory
    def _steps(self) -> list[_Step]:
        out = []
        for k in range(self.stack.count()):
            cmd = self.stack.command(k)
            if isinstance(cmd, _Command):
                out.append(cmd.step)
        return out

    @property
    def undo_bytes(self) -> int:
        """Bytes the undo history holds (arrays plus a fixed charge per step)."""
        return sum(step.nbytes for step in self._steps())

    def _schedule_budget_check(self) -> None:
        self._budget_timer.start()

    def _push(self, step: _Step) -> None:
        self.stack.push(_Command(step, self))
        self.enforce_budget()

    def enforce_budget(self) -> None:
        """Drop the oldest steps (then the farthest redo steps) until the history fits the byte budget.

        The newest step before the current index is always kept, so the last edit can be undone.
        """
        steps = self._steps()
        if len(steps) != self.stack.count():
            return  # a foreign command on the stack: leave it alone
        sizes = [s.nbytes for s in steps]
        total = sum(sizes)
        if total <= self.budget_bytes:
            return
        index = self.stack.index()
        lo, hi = 0, len(steps)
        while total > self.budget_bytes and lo < index - 1:
            total -= sizes[lo]
            lo += 1
        while total > self.budget_bytes and hi > max(index, lo + 1):
            hi -= 1
            total -= sizes[hi]
        if (lo, hi) == (0, len(steps)):
            return
        dropped_old, dropped_new = lo, len(steps) - hi
        self._rebuild(lo, hi)
        parts = []
        if dropped_old:
            parts.append(f"the {dropped_old} oldest undo step{'s' if dropped_old > 1 else ''}")
        if dropped_new:
            parts.append(f"{dropped_new} redo step{'s' if dropped_new > 1 else ''}")
        self.historyTrimmed.emit(
            f"Undo history trimmed: dropped {' and '.join(parts)} to stay within {_mib(self.budget_bytes)} "
            f"(now {_mib(total)})"
        )

    def _rebuild(self, lo: int, hi: int) -> None:
        """Keep only commands ``lo:hi`` with the same current step, clean point and texts."""
        stack = self.stack
        index, clean = stack.index(), stack.cleanIndex()
        commands = [stack.command(k) for k in range(lo, hi)]
        kept = [(c.step, c.id()) for c in commands if isinstance(c, _Command)]
        can_undo, can_redo = stack.canUndo(), stack.canRedo()
        undo_text, redo_text = stack.undoText(), stack.redoText()
        stack.blockSignals(True)
        self._muted = True
        try:
            stack.clear()
            for k, (step, merge_id) in enumerate(kept):
                if lo + k == clean:
                    stack.setClean()
                # Only the top command may merge with what comes next; rebuilt ones never merge with each other.
                stack.push(_Command(step, self, merge_id if k == len(kept) - 1 else -1))
            if lo + len(kept) == clean:
                stack.setClean()
            elif not lo <= clean <= hi:
                stack.resetClean()
            stack.setIndex(index - lo)
        finally:
            self._muted = False
            stack.blockSignals(False)
        stack.indexChanged.emit(stack.index())
        if stack.canUndo() != can_undo:
            stack.canUndoChanged.emit(stack.canUndo())
        if stack.canRedo() != can_redo:
            stack.canRedoChanged.emit(stack.canRedo())
        if stack.undoText() != undo_text:
            stack.undoTextChanged.emit(stack.undoText())
        if stack.redoText() != redo_text:
            stack.redoTextChanged.emit(stack.redoText())

    # ------------------------------------------------------------------ logits
    def set_logit(self, i: int, j: int, value: float) -> None:
        if not self._inside(i, j):
            self.state.set_logit(i, j, value)  # raises the state's message
        old = float(self.state.logits[i, j])
        self.state.set_logit(i, j, value)
        new = float(self.state.logits[i, j])
        if old == new and np.signbit(old) == np.signbit(new):
            return
        self._push(_CellStep(f"Edit cell ({i}, {j})", i, j, old, new))

    def set_block(self, r0: int, c0: int, block: ArrayLike, text: str = "Paste") -> None:
        b = np.asarray(block, dtype=np.float64)
        if b.ndim != 2:
            raise ValueError(f"a block must be 2-D, got shape {b.shape}")
        old = self.state.logits[max(r0, 0) : max(r0, 0) + b.shape[0], max(c0, 0) : max(c0, 0) + b.shape[1]]
        if old.shape != b.shape:
            self.state.set_block(r0, c0, b)  # raises: the block does not fit the grid
        packed_old = _Packed(old)  # before the write: ``old`` is a view of the grid
        before = np.array(old)
        self.state.set_block(r0, c0, b)  # raises (nothing changed) for bad values
        if same_bits(before, self.state.logits[r0 : r0 + b.shape[0], c0 : c0 + b.shape[1]]):
            return  # the values, rounded to the grid's dtype, were there already
        self._push(_BlockSwap(text, r0, c0, packed_old))

    # ------------------------------------------------------------------ labels
    def set_label(self, i: int, label: int) -> None:
        old = self.state.labels.copy()
        self.state.set_label(i, label)
        self._push_labels(f"Set label of row {i}", old)

    def set_labels(self, labels: ArrayLike, text: str = "Set labels") -> None:
        old = self.state.labels.copy()
        self.state.set_labels(labels)
        self._push_labels(text, old)

    def _push_labels(self, text: str, old: NDArray) -> None:
        new = self.state.labels.copy()
        if np.array_equal(old, new):
            return
        self._push(_LabelsStep(text, old, new))

    # ---------------------------------------------------------------- settings
    def set_settings(self, text: str | None = None, merge: bool = False, **changes: object) -> None:
        """Change settings; ``merge=True`` folds consecutive changes of the same fields into one step."""
        before = self.state.settings
        labels_before = self.state.labels.copy()
        dtype_changes = "dtype" in changes and changes["dtype"] != before.dtype
        old_logits = self.state.logits if dtype_changes else None  # a conversion may round them
        self.state.set_settings(**changes)
        # The state converted into a new array: the old one is the undo's, unchanged from here on (no copy).
        logits_before = _Packed(old_logits, owned=True) if old_logits is not None else None
        after = self.state.settings
        if after == before:
            return
        names = sorted(
            f.name for f in dataclasses.fields(CheckSettings) if getattr(before, f.name) != getattr(after, f.name)
        )
        old = {k: getattr(before, k) for k in names}
        new = {k: getattr(after, k) for k in names}
        labels_after = self.state.labels.copy()
        merge_id = _MERGE_SETTING_BASE + hash(tuple(names)) % 100000 if merge else -1
        label = text or "Change " + ", ".join(n.replace("_", " ") for n in names)
        if "dtype" not in names:
            logits_before = None
        self._push(_SettingsStep(label, old, new, labels_before, labels_after, merge_id, logits_before))

    # ----------------------------------------------------------- whole problem
    def resize(self, n: int, c: int) -> None:
        """Change N x C; the undo step keeps only what the resize drops."""
        st = self.state
        if (n, c) == st.shape:
            st.resize(n, c)  # validates
            return
        old_shape, labels, settings = st.shape, st.labels.copy(), st.settings
        strips = _ResizeSwap.dropped(st.logits, n, c)
        st.resize(n, c)  # raises (nothing changed) for a shape outside the limits
        self._push(_ResizeSwap(f"Resize to {n} x {c}", old_shape, strips, labels, settings))

    def replace(self, logits: ArrayLike, labels: ArrayLike, text: str = "Replace problem", *, owned: bool = False,
                **settings: object) -> None:  # fmt: skip
        """Replace the whole problem; the undo step keeps the old problem only (redo swaps it back).

        ``owned=True``: the array is handed over (see :meth:`ExplorerState.replace`)."""
        st = self.state
        # The state swaps in a new array on replace, so this view of the old one stays as it is.
        old_x, old_y, old_s = st.logits, st.labels.copy(), st.settings
        st.replace(logits, labels, owned=owned, **settings)
        new_x = st.logits
        same_data = same_bits(old_x, new_x) and np.array_equal(old_y, st.labels)
        if same_data and old_s == st.settings:
            return
        self._push(_ProblemSwap(text, _Packed(old_x), old_y, old_s))

    def _inside(self, i: int, j: int) -> bool:
        n, c = self.state.shape
        return 0 <= i < n and 0 <= j < c
