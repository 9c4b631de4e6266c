"""Light and dark: one place that says which colours the window uses.

The scheme is the system's (Qt 6's :meth:`QStyleHints.colorScheme`) unless the user picks one
(View > Theme, remembered), or ``GRADIENT_EXPLORER_THEME`` (``system``, ``light`` or ``dark``) says so.
Under Xvfb or offscreen there is no system theme, so the override is what tests and screenshots use.

Every colour a view draws that the palette does not give comes from :class:`Colors`, chosen per
scheme and checked for WCAG contrast (:func:`contrast_ratio`, 4.5:1 for text). Views listen to
:attr:`ThemeManager.changed` and restyle themselves.
"""

from __future__ import annotations

import enum
import os
from dataclasses import dataclass

from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtGui import QColor, QGuiApplication, QPalette
from PySide6.QtWidgets import QApplication

from explorer.app.report_text import DARK_HTML_COLORS, LIGHT_HTML_COLORS, use_html_colors

__all__ = [
    "DARK",
    "LIGHT",
    "THEME_ENV",
    "Colors",
    "Scheme",
    "ThemeManager",
    "contrast_ratio",
    "current_colors",
    "dark_palette",
    "light_palette",
    "readable",
    "relative_luminance",
    "theme_manager",
]

#: Environment variable that overrides the scheme (``system``, ``light`` or ``dark``).
THEME_ENV = "GRADIENT_EXPLORER_THEME"


class Scheme(enum.Enum):
    """What the user chose: follow the system, or force light or dark."""

    SYSTEM = "system"
    LIGHT = "light"
    DARK = "dark"


@dataclass(frozen=True)
class Colors:
    """The colours of one scheme that are not taken from the palette.

    Attributes
    ----------
    dark : bool
    plot_background, plot_foreground : QColor
        Plot area and axes/titles/tick labels.
    hint : QColor
        Secondary text on plots (the sweep's hints), still 4.5:1 on ``plot_background``.
    label_cell, label_text : QColor
        Each row's label cell in the grid, and its text.
    ignored_cell, ignored_text : QColor
        Rows left out by ``ignore_index``.
    refused_cell : QColor
        A cell whose edit was refused (flashed briefly).
    outline_outer, outline_inner : QColor
        Two-tone outline of the selected cell (visible on any colour of either map).
    crosshair : QColor
    eps_line : QColor
    html : dict of str
        ``#rrggbb`` for rich text (``pass``, ``fail``, ``warn``), from :mod:`explorer.app.report_text`.
    """

    dark: bool
    plot_background: QColor
    plot_foreground: QColor
    hint: QColor
    label_cell: QColor
    label_text: QColor
    ignored_cell: QColor
    ignored_text: QColor
    refused_cell: QColor
    outline_outer: QColor
    outline_inner: QColor
    crosshair: QColor
    eps_line: QColor
    html: dict[str, str]


LIGHT = Colors(
    dark=False,
    plot_background=QColor(255, 255, 255),
    plot_foreground=QColor(0, 0, 0),
    hint=QColor(90, 90, 90),
    label_cell=QColor(255, 221, 128),
    label_text=QColor(0, 0, 0),
    ignored_cell=QColor(225, 225, 225),
    ignored_text=QColor(60, 60, 60),
    refused_cell=QColor(255, 170, 170),
    outline_outer=QColor(0, 0, 0),
    outline_inner=QColor(255, 255, 255),
    crosshair=QColor(60, 60, 60, 170),
    eps_line=QColor(200, 30, 30),
    html=LIGHT_HTML_COLORS,
)

DARK = Colors(
    dark=True,
    plot_background=QColor(30, 30, 30),
    plot_foreground=QColor(225, 225, 225),
    hint=QColor(175, 175, 175),
    label_cell=QColor(110, 84, 10),
    label_text=QColor(255, 255, 255),
    ignored_cell=QColor(70, 70, 70),
    ignored_text=QColor(215, 215, 215),
    refused_cell=QColor(140, 30, 30),
    outline_outer=QColor(0, 0, 0),
    outline_inner=QColor(255, 255, 255),
    crosshair=QColor(220, 220, 220, 170),
    eps_line=QColor(255, 95, 95),
    html=DARK_HTML_COLORS,
)


def relative_luminance(color: QColor) -> float:
    """WCAG 2 relative luminance of an sRGB colour (0 black … 1 white)."""

    def channel(v: float) -> float:
        return v / 12.92 if v <= 0.04045 else ((v + 0.055) / 1.055) ** 2.4

    return 0.2126 * channel(color.redF()) + 0.7152 * channel(color.greenF()) + 0.0722 * channel(color.blueF())


def contrast_ratio(a: QColor | str, b: QColor | str) -> float:
    """WCAG 2 contrast ratio of two colours (1 … 21); text needs 4.5.

    Examples
    --------
    >>> round(contrast_ratio("#000000", "#ffffff"), 1)
    21.0
    """
    la, lb = relative_luminance(QColor(a)), relative_luminance(QColor(b))
    hi, lo = max(la, lb), min(la, lb)
    return (hi + 0.05) / (lo + 0.05)


def readable(color: QColor | tuple[int, int, int], background: QColor, ratio: float = 4.5) -> QColor:
    """``color`` blended toward black (on a light background) or white (on a dark one) just enough to
    reach ``ratio`` contrast with ``background``: coloured text keeps its hue and stays legible.

    Examples
    --------
    >>> round(contrast_ratio(readable((230, 159, 0), QColor("#ffffff")), "#ffffff"), 1) >= 4.5
    True
    """
    c = QColor(*color) if isinstance(color, tuple) else QColor(color)
    target = QColor(0, 0, 0) if relative_luminance(background) > 0.18 else QColor(255, 255, 255)
    for step in range(21):
        t = step / 20
        mixed = QColor(*(round(a + (b - a) * t) for a, b in ((c.red(), target.red()), (c.green(), target.green()),
                                                              (c.blue(), target.blue()))))  # fmt: skip
        if contrast_ratio(mixed, background) >= ratio:
            return mixed
    return target


def _palette(roles: dict[QPalette.ColorRole, str], disabled_text: str) -> QPalette:
    palette = QPalette()
    for role, value in roles.items():
        palette.setColor(role, QColor(value))
    for role in (QPalette.ColorRole.Text, QPalette.ColorRole.WindowText, QPalette.ColorRole.ButtonText):
        palette.setColor(QPalette.ColorGroup.Disabled, role, QColor(disabled_text))
    return palette


def dark_palette() -> QPalette:
    """A dark Fusion palette whose text meets 4.5:1 on every background role it is drawn on."""
    r = QPalette.ColorRole
    return _palette({r.Window: "#2d2d2d", r.WindowText: "#e8e8e8", r.Base: "#1e1e1e", r.AlternateBase: "#2a2a2a",
                     r.ToolTipBase: "#3a3a3a", r.ToolTipText: "#f0f0f0", r.PlaceholderText: "#a0a0a0",
                     r.Text: "#e8e8e8", r.Button: "#3a3a3a", r.ButtonText: "#e8e8e8", r.BrightText: "#ff6b6b",
                     r.Highlight: "#2f65ca", r.HighlightedText: "#ffffff", r.Link: "#7ab7ff",
                     r.LinkVisited: "#c59cff", r.Light: "#4a4a4a", r.Midlight: "#3e3e3e", r.Mid: "#343434",
                     r.Dark: "#1a1a1a", r.Shadow: "#000000"}, "#9a9a9a")  # fmt: skip


def light_palette() -> QPalette:
    """A light Fusion palette (used when light is forced)."""
    r = QPalette.ColorRole
    return _palette({r.Window: "#efefef", r.WindowText: "#1a1a1a", r.Base: "#ffffff", r.AlternateBase: "#f5f5f5",
                     r.ToolTipBase: "#ffffdc", r.ToolTipText: "#000000", r.PlaceholderText: "#6b6b6b",
                     r.Text: "#1a1a1a", r.Button: "#e6e6e6", r.ButtonText: "#1a1a1a", r.BrightText: "#ffffff",
                     r.Highlight: "#2f65ca", r.HighlightedText: "#ffffff", r.Link: "#0b57d0",
                     r.LinkVisited: "#6a1b9a", r.Light: "#ffffff", r.Midlight: "#f4f4f4", r.Mid: "#b8b8b8",
                     r.Dark: "#9f9f9f", r.Shadow: "#767676"}, "#6e6e6e")  # fmt: skip


def _system_is_dark() -> bool:
    app = QGuiApplication.instance()
    if app is None:
        return False
    scheme = QGuiApplication.styleHints().colorScheme()
    if scheme == Qt.ColorScheme.Dark:
        return True
    if scheme == Qt.ColorScheme.Light:
        return False
    window = QGuiApplication.palette().color(QPalette.ColorRole.Window)
    return window.lightnessF() < 0.5


class ThemeManager(QObject):
    """The application's scheme: the user's choice, the colours it gives, and a change signal.

    Signals
    -------
    changed(Colors)
        The colours changed (a new choice, or the system switched while following it).
    """

    changed = Signal(object)

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self._choice = Scheme.SYSTEM
        self._colors = LIGHT
        app = QApplication.instance()
        self._original_style = app.style().name() if isinstance(app, QApplication) else ""
        self._original_palette = QPalette(QGuiApplication.palette()) if app is not None else QPalette()
        if app is not None:
            QGuiApplication.styleHints().colorSchemeChanged.connect(self._on_style_hints_color_scheme_changed)
        self._colors = DARK if _system_is_dark() else LIGHT
        use_html_colors(self._colors.html)

    @property
    def choice(self) -> Scheme:
        return self._choice

    @property
    def colors(self) -> Colors:
        return self._colors

    @property
    def dark(self) -> bool:
        return self._colors.dark

    def set_choice(self, choice: Scheme | str) -> None:
        """Follow the system, or force light or dark (the palette of the whole application)."""
        choice = Scheme(choice)
        app = QApplication.instance()
        self._choice = choice
        if isinstance(app, QApplication):
            if choice is Scheme.SYSTEM:
                if self._original_style and app.style().name() != self._original_style:
                    app.setStyle(self._original_style)
                app.setPalette(self._original_palette)
            else:
                if app.style().name().lower() != "fusion":
                    app.setStyle("Fusion")
                app.setPalette(dark_palette() if choice is Scheme.DARK else light_palette())
        self._update()

    def _update(self) -> None:
        dark = self._choice is Scheme.DARK or (self._choice is Scheme.SYSTEM and _system_is_dark())
        colors = DARK if dark else LIGHT
        use_html_colors(colors.html)
        if colors is not self._colors:
            self._colors = colors
            self.changed.emit(colors)

    def _on_style_hints_color_scheme_changed(self, _scheme: object) -> None:
        if self._choice is Scheme.SYSTEM:
            self._update()


_MANAGER: list[ThemeManager] = []


def theme_manager() -> ThemeManager:
    """The application's one :class:`ThemeManager` (made on first use, owned by the QApplication)."""
    app = QApplication.instance()
    if _MANAGER:
        manager = _MANAGER[0]
        try:
            if manager.parent() is app:
                return manager
        except RuntimeError:  # the C++ object went with an earlier QApplication
            pass
        _MANAGER.clear()
    manager = ThemeManager(app)
    _MANAGER.append(manager)
    return manager


def current_colors() -> Colors:
    """The colours in use (light when there is no application yet)."""
    return theme_manager().colors if QApplication.instance() is not None else LIGHT


def initial_choice(remembered: object = None) -> Scheme:
    """The scheme to start with: ``GRADIENT_EXPLORER_THEME`` first, then the remembered choice."""
    for value in (os.environ.get(THEME_ENV), remembered):
        try:
            return Scheme(str(value).strip().lower())
        except ValueError:
            continue
    return Scheme.SYSTEM
