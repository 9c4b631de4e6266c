"""Autosave: each window saves its session to its own file, owned with a lock.

Every :class:`Autosaver` writes ``autosave-<uuid>.gradexp.json`` in the user's data folder
and holds ``autosave-<uuid>.lock`` (a :class:`QLockFile`) for as long as it lives. A clean
exit removes the autosave; an autosave whose lock is *stale* (its owner is gone: it
crashed or was killed) is work to offer at the next start. A live window's autosave is
never offered, never set aside and never deleted by another window or instance.

Restoring treats the file as hostile: any error while reading or applying it sets it
aside (``.bad``, or another free name, or it is left in place when nothing can be
written) and :attr:`Autosaver.problem` says what happened, in one sentence.
"""

from __future__ import annotations

import contextlib
import logging
import os
import uuid
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QLockFile, QObject, QStandardPaths, QTimer

from explorer.app.state import Change, ExplorerState
from explorer.files.io import load_session, save_session

__all__ = [
    "AUTOSAVE_MS",
    "AUTOSAVE_PATTERN",
    "LEGACY_AUTOSAVE_NAME",
    "Autosaver",
    "data_dir",
    "lock_path",
]

log = logging.getLogger("explorer")

#: Delay after the last change before the session is autosaved.
AUTOSAVE_MS = 3000
#: Autosaves of all windows (``autosave-<uuid>.gradexp.json``; the legacy single file matches too).
AUTOSAVE_PATTERN = "autosave*.gradexp.json"
#: The one shared autosave of versions before per-window autosaves.
LEGACY_AUTOSAVE_NAME = "autosave.gradexp.json"
_SUFFIX = ".gradexp.json"
_MAX_ASIDE_NAMES = 20
_MAX_MESSAGE = 160


def data_dir() -> Path:
    """The user's data folder for the app (``GRADIENT_EXPLORER_DATA`` overrides it, for tests).

    Raises
    ------
    OSError
        When the folder cannot be created (a file is in the way, no permission).
    """
    override = os.environ.get("GRADIENT_EXPLORER_DATA")
    base = (
        Path(override)
        if override
        else Path(
            QStandardPaths.writableLocation(QStandardPaths.StandardLocation.AppLocalDataLocation)
            or Path.home() / ".gradient-explorer"
        )
    )
    base.mkdir(parents=True, exist_ok=True)
    return base


def lock_path(autosave: Path) -> Path:
    """The lock file that owns an autosave: ``autosave-<uuid>.lock`` beside ``autosave-<uuid>.gradexp.json``."""
    name = autosave.name.removesuffix(_SUFFIX)
    return autosave.with_name(name + ".lock")


def _lock(path: Path) -> QLockFile:
    lock = QLockFile(str(path))
    # Stale only when the owner is gone, never by age: a window may keep its lock for days.
    lock.setStaleLockTime(0)
    return lock


def _short(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}" if not isinstance(exc, OSError | ValueError) else str(exc)
    text = " ".join(text.split())
    return text if len(text) <= _MAX_MESSAGE else text[: _MAX_MESSAGE - 3] + "..."


class Autosaver(QObject):
    """Saves the session a few seconds after each change, to this window's own locked file.

    Parameters
    ----------
    state : ExplorerState
    folder : Path, optional
        Where autosaves live (default :func:`data_dir`).
    parent : QObject, optional
    delay_ms : int
        Quiet time after the last change before saving (:data:`AUTOSAVE_MS`).

    Attributes
    ----------
    path : Path
        This window's autosave.
    problem : str
        After a failed :meth:`restore` (or an unusable data folder), one sentence for the status bar.

    The restore protocol: :meth:`leftover` claims the newest autosave of a window that
    is gone (its lock is held while the user is asked); then :meth:`restore` loads it,
    or :meth:`decline` deletes it. :meth:`discard` (a clean exit) removes this window's
    autosave; :meth:`release` also gives up its lock.
    """

    def __init__(self, state: ExplorerState, folder: Path | None = None, parent: QObject | None = None,
                 delay_ms: int = AUTOSAVE_MS):  # fmt: skip
        super().__init__(parent)
        self.state = state
        self.problem = ""
        try:
            self.folder: Path | None = folder if folder is not None else data_dir()
            self.folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            log.warning("autosave disabled: %s", exc)
            self.problem = f"Autosave is off: the data folder cannot be used ({_short(exc)})"
            self.folder = None
        base = self.folder if self.folder is not None else Path(".")
        self.path = base / f"autosave-{uuid.uuid4().hex}{_SUFFIX}"
        self._lock = _lock(lock_path(self.path))
        if self.folder is not None and not self._lock.tryLock(0):
            log.warning("autosave lock %s not taken (error %s)", lock_path(self.path), self._lock.error())
        self._claimed: tuple[Path, QLockFile] | None = None
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(delay_ms)
        self._timer.timeout.connect(self.save_now)
        self._armed = False

    # ---------------------------------------------------------------- leftovers
    def leftovers(self) -> list[Path]:
        """Autosaves whose owner is gone (stale lock or none), newest first. Live ones are never listed."""
        if self.folder is None:
            return []
        found: list[tuple[float, Path]] = []
        try:
            candidates = list(self.folder.glob(AUTOSAVE_PATTERN))
        except OSError:
            return []
        for path in candidates:
            if path == self.path or (self._claimed is not None and path == self._claimed[0]):
                continue
            try:
                if not path.is_file():
                    continue
                mtime = path.stat().st_mtime
            except OSError:
                continue
            probe = _lock(lock_path(path))
            if probe.tryLock(0):  # the owner is gone (a stale lock is removed first)
                probe.unlock()
                found.append((mtime, path))
        found.sort(key=lambda item: item[0], reverse=True)
        self._remove_orphan_locks()
        return [p for _, p in found]

    def _remove_orphan_locks(self) -> None:
        """Stale locks whose autosave is gone (a window that ended without :meth:`release`) are removed."""
        assert self.folder is not None
        with contextlib.suppress(OSError):
            for lock_file in self.folder.glob("autosave*.lock"):
                if (
                    lock_file == lock_path(self.path)
                    or lock_file.with_name(lock_file.name.removesuffix(".lock") + _SUFFIX).exists()
                ):
                    continue
                probe = _lock(lock_file)
                if probe.tryLock(0):
                    probe.unlock()  # removes the file

    def leftover(self) -> Path | None:
        """Claim the newest autosave of a window that is gone, if any, and return it.

        Its lock is held until :meth:`restore` or :meth:`decline`, so another instance
        starting at the same time does not offer it too.
        """
        if self._claimed is not None:
            return self._claimed[0]
        for path in self.leftovers():
            lock = _lock(lock_path(path))
            if lock.tryLock(0) and path.is_file():
                self._claimed = (path, lock)
                return path
            lock.unlock()
        return None

    def restore(self, apply: Callable[[object], None]) -> bool:
        """Load the claimed autosave and hand it to ``apply``.

        Any error (a damaged, hostile or unusable file, or ``apply`` refusing it) sets the
        file aside, fills :attr:`problem` and returns False; the app goes on.
        """
        path = self.leftover()
        if path is None:
            return False
        self.problem = ""
        try:
            session = load_session(path)
            apply(session)
        except Exception as exc:  # any failure of a hostile file must not stop the start-up
            log.warning("autosave %s not restored: %s", path, exc)
            aside = self._set_aside(path)
            self.problem = f"The autosaved session was damaged and was not restored ({_short(exc)}); {aside}"
            self._release_claim()
            return False
        self.save_now()  # the restored work is now kept by this window's own autosave
        self._delete_claimed()
        return True

    def decline(self) -> None:
        """The user does not want the claimed autosave: delete it."""
        if self._claimed is not None:
            self._delete_claimed()

    def _delete_claimed(self) -> None:
        assert self._claimed is not None
        path, _lock_file = self._claimed
        try:
            path.unlink(missing_ok=True)
        except OSError as exc:
            log.warning("could not delete %s: %s", path, exc)
        self._release_claim()

    def _release_claim(self) -> None:
        if self._claimed is not None:
            self._claimed[1].unlock()
            self._claimed = None

    def _set_aside(self, path: Path) -> str:
        """Move a bad autosave out of the way (``.bad``, else ``.bad-1`` ...); return what was done."""
        stem = path.name.removesuffix(".json")
        for k in range(_MAX_ASIDE_NAMES):
            target = path.with_name(f"{stem.removesuffix('.gradexp')}.gradexp.bad" + (f"-{k}" if k else ""))
            if target.exists() and (target.is_dir() or target.is_symlink()):
                continue
            try:
                path.replace(target)
            except OSError:
                continue
            return f"it was set aside as {target.name}"
        try:
            path.unlink()
        except OSError as exc:
            return f"it could not be set aside or deleted ({_short(exc)})"
        return "it could not be set aside and was deleted"

    # -------------------------------------------------------------------- saving
    def start(self) -> None:
        """Begin watching for changes (after any restore decision)."""
        if not self._armed:
            self._armed = True
            self.state.changed.connect(self._on_state_changed)

    def _on_state_changed(self, _change: Change) -> None:
        self._timer.start()

    def save_now(self) -> None:
        """Write this window's autosave now (atomically)."""
        if self.folder is None:
            return
        try:
            save_session(self.path, *self.state.snapshot())
        except OSError:
            log.exception("autosave failed")

    def discard(self) -> None:
        """A clean exit: no autosave of this window is left behind (a claimed leftover is declined)."""
        self._timer.stop()
        self.decline()
        with contextlib.suppress(OSError):
            self.path.unlink(missing_ok=True)

    def release(self) -> None:
        """Discard and give up the lock: this window no longer autosaves."""
        self.discard()
        self._lock.unlock()
