"""Language-model scale (issue 15): open, check, overviews and edits at 32 x 262,144 float32, through the app layer.

Run: ``python benchmarks/bench_scale.py`` (``--quick`` for fewer repeats). Prints medians with the machine named,
next to the analytic gradient's time and a memory-bandwidth bound (bytes touched / measured memcpy bandwidth).
The peak memory of open + first check + first overviews is measured in a fresh subprocess (VmHWM).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

MiB = 2**20


def _ms(values: list[float]) -> str:
    return f"{statistics.median(values) * 1e3:,.1f} ms"


def memcpy_bandwidth() -> float:
    """Bytes per second of a large ``np.copyto`` (read + write counted), best of 5."""
    a = np.ones(64 * MiB // 8)
    b = np.empty_like(a)
    best = min(_timed(lambda: np.copyto(b, a)) for _ in range(5))
    return 2 * a.nbytes / best


def _timed(fn) -> float:  # type: ignore[no-untyped-def]
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def _vm(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    return 0


class App:
    """The app layer without widgets: state, undo, document and recomputer, driven through Qt's event loop."""

    def __init__(self) -> None:
        from PySide6.QtCore import QCoreApplication, QSettings

        from explorer.app.document import Document
        from explorer.app.edits import EditController
        from explorer.app.jobs import Recomputer
        from explorer.app.state import ExplorerState

        self.qapp = QCoreApplication.instance() or QCoreApplication([])
        self.tmp = tempfile.mkdtemp()
        self.state = ExplorerState()
        self.controller = EditController(self.state)
        self.document = Document(self.controller, QSettings(str(Path(self.tmp) / "s.ini"), QSettings.Format.IniFormat))
        self.recomputer = Recomputer(self.state)

    def wait_report(self, trigger) -> float:  # type: ignore[no-untyped-def]
        """Seconds from ``trigger()`` to the report (and overviews) of the new state."""
        from PySide6.QtCore import QEventLoop, QTimer

        loop = QEventLoop()
        self.recomputer.reportReady.connect(loop.quit)
        self.recomputer.failed.connect(loop.quit)
        guard = QTimer()
        guard.setSingleShot(True)
        guard.timeout.connect(loop.quit)
        guard.start(120_000)
        start = time.perf_counter()
        trigger()
        loop.exec()
        elapsed = time.perf_counter() - start
        self.recomputer.reportReady.disconnect(loop.quit)
        self.recomputer.failed.disconnect(loop.quit)
        return elapsed


def scale_case(n: int, c: int, dtype: str, edits: int, bandwidth: float) -> None:
    from explorer.core import CheckSettings, cross_entropy_grad, eps_sweep, explain_cell

    rng = np.random.default_rng(0)
    x = (rng.normal(size=(n, c)) * 2).astype(dtype)
    y = rng.integers(0, c, n)
    path = Path(tempfile.mkdtemp()) / "logits.npz"
    np.savez(path, logits=x, labels=y)
    app = App()
    app.controller.set_settings(dtype=dtype, reduction="mean")

    def open_file() -> None:
        app.document.open_logits(path)

    first = app.wait_report(open_file)
    report, overviews = app.recomputer.report, app.recomputer.overviews
    assert report is not None and app.recomputer.last_path == "full"
    times = []
    paths = set()
    for _ in range(edits):
        i, j = int(rng.integers(0, n)), int(rng.integers(0, c))
        value = float(rng.normal() * 3)
        times.append(app.wait_report(lambda i=i, j=j, value=value: app.controller.set_logit(i, j, value)))
        paths.add(app.recomputer.last_path)
    report = app.recomputer.report
    assert report is not None
    settings = CheckSettings(eps=report.settings.eps, dtype=dtype, reduction="mean")
    cell = (n // 2, c // 3)
    inspector = [_timed(lambda: explain_cell(report.logits, report.labels, cell, report.settings)) for _ in range(7)]
    kw = settings.loss_kwargs
    sweep = [_timed(lambda: eps_sweep(report.logits, report.labels, cell, include_eps=settings.eps, **kw))
             for _ in range(7)]  # fmt: skip
    analytic = [_timed(lambda: cross_entropy_grad(report.logits, report.labels, **kw)) for _ in range(5)]
    full_check, full_cpu = [], []
    from explorer.core import check_gradient

    for _ in range(3):
        cpu = time.process_time()
        full_check.append(_timed(lambda: check_gradient(report.logits, report.labels, report.settings)))
        full_cpu.append(time.process_time() - cpu)
    tracemalloc.start()
    check_gradient(report.logits, report.labels, report.settings)
    check_peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    cells = n * c
    item = np.dtype(dtype).itemsize
    # A full check reads the logits and writes grad_a, grad_n (dtype), the expected error (float64) and the verdict;
    # abs_err, rel_err and the tolerance map are formed on first use (the overviews form the first two).
    report_bytes = cells * (item + 2 * item + 8 + 1)
    overview_bytes = overviews.nbytes if overviews is not None else 0
    # A row-local edit recomputes one row (its full-check row block) and writes it into the report's arrays
    # and the pyramids in place: it touches that row of every array (read and write).
    per_block = max(1, 16384 // c)
    edit_bytes = 2 * per_block * c * (item + 2 * item + 3 * 8 + 1) * 2  # the app's maps: abs, rel (and expected)
    print(f"\n#### {n} x {c} {dtype} ({cells:,} cells, logits {cells * item / MiB:.0f} MiB)\n")
    print("| step | median | bandwidth bound |")
    print("| --- | ---: | ---: |")
    print(f"| open .npz + first full check + first overviews (one run) | {first * 1e3:,.0f} ms | "
          f"{(cells * item + report_bytes + overview_bytes) / bandwidth * 1e3:,.1f} ms |")  # fmt: skip
    print(f"| edit one cell -> report + 4 overviews ({edits} edits, path {'/'.join(sorted(paths))}) | {_ms(times)} | "
          f"{edit_bytes / bandwidth * 1e3:,.1f} ms |")  # fmt: skip
    print(f"| full check_gradient alone (CPU time of this process: {_ms(full_cpu)}) | {_ms(full_check)} | "
          f"{report_bytes / bandwidth * 1e3:,.1f} ms |")  # fmt: skip
    print(f"| analytic gradient alone (the physical floor's neighbour) | {_ms(analytic)} | "
          f"{cells * 2 * item / bandwidth * 1e3:,.1f} ms |")  # fmt: skip
    print(f"| cell inspector (explain_cell) | {_ms(inspector)} | {c * item / bandwidth * 1e3:,.3f} ms |")
    print(f"| one-cell sweep (61 eps x 5 schemes) | {_ms(sweep)} | {c * item / bandwidth * 1e3:,.3f} ms |")
    print(f"\npeak memory of check_gradient alone (tracemalloc, the report included): "
          f"{check_peak / MiB:,.0f} MiB = {check_peak / (cells * item):.2f} x the logits")  # fmt: skip
    over = statistics.median(times) / (edit_bytes / bandwidth)
    print(f"\novershoot of the edit over its bandwidth bound: {over:.1f}x;"
          f" overviews hold {overview_bytes / MiB:.0f} MiB ({overview_bytes / (cells * item):.2f} x the logits)")
    app.recomputer.shutdown()


def small_case(n: int, c: int, edits: int) -> None:
    """Edit -> report at the ordinary sizes (row-local path vs. the full check it replaces)."""
    from explorer.core import check_gradient

    app = App()
    rng = np.random.default_rng(1)
    app.controller.replace(rng.normal(size=(n, c)), rng.integers(0, c, n))
    app.wait_report(app.recomputer.schedule)
    times, paths = [], set()
    for _ in range(edits):
        i, j, v = int(rng.integers(0, n)), int(rng.integers(0, c)), float(rng.normal())
        times.append(app.wait_report(lambda i=i, j=j, v=v: app.controller.set_logit(i, j, v)))
        paths.add(app.recomputer.last_path)
    x, y, s = app.state.snapshot()
    full = [_timed(lambda: check_gradient(x, y, s)) for _ in range(edits)]
    print(f"| {n} x {c} float64 | {_ms(times)} ({'/'.join(sorted(paths))}) | {_ms(full)} |")
    app.recomputer.shutdown()


PEAK_SCRIPT = r"""
import os, sys, time, numpy as np
os.environ["QT_QPA_PLATFORM"] = "offscreen"
sys.path.insert(0, sys.argv[1])
import bench_scale as b
from explorer.app import jobs, document, edits, state  # imports first: the baseline includes them
app = b.App()
app.controller.set_settings(dtype="float32", reduction="mean")
base = b._vm("VmRSS")
app.wait_report(lambda: app.document.open_logits(sys.argv[2]))
hwm = b._vm("VmHWM")
for k in range(5):
    app.wait_report(lambda k=k: app.controller.set_logit(k, 1000 * k, 7.0))
print(base, hwm, b._vm("VmHWM"))
app.recomputer.shutdown()
"""


def peak_memory(n: int, c: int) -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(n, c)).astype(np.float32)
    path = Path(tempfile.mkdtemp()) / "peak.npz"
    np.savez(path, logits=x, labels=rng.integers(0, c, n))
    out = subprocess.run([sys.executable, "-c", PEAK_SCRIPT, str(Path(__file__).parent), str(path)],
                         capture_output=True, text=True, check=True, cwd=ROOT)  # fmt: skip
    base, hwm_open, hwm_edits = (int(v) for v in out.stdout.split()[-3:])
    print(f"\npeak memory over the process's baseline (VmHWM - VmRSS before opening), {n} x {c} float32 "
          f"(logits {x.nbytes / MiB:.0f} MiB): open + first check + overviews {(hwm_open - base) / MiB:,.0f} MiB = "
          f"{(hwm_open - base) / x.nbytes:.1f} x the logits; after 5 edits {(hwm_edits - base) / MiB:,.0f} MiB = "
          f"{(hwm_edits - base) / x.nbytes:.1f} x")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    edits = 5 if args.quick else 15
    import PySide6

    print(f"{platform.platform()}, {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}, "
          f"Python {platform.python_version()}, NumPy {np.__version__}, PySide6 {PySide6.__version__}")  # fmt: skip
    bandwidth = memcpy_bandwidth()
    print(f"memcpy bandwidth (read + write): {bandwidth / 2**30:.1f} GiB/s")
    scale_case(32, 262_144, "float32", edits, bandwidth)
    print("\n#### Edit -> report at ordinary sizes (app layer, compute only)\n")
    print("| grid | edit -> report median (path) | full check_gradient median |")
    print("| --- | ---: | ---: |")
    for n, c in [(3, 10), (32, 100), (128, 1000)]:
        small_case(n, c, edits * 2)
    peak_memory(32, 262_144)


if __name__ == "__main__":
    main()
