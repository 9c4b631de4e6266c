"""What the window remembers between runs (QSettings): layout, views, random options, check settings."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from PySide6.QtCore import QByteArray, QSettings

from explorer.core import SettingsError

if TYPE_CHECKING:
    from explorer.gui.mainwindow import MainWindow

__all__ = ["ORGANIZATION", "REMEMBERED", "SETTINGS_VERSION", "app_settings", "restore_window", "save_window"]

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
    st.setValue("sweep/mode", w.sweep_panel.mode)
    st.setValue("sweep/overlay", w.sweep_panel.overlay_check.isChecked())
    st.setValue("random/kind", w.controls.random_kind.currentData())
    st.setValue("random/seed", w.controls.seed_spin.value())
    s = w.state.settings
    for key in REMEMBERED:
        st.setValue(f"check/{key}", getattr(s, key))
    st.sync()
