"""Autosave: each window saves its session to its own file, owned with a lock.

Every :class:`Autosaver` writes ``autosave-<uuid>.gradexp.npz`` in the user's data folder
and holds ``autosave-<uuid>.lock`` (a :class:`QLockFile`) for as long as it lives. A clean
exit removes the autosave; an autosave whose lock is *stale* (its owner is gone: it
crashed or was killed) is work to offer at the next start. A live window's autosave is
never offered, never set aside and never deleted by another window or instance.

Autosaves are always the binary session form (see :mod:`explorer.files.sessions`): they
are for the app to read back, not for people, and that form is exact in every dtype, holds
any grid the window edits and writes 32 x 262,144 float32 in about 0.1 s (JSON took 55 s).
Autosaves of earlier versions (``autosave*.gradexp.json``) are still offered and restored.

After a change the GUI thread writes the live logits (no copy of them) into a file beside the
autosave, 4 MiB per turn of the event loop so that no turn waits long and no edit can land
in the middle of a piece; a change before the file is complete abandons it (the next
autosave is due anyway). A worker thread makes the file durable and renames it into place.
Newest wins: changes made meanwhile are saved once it ends, and a write overtaken by
:meth:`Autosaver.save_now` or :meth:`Autosaver.discard` is dropped instead of renamed.

Restoring treats the file as hostile: any error while reading or applying it sets it
aside (``.bad``, or another free name, or it is left in place when nothing can be
written) and :attr:`Autosaver.problem` says what happened, in one sentence.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import uuid
from collections.abc import Callable, Generator
from pathlib import Path
from typing import IO

from PySide6.QtCore import QLockFile, QObject, QStandardPaths, QTimer, Signal

from explorer.app.state import Change, ExplorerState
from explorer.files.io import load_session, save_session
from explorer.files.limits import GRID_LIMITS
from explorer.files.sessions import binary_session_pieces

__all__ = [
    "AUTOSAVE_MS",
    "AUTOSAVE_PATTERNS",
    "LEGACY_AUTOSAVE_NAME",
    "Autosaver",
    "data_dir",
    "lock_path",
]

log = logging.getLogger("explorer")

#: Delay after the last change before the session is autosaved.
AUTOSAVE_MS = 3000
#: Autosaves of all windows (``autosave-<uuid>.gradexp.npz``), and the JSON ones of earlier versions
#: (``autosave-<uuid>.gradexp.json`` and the legacy single file).
AUTOSAVE_PATTERNS = ("autosave*.gradexp.npz", "autosave*.gradexp.json")
#: The one shared autosave of versions before per-window autosaves.
LEGACY_AUTOSAVE_NAME = "autosave.gradexp.json"
_SUFFIX = ".gradexp.npz"
_SUFFIXES = (_SUFFIX, ".gradexp.json")
#: A write in progress: ``.<autosave name>.partial``, hidden and matching no autosave pattern.
_PARTIAL = ".partial"
#: Bytes of logits copied for an autosave per turn of the event loop (a few ms here; 16 MiB took up to 95 ms
#: a turn on a loaded machine).
COPY_BYTES = 4 << 20
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


def _base(name: str) -> str:
    """``autosave-<uuid>`` from an autosave's file name (either form)."""
    for suffix in _SUFFIXES:
        if name.endswith(suffix):
            return name.removesuffix(suffix)
    return name


def lock_path(autosave: Path) -> Path:
    """The lock file that owns an autosave: ``autosave-<uuid>.lock`` beside ``autosave-<uuid>.gradexp.npz``."""
    return autosave.with_name(_base(autosave.name) + ".lock")


def _lock(path: Path) -> QLockFile:
    lock = QLockFile(str(path))
    # Stale only when the owner is gone, never by age: a window may keep its lock for days.
    lock.setStaleLockTime(0)
    return lock


def _short(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}" if not isinstance(exc, OSError | ValueError) else str(exc)
    text = " ".join(text.split())
    return text if len(text) <= _MAX_MESSAGE else text[: _MAX_MESSAGE - 3] + "..."


class _Relay(QObject):
    """A child of the autosaver in the GUI thread; the worker reports through it (queued delivery)."""

    written = Signal(bool, str)  # (renamed into place, error message)


class _Commit:
    """What the worker shares with the GUI thread, and nothing else (the worker never holds the QObject):
    the lock under which a write is renamed into place, and the epoch it must still be in."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.epoch = 0


def _finish(f: IO[bytes], partial: Path, target: Path, commit: _Commit, epoch: int, relay: _Relay) -> None:
    """Worker thread: make the written ``partial`` durable (fsync, close), then rename it over ``target`` unless
    a newer save or a discard came first. The file is complete: nothing here reads the logits."""
    placed, message = False, ""
    try:
        with f:
            f.flush()
            os.fsync(f.fileno())
        with commit.lock:
            placed = epoch == commit.epoch
            if placed:
                os.replace(partial, target)
        if not placed:
            partial.unlink(missing_ok=True)
    except Exception as exc:  # a worker must report, never raise: the window goes on without this autosave
        message = _short(exc)
        with contextlib.suppress(OSError):
            partial.unlink(missing_ok=True)
    with contextlib.suppress(RuntimeError):  # the window (and the relay) may be gone by now
        relay.written.emit(placed, message)


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

    Signals: ``saved(str)`` (the path) on the GUI thread after a background write is in place.

    The restore protocol: :meth:`leftover` claims the newest autosave of a window that
    is gone (its lock is held while the user is asked); then :meth:`restore` loads it,
    or :meth:`decline` deletes it. :meth:`discard` (a clean exit) removes this window's
    autosave; :meth:`release` also gives up its lock.
    """

    saved = Signal(str)

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
        self._timer.timeout.connect(self.save_later)
        self._armed = False
        # Background writes: one at a time (``_writing``, GUI thread); the epoch (under the commit lock) moves on
        # when a newer save or a discard overtakes the write in flight, which then drops its file.
        self._partial = self.path.with_name(f".{self.path.name}{_PARTIAL}")
        self._commit = _Commit()
        self._writing = False
        self._again = False
        self._relay = _Relay(self)
        self._relay.written.connect(self._on_written)
        # The write being taken from the live logits: (epoch, its file, its pieces); None when none is.
        self._copy: tuple[int, IO[bytes], Generator[int, None, None]] | None = None
        self._rows_written = 0
        self._copy_timer = QTimer(self)
        self._copy_timer.setSingleShot(True)
        self._copy_timer.setInterval(0)
        self._copy_timer.timeout.connect(self._copy_step)

    # ---------------------------------------------------------------- leftovers
    def leftovers(self) -> list[Path]:
        """Autosaves whose owner is gone (stale lock or none), newest first. Live ones are never listed."""
        if self.folder is None:
            return []
        found: list[tuple[float, Path]] = []
        try:
            candidates = [p for pattern in AUTOSAVE_PATTERNS for p in self.folder.glob(pattern)]
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
        """Stale locks whose autosave is gone (a window that ended without :meth:`release`) are removed,
        and so are the unfinished writes of windows that are gone."""
        assert self.folder is not None
        with contextlib.suppress(OSError):
            for partial in self.folder.glob(f".autosave*{_PARTIAL}"):
                owner = lock_path(partial.with_name(partial.name[1:].removesuffix(_PARTIAL)))
                probe = _lock(owner)
                if partial != self._partial and probe.tryLock(0):
                    probe.unlock()
                    partial.unlink(missing_ok=True)
            for lock_file in self.folder.glob("autosave*.lock"):
                base = lock_file.name.removesuffix(".lock")
                if lock_file == lock_path(self.path) or any(
                    lock_file.with_name(base + suffix).exists() for suffix in _SUFFIXES
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
            session = load_session(path, limits=GRID_LIMITS)  # the window's grid limits, checked before reading
            apply(session)
        except Exception as exc:  # any failure of a hostile file must not stop the start-up
            log.warning("autosave %s not restored: %s", path, exc)
            aside = self._set_aside(path)
            self.problem = f"The autosaved session was damaged and was not restored ({_short(exc)}); {aside}"
            self._release_claim()
            return False
        self._keep_restored(path)  # the restored work is now kept by this window's own autosave
        self._delete_claimed()
        return True

    def _keep_restored(self, path: Path) -> None:
        """Make the restored work this window's autosave: a binary leftover is renamed (what it holds was just
        applied), an older JSON one is saved again."""
        if path.name.endswith(_SUFFIX) and self.folder is not None:
            try:
                with self._commit.lock:
                    self._commit.epoch += 1
                    os.replace(path, self.path)
                return
            except OSError as exc:
                log.warning("could not keep %s as %s: %s", path, self.path, exc)
        self.save_now()

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
        stem = _base(path.name)
        for k in range(_MAX_ASIDE_NAMES):
            target = path.with_name(f"{stem}.gradexp.bad" + (f"-{k}" if k else ""))
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
        self._cancel_copy()  # a half-taken copy would mix two states; the timer saves the new one
        self._timer.start()

    def _cancel_copy(self) -> None:
        """Abandon the write being taken from the live logits (it would mix two states)."""
        if self._copy is not None:
            self._copy_timer.stop()
            _epoch, f, pieces = self._copy
            self._copy = None
            self._writing = False
            with contextlib.suppress(Exception):
                pieces.close()
                f.close()
            with contextlib.suppress(OSError):
                self._partial.unlink(missing_ok=True)

    def save_now(self) -> None:
        """Write this window's autosave now, on this thread (atomically); a background write in flight is dropped."""
        if self.folder is None:
            return
        try:
            with self._commit.lock:
                self._commit.epoch += 1
                save_session(self.path, *self.state.snapshot(), binary=True)
        except (OSError, ValueError):
            log.exception("autosave failed")

    def save_later(self) -> None:
        """Write this window's autosave without a copy of the logits and without a long turn of the event loop.

        The GUI thread writes the live logits into a file beside the autosave, :data:`COPY_BYTES` per turn of
        the event loop (between edits, so what it reads cannot change under it; an edit abandons the file);
        a worker thread then makes it durable and renames it into place. While that is running, the next
        save waits for it (newest wins).
        """
        if self.folder is None:
            return
        if self._writing:
            self._again = True
            return
        with self._commit.lock:
            epoch = self._commit.epoch
        try:
            f = open(self._partial, "wb")  # noqa: SIM115 (closed by the worker, or when abandoned)
            pieces = binary_session_pieces(f, self.state.logits, self.state.labels.copy(), self.state.settings,
                                           COPY_BYTES)  # fmt: skip
        except (OSError, ValueError) as exc:
            log.warning("autosave failed: %s", exc)
            return
        self._writing = True
        self._copy = (epoch, f, pieces)
        self._copy_step()

    def _copy_step(self) -> None:
        """Write the next :data:`COPY_BYTES` of logits; once the file is complete, hand it to a worker thread."""
        if self._copy is None:
            return
        epoch, f, pieces = self._copy
        try:
            self._rows_written = next(pieces)
            self._copy_timer.start()
            return
        except StopIteration:
            pass
        except (OSError, ValueError) as exc:
            log.warning("autosave failed: %s", exc)
            self._cancel_copy()
            return
        self._copy = None
        args = (f, self._partial, self.path, self._commit, epoch, self._relay)
        threading.Thread(target=_finish, args=args, name="autosave").start()

    def _on_written(self, placed: bool, message: str) -> None:
        self._writing = False
        if message:
            log.warning("autosave failed: %s", message)
        elif placed:
            self.saved.emit(str(self.path))
        if self._again:
            self._again = False
            self.save_later()

    def discard(self) -> None:
        """A clean exit: no autosave of this window is left behind (a claimed leftover is declined)."""
        self._timer.stop()
        self._again = False
        self._cancel_copy()
        self.decline()
        with self._commit.lock, contextlib.suppress(OSError):
            self._commit.epoch += 1  # a write in flight is dropped, not renamed into place
            self.path.unlink(missing_ok=True)

    def release(self) -> None:
        """Discard and give up the lock: this window no longer autosaves."""
        self.discard()
        self._lock.unlock()
