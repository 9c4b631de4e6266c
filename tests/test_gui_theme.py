"""Light and dark: every colour from the palette or chosen per scheme, text at 4.5:1, plots follow."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QPalette

from explorer.app.report_text import DARK_HTML_COLORS, LIGHT_HTML_COLORS, html_colors, summary_parts
from explorer.gui import MainWindow
from explorer.gui.theme import (
    DARK,
    LIGHT,
    THEME_ENV,
    Scheme,
    contrast_ratio,
    dark_palette,
    initial_choice,
    light_palette,
    readable,
)
from explorer.gui.window_settings import app_settings


@pytest.mark.parametrize("colors", [LIGHT, DARK], ids=["light", "dark"])
def test_scheme_colours_meet_wcag_contrast(colors) -> None:  # type: ignore[no-untyped-def]
    pairs = {
        "label cell": (colors.label_text, colors.label_cell),
        "ignored row": (colors.ignored_text, colors.ignored_cell),
        "refused cell": (colors.label_text, colors.refused_cell),
        "axes": (colors.plot_foreground, colors.plot_background),
        "hints": (colors.hint, colors.plot_background),
    }
    palette = dark_palette() if colors.dark else light_palette()
    base = palette.color(QPalette.ColorRole.Base)
    for key, value in colors.html.items():
        pairs[f"rich text {key}"] = (QColor(value), base)
    for role, background in ((QPalette.ColorRole.Text, QPalette.ColorRole.Base),
                             (QPalette.ColorRole.WindowText, QPalette.ColorRole.Window),
                             (QPalette.ColorRole.ButtonText, QPalette.ColorRole.Button),
                             (QPalette.ColorRole.HighlightedText, QPalette.ColorRole.Highlight),
                             (QPalette.ColorRole.ToolTipText, QPalette.ColorRole.ToolTipBase)):  # fmt: skip
        pairs[f"palette {role.name}"] = (palette.color(role), palette.color(background))
    low = {k: round(contrast_ratio(fg, bg), 2) for k, (fg, bg) in pairs.items() if contrast_ratio(fg, bg) < 4.5}
    assert low == {}


def test_readable_keeps_scheme_colours_legible_on_both_backgrounds() -> None:
    from explorer.gui.sweep_panel import SCHEME_COLORS

    for rgb in SCHEME_COLORS.values():
        for background in (QColor("#efefef"), QColor("#2d2d2d"), QColor("#ffffff")):
            assert contrast_ratio(readable(rgb, background), background) >= 4.5


def test_theme_env_variable_wins_over_the_remembered_choice(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(THEME_ENV, "dark")
    assert initial_choice("light") is Scheme.DARK
    monkeypatch.setenv(THEME_ENV, "nonsense")
    assert initial_choice("light") is Scheme.LIGHT
    monkeypatch.delenv(THEME_ENV)
    assert initial_choice(None) is Scheme.SYSTEM


def test_dark_theme_restyles_the_whole_window(qtbot, window: MainWindow) -> None:  # type: ignore[no-untyped-def]
    try:
        window.theme_actions["dark"].trigger()
        assert window.themes.dark and window.theme_actions["dark"].isChecked()
        qtbot.waitUntil(lambda: window.palette().color(QPalette.ColorRole.Window).lightnessF() < 0.3, timeout=3000)
        for view in window.heatmaps.views:
            assert view.backgroundBrush().color() == DARK.plot_background
            assert view.plot.getAxis("left").textPen().color() == DARK.plot_foreground
        assert window.sweep_panel.plot_widget.backgroundBrush().color() == DARK.plot_background
        model = window.grid.logits_model
        label = int(window.state.labels[0])
        assert model.data(model.index(0, label), Qt.ItemDataRole.BackgroundRole).color() == DARK.label_cell
        assert model.data(model.index(0, label), Qt.ItemDataRole.ForegroundRole).color() == DARK.label_text
        assert html_colors() == DARK_HTML_COLORS
        assert DARK_HTML_COLORS["pass"] in dict(summary_parts(window.report).rows)["Verdict"]
        assert DARK_HTML_COLORS["pass"] in window.summary._rows["Verdict"].text()  # the shown summary re-coloured
    finally:
        window.set_theme("light")
    assert not window.themes.dark and html_colors() == LIGHT_HTML_COLORS
    for view in window.heatmaps.views:
        assert view.backgroundBrush().color() == LIGHT.plot_background


def test_exported_maps_stay_light_in_the_dark_theme(qtbot, window: MainWindow) -> None:  # type: ignore[no-untyped-def]
    from explorer.gui.maps_panel import HeatmapPanel

    try:
        window.set_theme("dark")
        panel = HeatmapPanel()  # what exports build
        qtbot.addWidget(panel)
        assert panel.analytic.backgroundBrush().color() == LIGHT.plot_background
        assert panel.analytic.plot.getAxis("left").textPen().color() == LIGHT.plot_foreground
    finally:
        window.set_theme("light")


def test_theme_choice_is_remembered(qtbot, window: MainWindow) -> None:  # type: ignore[no-untyped-def]
    try:
        window.set_theme("dark")
        window.save_settings()
        assert app_settings().value("view/theme") == "dark"
    finally:
        window.set_theme("light")
    assert initial_choice(app_settings().value("view/theme")) is Scheme.DARK


def test_the_code_editor_keeps_its_contrast_in_dark(qtbot, window) -> None:  # type: ignore[no-untyped-def]
    """Keywords were #0b5394 on the dark editor (2.1:1; found by review)."""

    def ratio(a: QColor, b: QColor) -> float:
        def lum(c: QColor) -> float:
            ch = [v / 255 for v in (c.red(), c.green(), c.blue())]
            ch = [v / 12.92 if v <= 0.03928 else ((v + 0.055) / 1.055) ** 2.4 for v in ch]
            return 0.2126 * ch[0] + 0.7152 * ch[1] + 0.0722 * ch[2]

        hi, lo = sorted((lum(a), lum(b)), reverse=True)
        return (hi + 0.05) / (lo + 0.05)

    panel = window.user_panel
    for choice in ("dark", "light"):
        window.set_theme(choice)
        background = panel.editor.palette().base().color()
        for _regex, fmt in panel.highlighter._rules:
            assert ratio(fmt.foreground().color(), background) >= 4.5, (choice, fmt.foreground().color().name())
