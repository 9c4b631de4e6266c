"""Refresh a view's content only while it is on screen.

The summary, the cell inspector and the worst-cells table share one dock area as tabs: two of them
are always behind another. Qt still calls a widget in a tab behind another *visible*, so they would be
rebuilt on every edit for nobody (the inspector's text alone costs about 2 ms at 32 x 100, more than
the edit's computation). :class:`RefreshWhenShown` refreshes a view at once when it is on screen, and
otherwise marks it stale and refreshes it right after it is next painted (a tab brought forward, a
closed dock shown again), so what is on screen is never stale for longer than one paint.
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QEvent, QObject, Qt, QTimer
from PySide6.QtWidgets import QAbstractScrollArea, QScrollArea, QWidget

__all__ = ["RefreshWhenShown", "on_screen"]


def on_screen(widget: QWidget, depth: int = 3) -> bool:
    """Whether any part of ``widget`` is on screen (not closed, not a dock tab behind another).

    A widget wholly covered by its own opaque children (a scroll area by its viewport and the
    viewport by its content) has an empty visible region of its own while they show: its children
    are asked, ``depth`` levels down.
    """
    if not widget.isVisible():
        return False
    if not widget.visibleRegion().isEmpty():
        return True
    return depth > 0 and any(on_screen(child, depth - 1) for child in widget.findChildren(
        QWidget, options=Qt.FindChildOption.FindDirectChildrenOnly))  # fmt: skip


class RefreshWhenShown(QObject):
    """Calls ``refresh`` on :meth:`request` when ``widget`` is on screen, else after its next paint.

    A scroll area's paints go to its viewport, or only to its content widget when that covers the viewport
    (a ``QScrollArea``'s widget fills its background), so the widget, its viewport and its content are all
    watched for them.
    """

    def __init__(self, widget: QWidget, refresh: Callable[[], None]):
        super().__init__(widget)
        self.widget = widget
        self._refresh = refresh
        self.stale = False
        self._timer = QTimer(self, singleShot=True, interval=0)
        self._timer.timeout.connect(self._on_timer_timeout)
        painted: list[QWidget] = [widget]
        if isinstance(widget, QAbstractScrollArea):
            painted.append(widget.viewport())
        content = widget.widget() if isinstance(widget, QScrollArea) else None
        if content is not None:
            painted.append(content)
        for w in painted:
            w.installEventFilter(self)

    def request(self) -> None:
        """The content is out of date: refresh it now if it is on screen, else when it is shown."""
        if on_screen(self.widget):
            self.stale = False
            self._refresh()
        else:
            self.stale = True

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if self.stale and event.type() == QEvent.Type.Paint:
            self._timer.start()  # refreshed after this paint, not inside it
        return False

    def _on_timer_timeout(self) -> None:
        if self.stale and on_screen(self.widget):
            self.stale = False
            self._refresh()
