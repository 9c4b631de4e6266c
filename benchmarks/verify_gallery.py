"""Issue 16's promise, verified: each PyTorch (and JAX) gallery entry at 64 x 512, float32 and float64, through
`check` and through the window, gives the verdict it should (the correct entries PASS, every bug FAILs).

    python benchmarks/verify_gallery.py                         # everything: minutes (131,073 loss calls a run)
    python benchmarks/verify_gallery.py --n 8 --c 16            # a quick look
    python benchmarks/verify_gallery.py --only torch_correct --paths check
    PYTHONPATH=. /path/to/venv-with-jax/bin/python benchmarks/verify_gallery.py   # JAX entries too

Logits are normal(0, 1) * 3 with a fixed seed, labels uniform, the sum reduction (as `check --logits` takes them),
the central scheme, the noise verdict (the default), eps given explicitly: the float64 default, and 0.1 in
float32 (see --eps32: at float32's default 0.01 the sum of 64 losses of about 10 rounds at 6e-5, and the
quotients of a scalar loss cannot resolve gradients of 1e-4, so even a correct backward gets CANNOT TELL).

`check` runs as a subprocess (`python -m explorer.cli check --logits ... --loss FILE:loss`): its exit code and
its verdict line. The window is the real MainWindow (offscreen): the problem replaced through its edit
controller, the dtype chosen in the controls' dtype combo, the example loaded in the your-code panel, its time
limit set, Check pressed; the verdict read from the display model (``verdict_of(display.report)``) and checked
to be the one the summary shows. Prints a markdown table | entry | dtype | path | verdict | seconds | and exits 1
if a correct entry does not PASS or a bug does not FAIL (CANNOT TELL does not count as catching a bug).
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from explorer.core import default_eps  # noqa: E402
from explorer.usercode.gallery import MUTANTS  # noqa: E402

SEED = 16
PATHS = ("check", "window")


def _problem(n: int, c: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(SEED)
    return rng.normal(size=(n, c)) * 3.0, rng.integers(0, c, n)


def _expected(name: str) -> str:
    return "PASS" if name.endswith("_correct") else "FAIL"


def _entries(only: list[str] | None) -> tuple[list[str], list[str]]:
    """The framework entries to run, and notes on those skipped."""
    names, notes = [], []
    for fw in ("torch", "jax"):
        chosen = [m.name for m in MUTANTS.values() if m.framework == fw and (not only or m.name in only)]
        if not chosen:
            continue
        if importlib.util.find_spec(fw) is None:
            notes.append(f"{fw}: not installed for {sys.executable}; skipped {', '.join(chosen)}")
            continue
        names += chosen
    return names, notes


def _eps(dtype: str, eps32: float) -> float:
    return eps32 if dtype == "float32" else default_eps("central", dtype)


def run_check(name: str, dtype: str, eps: float, data: Path, folder: Path, timeout: float) -> tuple[str, float, int]:
    """(verdict line's verdict, seconds, exit code) of `check --loss` in a subprocess."""
    source = folder / f"{name}.py"
    source.write_text(MUTANTS[name].source)
    cmd = [sys.executable, "-m", "explorer.cli", "check", "--logits", str(data), "--loss", f"{source}:loss",
           "--dtype", dtype, "--eps", repr(eps), "--timeout", repr(timeout)]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    t0 = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=folder, check=False)
    seconds = time.perf_counter() - t0
    lines = [ln for ln in done.stdout.splitlines() if ln.startswith("verdict: ")]
    if not lines:
        tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
        return f"ERROR ({tail[0][:160]})", seconds, done.returncode
    verdict = lines[-1].removeprefix("verdict: ")
    word = "CANNOT TELL" if verdict.startswith("CANNOT TELL") else verdict.split()[0]
    return word, seconds, done.returncode


class WindowRunner:
    """One MainWindow, offscreen, driven as a user would for each run."""

    def __init__(self, logits: np.ndarray, labels: np.ndarray):
        from PySide6.QtWidgets import QApplication

        from explorer.gui import MainWindow

        self.app = QApplication.instance() or QApplication([])
        self.window = MainWindow()
        self.window.show()
        self.window.controller.replace(logits, labels, text="Verify the gallery", reduction="sum")
        self._settle()

    def _wait(self, signal: object, timeout_s: float) -> bool:
        """Run the event loop until ``signal`` fires (True) or ``timeout_s`` passes (False)."""
        from PySide6.QtCore import QEventLoop, QTimer

        loop = QEventLoop()
        timer = QTimer(loop, singleShot=True, interval=int(timeout_s * 1000))
        timer.timeout.connect(loop.quit)
        fired: list[bool] = []

        def done(*_args: object) -> None:
            fired.append(True)
            loop.quit()

        signal.connect(done)  # type: ignore[attr-defined]
        timer.start()
        loop.exec()
        signal.disconnect(done)  # type: ignore[attr-defined]
        timer.stop()
        return bool(fired)

    def run(self, name: str, dtype: str, eps: float, timeout: float) -> tuple[str, float]:
        from explorer.app.report_text import verdict_of

        w = self.window
        combo = w.controls.dtype_combo
        if combo.currentData() != dtype:
            combo.setCurrentIndex(combo.findData(dtype))
        w.controller.set_settings(eps=eps)
        self._settle()
        panel = w.user_panel
        panel.editor.setPlainText("")  # so that loading the example does not ask
        if not panel.load_example(name):
            return "ERROR (the example did not load)", 0.0
        panel.timeout.setValue(timeout)
        t0 = time.perf_counter()
        panel.run_button.click()
        finished = self._wait(w.user_job.finished, timeout + 60.0)
        seconds = time.perf_counter() - t0
        if not finished:
            return "ERROR (no result)", seconds
        report = w.display.report
        check = w.display.user_check
        if check is None or report is None or check.code.source != MUTANTS[name].source:
            return f"ERROR ({panel.output.toPlainText().splitlines()[0][:160]})", seconds
        if w.state.settings.dtype != dtype or report.settings.dtype != dtype or check.result.dtype != dtype:
            return "ERROR (the run did not use the dtype chosen)", seconds
        verdict = verdict_of(report)
        if verdict.word not in w.summary.toPlainText():
            return f"ERROR (the summary does not show {verdict.word})", seconds
        return verdict.word, seconds

    def _settle(self) -> None:
        """Until the window's own check of the problem as it now is has arrived."""
        deadline = time.monotonic() + 600.0
        while self.window.recomputer.pending and time.monotonic() < deadline:
            self._wait(self.window.recomputer.reportReady, 5.0)

    def close(self) -> None:
        self.window.controller.stack.setClean()  # nothing to save: closing asks nothing
        self.window.close()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=64)
    ap.add_argument("--c", type=int, default=512)
    ap.add_argument("--dtypes", default="float32,float64")
    ap.add_argument("--paths", default=",".join(PATHS))
    ap.add_argument("--only", default="", help="comma-separated gallery names")
    ap.add_argument("--eps32", type=float, default=0.1, help="eps in float32 (default 0.1)")
    ap.add_argument("--timeout", type=float, default=900.0, help="time limit of each run, s (default 900)")
    args = ap.parse_args(argv)
    names, notes = _entries([s for s in args.only.split(",") if s] or None)
    dtypes = [d for d in args.dtypes.split(",") if d]
    paths = [p for p in args.paths.split(",") if p]
    logits, labels = _problem(args.n, args.c)
    private = tempfile.TemporaryDirectory()  # the window's settings and autosaves: never the user's own
    os.environ["GRADIENT_EXPLORER_SETTINGS"] = str(Path(private.name) / "settings.ini")
    os.environ["GRADIENT_EXPLORER_DATA"] = str(Path(private.name) / "data")
    print(f"{args.n} x {args.c}, logits normal * 3 (seed {SEED}), central, noise verdict, "
          f"eps: {', '.join(f'{d} {_eps(d, args.eps32):g}' for d in dtypes)}; {sys.executable}")  # fmt: skip
    for note in notes:
        print(f"note: {note}")
    print("\n| entry | dtype | path | verdict | seconds |\n|---|---|---|---|---|", flush=True)
    wrong = []
    window = WindowRunner(logits, labels) if "window" in paths and names else None
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        data = folder / "problem.npz"
        np.savez(data, logits=logits, labels=labels)
        for name in names:
            for dtype in dtypes:
                eps = _eps(dtype, args.eps32)
                for path in paths:
                    if path == "check":
                        word, seconds, code = run_check(name, dtype, eps, data, folder, args.timeout)
                        ok = word == _expected(name) and code == (0 if word == "PASS" else 1)
                    else:
                        assert window is not None
                        word, seconds = window.run(name, dtype, eps, args.timeout)
                        ok = word == _expected(name)
                    if not ok:
                        wrong.append(f"{name} {dtype} {path}: {word}, expected {_expected(name)}")
                    print(f"| {name} | {dtype} | {path} | {word}{'' if ok else ' (WRONG)'} | {seconds:.1f} |",
                          flush=True)  # fmt: skip
    print()
    for w in wrong:
        print(f"wrong: {w}")
    print("all as expected" if not wrong else f"{len(wrong)} not as expected", flush=True)
    if window is not None:
        window.close()
    private.cleanup()
    return 1 if wrong else 0


if __name__ == "__main__":
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    # Skip the interpreter's teardown: with JAX's threads and Qt's objects alive it can crash (seen: SIGSEGV after
    # the table was printed), which would hide the exit code that carries the result.
    os._exit(code)
