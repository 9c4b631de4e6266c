"""The PySide6 window. Importing this imports Qt; ``explorer.core`` never does."""

from __future__ import annotations

from explorer.gui.mainwindow import MainWindow

__all__ = ["MainWindow"]
