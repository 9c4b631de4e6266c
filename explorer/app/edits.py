"""Undo and redo: every user change goes through :class:`EditController`, which pushes a command.

Commands store only what they change (a block of logits, the labels, the changed
settings), except whole-problem replacements (resize, preset, file), which store
both problems. Each command calls the state's setters, so undo emits the same
``changed`` notifications as the original edit.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import numpy as np
from numpy.typing import ArrayLike, NDArray
from PySide6.QtCore import QObject
from PySide6.QtGui import QUndoCommand, QUndoStack

from explorer.app.state import ExplorerState
from explorer.core import CheckSettings

__all__ = ["UNDO_LIMIT", "EditController"]

#: Commands kept on the stack.
UNDO_LIMIT = 500

# Merge ids: consecutive commands with the same id are merged (one undo step for a slider drag).
_MERGE_SETTING_BASE = 1000


class _Command(QUndoCommand):
    """A command whose effect was already applied when it is pushed."""

    def __init__(self, text: str, apply_old: Callable[[], None], apply_new: Callable[[], None], merge_id: int = -1):
        super().__init__(text)
        self._apply_old = apply_old
        self._apply_new = apply_new
        self._merge_id = merge_id
        self._applied = True

    def id(self) -> int:
        return self._merge_id

    def redo(self) -> None:
        if self._applied:  # QUndoStack.push calls redo(); the edit already happened
            self._applied = False
            return
        self._apply_new()

    def undo(self) -> None:
        self._apply_old()

    def mergeWith(self, other: QUndoCommand) -> bool:
        if not isinstance(other, _Command) or other.id() != self.id() or self.id() < 0:
            return False
        self._apply_new = other._apply_new
        return True


class EditController(QObject):
    """The only way the window changes the state: validates, applies, records for undo.

    Every method raises ``ValueError`` (and changes nothing) for bad input.
    """

    def __init__(self, state: ExplorerState, parent: QObject | None = None):
        super().__init__(parent)
        self.state = state
        self.stack = QUndoStack(self)
        self.stack.setUndoLimit(UNDO_LIMIT)

    # ------------------------------------------------------------------ logits
    def set_logit(self, i: int, j: int, value: float) -> None:
        if not self._inside(i, j):
            self.state.set_logit(i, j, value)  # raises the state's message
        old = float(self.state.logits[i, j])
        self.state.set_logit(i, j, value)
        new = float(self.state.logits[i, j])
        if old == new and np.signbit(old) == np.signbit(new):
            return
        st = self.state
        self.stack.push(
            _Command(f"Edit cell ({i}, {j})", lambda: st.set_logit(i, j, old), lambda: st.set_logit(i, j, new))
        )

    def set_block(self, r0: int, c0: int, block: ArrayLike, text: str = "Paste") -> None:
        b = np.asarray(block, dtype=np.float64)
        if b.ndim != 2:
            raise ValueError(f"a block must be 2-D, got shape {b.shape}")
        old = self.state.logits[r0 : r0 + b.shape[0], c0 : c0 + b.shape[1]].copy()
        self.state.set_block(r0, c0, b)
        if np.array_equal(old, b):
            return
        st = self.state
        self.stack.push(_Command(text, lambda: st.set_block(r0, c0, old), lambda: st.set_block(r0, c0, b.copy())))

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
        st = self.state
        self.stack.push(_Command(text, lambda: st.set_labels(old), lambda: st.set_labels(new)))

    # ---------------------------------------------------------------- settings
    def set_settings(self, text: str | None = None, merge: bool = False, **changes: object) -> None:
        """Change settings; ``merge=True`` folds consecutive changes of the same fields into one step."""
        before = self.state.settings
        labels_before = self.state.labels.copy()
        self.state.set_settings(**changes)
        after = self.state.settings
        if after == before:
            return
        names = sorted(
            f.name for f in dataclasses.fields(CheckSettings) if getattr(before, f.name) != getattr(after, f.name)
        )
        old = {k: getattr(before, k) for k in names}
        new = {k: getattr(after, k) for k in names}
        labels_after = self.state.labels.copy()
        st = self.state

        def restore(values: dict, labels: NDArray) -> Callable[[], None]:
            def apply() -> None:
                with st.batch():
                    st.set_settings(**values)
                    st.set_labels(labels)

            return apply

        merge_id = _MERGE_SETTING_BASE + hash(tuple(names)) % 100000 if merge else -1
        label = text or "Change " + ", ".join(n.replace("_", " ") for n in names)
        self.stack.push(_Command(label, restore(old, labels_before), restore(new, labels_after), merge_id))

    # ----------------------------------------------------------- whole problem
    def resize(self, n: int, c: int) -> None:
        self._replace_whole(lambda: self.state.resize(n, c), f"Resize to {n} x {c}")

    def replace(self, logits: ArrayLike, labels: ArrayLike, text: str = "Replace problem", **settings: object) -> None:
        self._replace_whole(lambda: self.state.replace(logits, labels, **settings), text)

    def _replace_whole(self, action: Callable[[], None], text: str) -> None:
        old = self.state.snapshot()
        action()
        new = self.state.snapshot()
        same_data = old[0].shape == new[0].shape and np.array_equal(old[0], new[0]) and np.array_equal(old[1], new[1])
        if same_data and old[2] == new[2]:
            return
        st = self.state

        def restore(snap: tuple[NDArray, NDArray, CheckSettings]) -> Callable[[], None]:
            x, y, s = snap
            fields = {f.name: getattr(s, f.name) for f in dataclasses.fields(CheckSettings)}
            return lambda: st.replace(x.copy(), y.copy(), **fields)

        self.stack.push(_Command(text, restore(old), restore(new)))

    def _inside(self, i: int, j: int) -> bool:
        n, c = self.state.shape
        return 0 <= i < n and 0 <= j < c
