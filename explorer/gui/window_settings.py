"""What the window remembers between runs (QSettings): layout, views, random options, check settings."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from PySide6.QtCore import QByteArray, QRect, QSettings, QSize

from explorer.core import SettingsError

if TYPE_CHECKING:
    from explorer.gui.mainwindow import MainWindow

__all__ = [
    "ORGANIZATION",
    "REMEMBERED",
    "SETTINGS_VERSION",
    "app_settings",
    "fit_to_screen",
    "initial_size",
    "restore_window",
    "save_window",
]

ORGANIZATION = "GradientExplorer"
#: Bump when the saved window state's layout changes incompatibly.
SETTINGS_VERSION = 1
#: Check settings remembered between runs, and how to read each back from QSettings' strings.
REMEMBERED: dict[str, type] = {
    "eps": float,
    "scheme": str,
    "dtype": str,
    "reduction": str,
    "label_smoothing": float,
    "ignore_index": int,
}


#: Screens up to this size (logical px) give the window all of their available area; larger ones a share.
SMALL_SCREEN = QSize(1440, 900)
#: Share of a large screen's available width and height the first window takes.
SCREEN_SHARE = 0.8


def initial_size(available: QRect) -> QSize:
    """The first size of the window on a screen with ``available`` geometry (logical pixels).

    Small screens (up to :data:`SMALL_SCREEN`) give the window all of their available area; larger
    ones :data:`SCREEN_SHARE` of it. Either way the window fits the screen at any scale factor.

    Examples
    --------
    >>> from PySide6.QtCore import QRect
    >>> initial_size(QRect(0, 0, 1280, 720)), initial_size(QRect(0, 0, 1920, 1080))
    (PySide6.QtCore.QSize(1280, 720), PySide6.QtCore.QSize(1536, 864))
    """
    w, h = available.width(), available.height()
    if w <= SMALL_SCREEN.width() and h <= SMALL_SCREEN.height():
        return QSize(w, h)
    return QSize(round(w * SCREEN_SHARE), round(h * SCREEN_SHARE))


def fit_to_screen(w: MainWindow) -> None:
    """Clamp the window into its screen's available geometry (a size restored from a bigger screen,
    or a position off the screen, is brought back)."""
    screen = w.screen()
    if screen is None:
        return
    area = screen.availableGeometry()
    frame = w.frameGeometry()
    extra_w, extra_h = frame.width() - w.width(), frame.height() - w.height()  # title bar and borders
    width = min(w.width(), area.width() - extra_w)
    height = min(w.height(), area.height() - extra_h)
    if (width, height) != (w.width(), w.height()):
        w.resize(width, height)
    frame = w.frameGeometry()
    # Inside the area; a window wider than the area (its minimum) starts at the area's left/top edge.
    x = max(area.left(), min(frame.x(), area.right() + 1 - frame.width()))
    y = max(area.top(), min(frame.y(), area.bottom() + 1 - frame.height()))
    if (x, y) != (frame.x(), frame.y()):
        w.move(x, y)


def app_settings() -> QSettings:
    """The app's QSettings; ``GRADIENT_EXPLORER_SETTINGS`` (a file path) overrides the location (tests)."""
    path = os.environ.get("GRADIENT_EXPLORER_SETTINGS")
    if path:
        return QSettings(path, QSettings.Format.IniFormat)
    return QSettings(ORGANIZATION, "explorer")


def restore_window(w: MainWindow) -> None:
    """Apply the remembered layout and settings; anything unreadable is ignored with a message."""
    st = app_settings()
    for key, restore in (("window/geometry", w.restoreGeometry),
                         ("window/state", lambda v: w.restoreState(v, SETTINGS_VERSION)),
                         ("window/splitter", w.central_splitter.restoreState)):  # fmt: skip
        value = st.value(key)
        if isinstance(value, QByteArray):
            restore(value)
    w.heatmaps.set_error_view(str(st.value("view/error", "abs")))
    w.heatmaps.set_colormaps(str(st.value("view/gradient_colormap", "")), str(st.value("view/error_colormap", "")))
    precision = str(st.value("view/precision", "") or "")
    if precision.isdigit():
        w.grid.set_precision(int(precision))
    mode_index = w.sweep_panel.mode_combo.findData(st.value("sweep/mode", "cell"))
    w.sweep_panel.mode_combo.setCurrentIndex(max(0, mode_index))
    w.sweep_panel.overlay_check.setChecked(str(st.value("sweep/overlay", "false")).lower() == "true")
    kind = st.value("random/kind")
    if kind is not None:
        w.controls.random_kind.setCurrentIndex(max(0, w.controls.random_kind.findData(kind)))
    seed = str(st.value("random/seed", 0) or 0)
    if seed.isdigit():
        w.controls.seed_spin.setValue(int(seed))
    saved: dict[str, object] = {}
    try:
        for key, kind_of in REMEMBERED.items():
            value = st.value(f"check/{key}")
            if value is not None:
                saved[key] = kind_of(value)
        if saved:
            w.state.set_settings(**saved)
    except (TypeError, ValueError, OverflowError, SettingsError):
        w.show_message("Saved settings were not valid and were ignored")


def save_window(w: MainWindow) -> None:
    st = app_settings()
    st.setValue("window/geometry", w.saveGeometry())
    st.setValue("window/state", w.saveState(SETTINGS_VERSION))
    st.setValue("window/splitter", w.central_splitter.saveState())
    st.setValue("view/error", w.heatmaps.error_view)
    st.setValue("view/theme", w.themes.choice.value)
    st.setValue("view/gradient_colormap", w.heatmaps.gradient_cmap)
    st.setValue("view/error_colormap", w.heatmaps.error_cmap)
    st.setValue("view/precision", w.grid.precision)
    st.setValue("sweep/mode", w.sweep_panel.mode)
    st.setValue("sweep/overlay", w.sweep_panel.overlay_check.isChecked())
    st.setValue("random/kind", w.controls.random_kind.currentData())
    st.setValue("random/seed", w.controls.seed_spin.value())
    s = w.state.settings
    for key in REMEMBERED:
        st.setValue(f"check/{key}", getattr(s, key))
    st.sync()
