"""Edit-to-heatmaps latency in the real window, and cold start to the first drawn window.

    python benchmarks/bench_gui.py [--edits 200]

Uses the X display in $DISPLAY, or starts Xvfb if it is installed, or falls back to the offscreen
platform (said in the output). An edit goes through the real path: the logits model's setData parses
the text, the edit controller records it, the state notifies, the recomputer computes (a worker thread
above 100,000 elements), the window draws; the clock stops when all three heatmaps have repainted.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def start_display() -> subprocess.Popen | None:
    if os.environ.get("DISPLAY"):
        os.environ.setdefault("QT_QPA_PLATFORM", "xcb")
        return None
    if shutil.which("Xvfb"):
        sys.path.insert(0, str(ROOT / "tests"))
        from xvfb_harness import start_xvfb

        proc, os.environ["DISPLAY"] = start_xvfb()
        os.environ["QT_QPA_PLATFORM"] = "xcb"
        return proc
    os.environ["QT_QPA_PLATFORM"] = "offscreen"
    return None


def latency(sizes: list[tuple[int, int]], edits: int) -> list[str]:
    from PySide6.QtCore import QEventLoop, QTimer
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance() or QApplication([])  # noqa: F841 (must exist before the window)
    from explorer.gui import MainWindow

    w = MainWindow(restore_settings=False)
    w.resize(1280, 800)
    w.show()
    rng = np.random.default_rng(0)
    lines = []
    done = {"t": 0.0}
    loop = QEventLoop()

    def on_report(_report: object) -> None:  # connected after the window's own slot
        for view in w.heatmaps.views:
            view.viewport().repaint()
        done["t"] = time.perf_counter()
        loop.quit()

    w.recomputer.reportReady.connect(on_report)

    def wait() -> None:
        QTimer.singleShot(60_000, loop.quit)
        loop.exec()

    for n, c in sizes:
        w.controller.replace(rng.normal(size=(n, c)) * 3, rng.integers(0, c, n))
        wait()
        model = w.grid.logits_model
        times = []
        for _ in range(edits):
            i, j = int(rng.integers(n)), int(rng.integers(c))
            text = f"{rng.normal() * 3:.6f}"
            t0 = time.perf_counter()
            model.setData(model.index(i, j), text)
            wait()
            times.append((done["t"] - t0) * 1e3)
        med = statistics.median(times)
        p95 = float(np.percentile(times, 95))
        compute = w.recomputer.last_duration * 1e3
        lines.append(f"| {n} x {c} | {med:.1f} ms | {p95:.1f} ms | {compute:.1f} ms |")
    w.controller.stack.setClean()
    w.close()
    return lines


def cold_start(runs: int) -> list[float]:
    env = dict(os.environ)  # main() points settings and data at a fresh temporary folder
    out = []
    for _ in range(runs):
        t0 = time.perf_counter()
        with subprocess.Popen(
            [sys.executable, "-m", "explorer", "--quit-after-first-draw", "--no-restore"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        ) as proc:
            assert proc.stdout is not None
            for line in proc.stdout:
                if line.startswith("first-draw"):
                    out.append(time.perf_counter() - t0)
                    break
            proc.wait(timeout=60)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--edits", type=int, default=200)
    parser.add_argument("--starts", type=int, default=5)
    args = parser.parse_args()
    # A fresh folder each run: an autosave left by an interrupted run would otherwise be offered at start
    # (a modal question no one answers).
    scratch = Path(tempfile.mkdtemp(prefix="bench-gui-"))
    os.environ["GRADIENT_EXPLORER_SETTINGS"] = str(scratch / "settings.ini")
    os.environ["GRADIENT_EXPLORER_DATA"] = str(scratch / "data")
    xvfb = start_display()
    try:
        print(f"platform: {os.environ['QT_QPA_PLATFORM']}; float64, central; {args.edits} edits per size\n")
        print("| grid | median edit → 3 heatmaps drawn | 95th percentile | compute alone |")
        print("| --- | ---: | ---: | ---: |")
        for line in latency([(3, 10), (32, 100), (128, 1000)], args.edits):
            print(line)
        starts = cold_start(args.starts)
        print(
            f"\nCold start to the first drawn window (python -m explorer, {len(starts)} runs, bytecode compiled "
            f"each time as PYTHONDONTWRITEBYTECODE={os.environ.get('PYTHONDONTWRITEBYTECODE', '')}): "
            f"median {statistics.median(starts):.2f} s, min {min(starts):.2f} s"
        )
    finally:
        if xvfb is not None:
            xvfb.terminate()


if __name__ == "__main__":
    main()
