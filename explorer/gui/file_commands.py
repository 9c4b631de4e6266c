"""File commands of the window: open, save, recent files, exports, Copy as code, the close question.

Dialogs live here (never in models); the work is the document's and the exporters'.
Everything exported reads the display model, so a file shows what the screen shows.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

import shiboken6
from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtWidgets import QApplication, QFileDialog, QMenu, QMessageBox

from explorer.app.document import SESSION_SUFFIX, ReadLogits, precheck_logits, read_logits
from explorer.files.io import BINARY_SESSION_SUFFIX, JSON_SESSION_MAX_ELEMENTS, FileFormatError, is_binary_session

if TYPE_CHECKING:
    from explorer.gui.mainwindow import MainWindow

__all__ = ["FileCommands"]

OPEN_FILTER = (
    f"Sessions and logits (*{SESSION_SUFFIX} *{BINARY_SESSION_SUFFIX} *.json *.npy *.npz *.csv *.tsv *.txt);;"
    "All files (*)"
)
#: Logits files larger than this (bytes) are read in a worker thread: 128 MiB took 110 ms to read and 60 ms to
#: check on the GUI thread.
BACKGROUND_OPEN_BYTES = 48 << 20
#: Save-as filters: the readable JSON form (small grids) and the binary form (any size).
JSON_FILTER = f"Sessions, JSON (*{SESSION_SUFFIX} *.json)"
BINARY_FILTER = f"Sessions, binary (*{BINARY_SESSION_SUFFIX})"


def binary_name(path: str) -> str:
    """``path`` renamed for the binary form: ``a.gradexp.json`` or ``a.json`` -> ``a.gradexp.npz``."""
    p = Path(path)
    stem = p.name.removesuffix(".json").removesuffix(".JSON").removesuffix(".gradexp")
    return str(p.with_name(stem + BINARY_SESSION_SUFFIX))


def _is_binary_session_name(path: str) -> bool:
    return path.lower().endswith(BINARY_SESSION_SUFFIX)


def _is_session_name(path: str) -> bool:
    return path.lower().endswith(".json") or _is_binary_session_name(path)


def _file_size(path: str) -> int:
    try:
        return os.stat(path).st_size
    except OSError:
        return 0  # read at once, which says what is wrong with it


class _OpenRelay(QObject):
    """Carries a file read in the worker to the GUI thread: (generation, ReadLogits or None, error)."""

    read = Signal(int, object, str)


@contextlib.contextmanager
def busy_cursor(busy: bool = True) -> Iterator[None]:
    """Show the wait cursor while the block runs (when ``busy``)."""
    if busy:
        QApplication.setOverrideCursor(Qt.CursorShape.WaitCursor)
    try:
        yield
    finally:
        if busy:
            QApplication.restoreOverrideCursor()


class FileCommands(QObject):
    """Open, save and export for one window."""

    def __init__(self, window: MainWindow):
        super().__init__(window)
        self.window = window
        self.document = window.document
        self._open_generation = 0
        self._reading = False
        self._adopting = False
        self._read_name = ""
        self._open_executor: ThreadPoolExecutor | None = None
        window.state.changed.connect(self._on_state_changed)
        self._open_relay = _OpenRelay(self)
        self._open_relay.read.connect(self._on_open_relay_read)
        self._recent_menu: QMenu | None = None
        self.document.changed.connect(self._rebuild_recent_menu)

    # ------------------------------------------------------------------ open
    def open_path(self, path: str) -> bool:
        """Open a session or a logits file; a refused file shows one message and changes nothing.

        A logits file over :data:`BACKGROUND_OPEN_BYTES` is read in a worker thread (the window stays
        responsive) and put into the grid when it is read: True then means the reading started.
        """
        previous = (self._open_generation, self._reading)
        self._open_generation += 1  # an open still being read is superseded by this one
        self._reading = False
        try:
            if _is_binary_session_name(path):  # a session, not logits in an .npz
                self.document.open_session(path)
                what = "session"
            elif not _is_session_name(path) and _file_size(path) > BACKGROUND_OPEN_BYTES:
                precheck_logits(path)  # a declared shape over the limits is refused at once
                self._read_in_background(path)
                return True
            else:
                what = self.document.open_any(path)
        except (FileFormatError, OSError) as exc:
            self._open_generation, self._reading = previous  # a refused file leaves a file being read to arrive
            self.window.show_error("Cannot open file", str(exc))
            return False
        self._opened(what, path)
        return True

    def cancel_read(self) -> None:
        """Esc while a file is read: drop it (the grid stays as it is) and say so."""
        if self._reading:
            self._drop_read("Opening the file was cancelled; the grid is as it was")

    def _drop_read(self, message: str) -> None:
        self._open_generation += 1
        self._reading = False
        self.window.show_message(message)

    def _on_state_changed(self, _change: object) -> None:
        if self._reading and not self._adopting:  # the user changed the grid meanwhile: that wins over the file
            self._drop_read(f"Opening {self._read_name} was dropped: the grid changed while it was being read")

    def _opened(self, what: str, path: str) -> None:
        self.window.heatmaps.reset_levels()
        self.window.show_message(f"Opened {what} from {path}")

    @property
    def reading(self) -> bool:
        """A logits file is being read in the worker (it reaches the grid, or its message is shown, when read)."""
        return self._reading

    def _read_in_background(self, path: str) -> None:
        self._reading = True
        self._read_name = Path(path).name
        generation = self._open_generation
        # Shown until the file arrives (no time-out: a slow disk may take longer than a message lasts).
        self.window.statusBar().showMessage(f"Reading {self._read_name} ({_file_size(path) / 2**20:,.0f} MiB)… "
                                            "Esc cancels")  # fmt: skip
        relay = self._open_relay

        def read() -> None:
            try:
                relay.read.emit(generation, read_logits(path), "")
            except (FileFormatError, OSError) as exc:
                relay.read.emit(generation, None, str(exc) or type(exc).__name__)
            except MemoryError:
                relay.read.emit(generation, None, f"{Path(path).name}: not enough memory to read it")
            except Exception as exc:
                relay.read.emit(generation, None, f"{Path(path).name} could not be read ({type(exc).__name__})")

        self._executor().submit(read)

    def _on_open_relay_read(self, generation: int, read: object, error: str) -> None:
        if generation != self._open_generation or not shiboken6.isValid(self.window):
            return  # another file was opened meanwhile, or the window is gone
        self._reading = False
        path = read.path if isinstance(read, ReadLogits) else None
        try:
            if not isinstance(read, ReadLogits):
                raise FileFormatError(error)
            self._adopting = True
            try:
                n, c = self.document.adopt_logits(read)
            finally:
                self._adopting = False
        except FileFormatError as exc:
            self.window.show_error("Cannot open file", str(exc))
            return
        s = self.document.state.settings
        self._opened(f"{n} x {c} logits, checked in {s.dtype} with eps {s.eps:g}", str(path))

    def shutdown(self) -> None:
        """Drop a file being read (when the window closes)."""
        self._open_generation += 1
        self._reading = False
        if self._open_executor is not None:
            self._open_executor.shutdown(wait=False, cancel_futures=True)
            self._open_executor = None

    def _executor(self) -> ThreadPoolExecutor:
        if self._open_executor is None:
            self._open_executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="open")
        return self._open_executor

    def on_open(self) -> None:
        if not self.maybe_save():
            return
        path, _ = QFileDialog.getOpenFileName(self.window, "Open", "", OPEN_FILTER)
        if path:
            self.open_path(path)

    def bind_recent_menu(self, menu: QMenu) -> None:
        """Fill ``menu`` with the recent files each time it opens (and now)."""
        self._recent_menu = menu
        menu.aboutToShow.connect(self._rebuild_recent_menu)
        self._rebuild_recent_menu()

    def _rebuild_recent_menu(self) -> None:
        from explorer.gui.menus import make_action

        menu = self._recent_menu
        if menu is None or not shiboken6.isValid(menu):  # the window is being torn down
            return
        menu.clear()
        recent = self.document.recent()
        for path in recent:
            menu.addAction(make_action(self.window, path, lambda _=False, p=path: self._on_open_recent(p)))
        if not recent:
            menu.addAction("(none)").setEnabled(False)

    def _on_open_recent(self, path: str) -> None:
        if self.maybe_save() and not self.open_path(path):
            self.document.forget(path)

    # ------------------------------------------------------------------ save
    def _json_too_large(self) -> bool:
        n, c = self.document.state.shape
        return n * c > JSON_SESSION_MAX_ELEMENTS

    def save_to(self, path: str) -> bool:
        """Save the session; a grid too large for JSON is saved in the binary form beside ``path``, said in one line."""
        note = ""
        if not is_binary_session(path) and self._json_too_large():
            n, c = self.document.state.shape
            path = binary_name(path)
            note = f" ({n} x {c} is too large for a JSON session; saved in the binary form)"
            # The dialog confirmed the .json name only: a file of the binary name is not replaced unasked.
            if Path(path).exists() and self.document.path != Path(path):
                buttons = QMessageBox.StandardButton
                answer = QMessageBox.question(
                    self.window, "Replace file?",
                    f"{n} x {c} is too large for a JSON session, so it is saved in the binary form as "
                    f"{Path(path).name}, which exists. Replace it?", buttons.Yes | buttons.No, buttons.No,
                )  # fmt: skip
                if answer != buttons.Yes:
                    self.window.show_message(f"Not saved: {Path(path).name} was kept")
                    return False
        try:
            # A grid of hundreds of MB takes about a second to write: a busy cursor says so meanwhile.
            with busy_cursor(self._json_too_large()):
                saved = self.document.save(path)
        except OSError as exc:
            self.window.show_error("Cannot save", f"{path}: {exc.strerror or exc}")
            return False
        except ValueError as exc:  # values the file cannot hold
            self.window.show_error("Cannot save", str(exc))
            return False
        self.window.show_message(f"Saved {saved}{note}")
        return True

    def on_save(self) -> bool:
        if self.document.path is None:
            return self.on_save_as()
        return self.save_to(str(self.document.path))

    def on_save_as(self) -> bool:
        """Ask for a file in either form; a grid too large for JSON is offered the binary form only."""
        if self._json_too_large():
            filters, chosen, name = BINARY_FILTER, BINARY_FILTER, f"session{BINARY_SESSION_SUFFIX}"
        else:
            filters, chosen, name = f"{JSON_FILTER};;{BINARY_FILTER}", JSON_FILTER, f"session{SESSION_SUFFIX}"
        path, chosen = QFileDialog.getSaveFileName(self.window, "Save session", name, filters, chosen)
        if path and chosen == BINARY_FILTER and not is_binary_session(path):
            path = binary_name(path)
        return bool(path) and self.save_to(path)

    def maybe_save(self) -> bool:
        """Ask before unsaved changes are lost; True when it is fine to go on."""
        if not self.document.modified:
            return True
        buttons = QMessageBox.StandardButton
        answer = QMessageBox.question(self.window, "Unsaved changes", f"Save the changes to {self.document.title}?",
                                      buttons.Save | buttons.Discard | buttons.Cancel)  # fmt: skip
        if answer == buttons.Save:
            return self.on_save()
        return answer == buttons.Discard

    # ---------------------------------------------------------------- export
    def export_plot(self, what: str, path: str, width: int | None = None, dpi: float | None = None) -> bool:
        """Export a plot of what the display shows (PNG, SVG or PDF by suffix), with the screen's levels and marks."""
        from explorer.gui.plot_export import DEFAULT_DPI, export_figure

        display = self.window.display
        report = display.report
        if report is None:
            return False
        try:
            export_figure(path, report, what, width=width, dpi=dpi or DEFAULT_DPI, sweep=display.sweep,
                          screen=self.window.heatmaps)  # fmt: skip
        except (ValueError, OSError) as exc:
            self.window.show_error("Cannot export", str(exc))
            return False
        self.window.show_message(f"Exported {what} to {path}")
        return True

    def export_plot_dialog(self, what: str) -> None:
        """Ask for a file, a format, a width and a DPI, then export."""
        from explorer.gui.export_dialog import ask_export

        request = ask_export(what, self.window)
        if request is not None:
            self.export_plot(what, str(request.path), request.width, request.dpi)

    def copy_plot(self, what: str) -> None:
        """Put a plot (or the dashboard) on the clipboard as an image and as SVG."""
        from explorer.gui.plot_export import copy_figure

        display = self.window.display
        if display.report is None:
            return
        copy_figure(display.report, what, sweep=display.sweep, screen=self.window.heatmaps)
        self.window.show_message(f"Copied the {what} plot (image and SVG) to the clipboard")

    def export_data(self, path: str) -> bool:
        report = self.window.display.report
        if report is None:
            return False
        try:
            self.document.export_data(path, report)
        except (ValueError, OSError) as exc:
            self.window.show_error("Cannot export", str(exc))
            return False
        self.window.show_message(f"Exported data to {path}")
        return True

    def on_export_data(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self.window, "Export data", "gradients.csv",
                                              "CSV (*.csv);;NumPy (*.npz)")  # fmt: skip
        if path:
            self.export_data(path)

    def on_copy_code(self) -> None:
        try:
            code = self.document.code()
        except ValueError as exc:  # a grid too large to write out as text
            self.window.show_message(f"Nothing copied: {exc}")
            return
        QApplication.clipboard().setText(code)
        self.window.show_message("Copied a NumPy script that reproduces this check")
