"""The command line, run as users run it: a subprocess, offscreen, every format written and read back."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QImage, QPainter

from explorer.core import CheckSettings
from explorer.files.io import read_csv_export, save_session

ROOT = Path(__file__).resolve().parent.parent


def run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "PYTHONPATH": str(ROOT)}
    env.pop("DISPLAY", None)
    return subprocess.run([sys.executable, "-m", "explorer", *args], capture_output=True, text=True, env=env, cwd=cwd)


def colour_stats(image: QImage) -> tuple[int, bool, bool]:
    """Distinct colours on a grid of samples, and whether strong red and strong blue (the diverging maps) appear."""
    colours = set()
    red = blue = False
    step = max(1, min(image.width(), image.height()) // 150)
    for x in range(0, image.width(), step):
        for y in range(0, image.height(), step):
            c = image.pixelColor(x, y)
            colours.add(c.rgb())
            red |= c.red() > 150 and c.green() < 90 and c.blue() < 90
            blue |= c.blue() > 140 and c.red() < 80
    return len(colours), red, blue


def assert_figure(image: QImage, min_width: int = 300) -> None:
    assert not image.isNull()
    assert image.width() >= min_width
    distinct, red, blue = colour_stats(image)
    assert distinct > 40, "blank or nearly blank image"
    assert red and blue, "the diverging colourbars (red and blue) are missing"


def test_check_passes_and_fails_with_exit_codes() -> None:
    ok = run("check")
    assert ok.returncode == 0, ok.stderr
    assert "verdict: PASS" in ok.stdout
    bad = run("check", "--atol", "1e-15", "--rtol", "0")
    assert bad.returncode == 1
    assert "verdict: FAIL" in bad.stdout
    pitfall = run("check", "--perturb", "all")
    assert pitfall.returncode == 1  # the origin question's mistake fails the check


@pytest.mark.parametrize(
    "args",
    [
        ("check", "--scheme", "sideways"),
        ("check", "--eps", "-1"),
        ("check", "--eps", "abc"),
        ("check", "--bogus"),
        ("check", "--logits", "/does/not/exist.npy"),
        ("check", "--preset", "nope"),
        ("export", "out.xyz"),
        ("export",),
        ("check", "--labels", "y.txt"),
        ("--preset", "nope"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(args: tuple[str, ...], tmp_path: Path) -> None:
    out = run(*args, cwd=tmp_path)
    assert out.returncode == 2
    assert "Traceback" not in out.stderr
    assert out.stderr.count("\n") == 1 and out.stderr.startswith("gradient-explorer: error:")


def test_help_works_without_a_display() -> None:
    for args in ((), ("check",), ("export",)):
        out = run(*args, "--help")
        assert out.returncode == 0
        assert "usage" in out.stdout


def test_check_from_files_and_sessions(tmp_path: Path) -> None:
    (tmp_path / "x.csv").write_text("a,b,c,y\n1,2,3,2\n0.5,0.1,-1,0\n")
    out = run("check", "--logits", str(tmp_path / "x.csv"), "--labels-column", "y", "--reduction", "mean")
    assert out.returncode == 0, out.stderr
    assert "2 x 3" in out.stdout
    save_session(tmp_path / "s.json", [[1.0, 2.0, 0.5]], [1], CheckSettings(eps=1e-4, scheme="central4"))
    out = run("check", "--session", str(tmp_path / "s.json"))
    assert out.returncode == 0, out.stderr
    assert "central4" in out.stdout and "eps=0.0001" in out.stdout
    (tmp_path / "bad.json").write_text("{ truncated")
    out = run("check", "--session", str(tmp_path / "bad.json"))
    assert out.returncode == 2 and "not valid JSON" in out.stderr


def test_export_data_formats(tmp_path: Path) -> None:
    assert run("export", str(tmp_path / "d.csv"), "--preset", "near_tie").returncode == 0
    meta, arrays = read_csv_export(tmp_path / "d.csv")
    assert arrays["logit"].shape == (3, 3) and meta["scheme"] == "central"
    assert run("export", str(tmp_path / "d.npz"), "--dtype", "float32").returncode == 0
    with np.load(tmp_path / "d.npz", allow_pickle=False) as z:
        assert z["grad_numeric"].dtype == np.float32


@pytest.mark.parametrize("what", ["dashboard", "analytic", "sweep"])
def test_export_png(tmp_path: Path, what: str) -> None:
    out = tmp_path / f"{what}.png"
    res = run("export", str(out), "--what", what, "--width", "1000")
    assert res.returncode == 0, res.stderr
    image = QImage(str(out))
    assert image.width() == 1000
    if what == "sweep":
        assert colour_stats(image)[0] > 20
    else:
        assert_figure(image)


def test_export_svg_is_xml_with_text_and_renders(qapp, tmp_path: Path) -> None:
    from PySide6.QtSvg import QSvgRenderer

    out = tmp_path / "d.svg"
    assert run("export", str(out)).returncode == 0
    root = ET.parse(out).getroot()
    texts = " ".join("".join(t.itertext()) for t in root.iter("{http://www.w3.org/2000/svg}text"))
    assert "Analytic gradient" in texts and "Numeric gradient" in texts  # text stays text
    renderer = QSvgRenderer(str(out))
    assert renderer.isValid()
    image = QImage(1200, 900, QImage.Format.Format_ARGB32)
    image.fill(Qt.GlobalColor.white)
    painter = QPainter(image)
    renderer.render(painter)
    painter.end()
    assert_figure(image)


def test_export_pdf_rasterises(tmp_path: Path) -> None:
    out = tmp_path / "d.pdf"
    assert run("export", str(out)).returncode == 0
    assert out.read_bytes().startswith(b"%PDF")
    if shutil.which("pdftoppm") is None:
        pytest.skip("pdftoppm (poppler-utils) is not installed; CI installs it")
    subprocess.run(["pdftoppm", "-png", "-r", "96", str(out), str(tmp_path / "page")], check=True)
    page = QImage(str(tmp_path / "page-1.png"))
    # 96 dpi: the page is the figure's size in pixels (no DPI scaling trap).
    assert abs(page.width() - 1200) <= 2 and abs(page.height() - 900) <= 2
    assert_figure(page)
    text = subprocess.run(["pdftotext", str(out), "-"], capture_output=True, text=True).stdout
    assert "Analytic gradient" in text  # text as text


def test_export_png_dpi_scales_the_figure(tmp_path: Path) -> None:
    out = tmp_path / "s.png"
    res = run("export", str(out), "--what", "sweep", "--dpi", "192")
    assert res.returncode == 0, res.stderr
    image = QImage(str(out))
    assert (image.width(), image.height()) == (1600, 1120)
    assert round(image.dotsPerMeterX() * 0.0254) == 192


def test_plot_exports_honour_the_umask(tmp_path: Path) -> None:
    """Plot exports were written with mode 0600 (mkstemp), unlike sessions and data exports (found by review)."""
    old = os.umask(0o022)
    try:
        for suffix in ("png", "svg"):
            out = tmp_path / f"plot.{suffix}"
            res = subprocess.run([sys.executable, "-m", "explorer", "export", str(out)], capture_output=True, text=True)
            assert res.returncode == 0, res.stderr
            assert out.stat().st_mode & 0o777 == 0o644
    finally:
        os.umask(old)
