"""User-code runs in NumPy, PyTorch and JAX: the cost of a run, and the gallery's verdicts at one size.

    python benchmarks/bench_usercode.py                    # 64 x 512: NumPy vs PyTorch (vs JAX if installed)
    python benchmarks/bench_usercode.py --repeat 3 --n 64 --c 512
    python benchmarks/bench_usercode.py --gallery           # + every framework example, float32 and float64,
                                                            #   through the runner and through `check --loss`
    python benchmarks/bench_usercode.py --n 32 --c 100 --repeat 5 --elements   # per-row losses: by columns and
                                                            #   element by element (minutes at 64 x 512)
    python benchmarks/bench_usercode.py --per-call          # a scalar loss's cost per call, element by element:
                                                            #   before (a copy per call) and now, float32/float64

Each run is a whole check as the window does it (the settings' noise verdict, so the loss is differenced at
eps and 2 eps, every element), in the sandboxed child process, including the framework's import. The goal
(issue 16): a PyTorch run costs at most 3x the same check of equivalent NumPy code. Prints medians.

The first table times losses that return one value per row (the origin question's code, with C taken from the
logits; PyTorch's cross-entropy with reduction="none"): the runner differences them by columns (C calls of the
loss per stencil point instead of N C, after checking bit for bit that the loss is row-separable); with
--elements also element by element (the path every loss took before, and scalar losses still take), with the
number of loss calls and whether both paths give the same bits.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from explorer.core import CheckSettings  # noqa: E402
from explorer.usercode.gallery import MUTANTS  # noqa: E402
from explorer.usercode.runner import UserCode, check_user_code, run_user_check, user_report  # noqa: E402

LIMIT_S = 3600.0
ORIGIN = (ROOT / "tests" / "data" / "origin_question.py").read_text().replace("np.eye(classes)", "np.eye(a.shape[1])")
TORCH_ROWS = """import torch.nn.functional as F


def loss(logits, labels):
    return F.cross_entropy(logits, labels, reduction="none")
"""
PER_ROW = {
    "NumPy, the origin question's per-row loss": (UserCode(ORIGIN, "softmax_crossentropy", "grad_softmax_crossentropy"),
                                                  "numpy"),
    "PyTorch, F.cross_entropy(reduction='none'), autodiff": (UserCode(TORCH_ROWS, "loss", ""), "torch"),
}  # fmt: skip


def _problem(n: int, c: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    return rng.normal(size=(n, c)) * 2.0, rng.integers(0, c, n)


def _code(name: str) -> UserCode:
    m = MUTANTS[name]
    return UserCode(m.source, "loss", m.grad_name)


def _time_runs(name: str, x: np.ndarray, y: np.ndarray, dtype: str, repeat: int) -> tuple[float, float, bool]:
    settings = CheckSettings.with_default_eps("central", dtype)
    walls, inside, ok = [], [], True
    for _ in range(repeat):
        t0 = time.perf_counter()
        checked = check_user_code(_code(name), x, y, settings, LIMIT_S)
        walls.append(time.perf_counter() - t0)
        inside.append(checked.result.duration_s)
        ok = checked.report.ok
    return statistics.median(walls), statistics.median(inside), ok


def _per_row(code: UserCode, x: np.ndarray, y: np.ndarray, dtype: str, repeat: int, columns: bool) -> tuple:
    settings = CheckSettings.with_default_eps("central", dtype)
    walls, inside = [], []
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = run_user_check(code, x, y, settings.eps, settings.scheme, LIMIT_S, dtype=dtype, noise=True,
                                columns=columns)  # fmt: skip
        ok = user_report(result, x, y, settings).ok
        walls.append(time.perf_counter() - t0)
        inside.append(result.duration_s)
    return statistics.median(walls), statistics.median(inside), result, ok


def _per_row_table(x: np.ndarray, y: np.ndarray, args: argparse.Namespace, have: dict[str, bool]) -> None:
    print("| per-row loss | path | wall (s) | in the child (s) | loss calls | verdict | bits as elements |")
    print("| --- | --- | ---: | ---: | ---: | --- | --- |")
    for label, (code, framework) in PER_ROW.items():
        if not have[framework]:
            print(f"| {label} | not installed | | | | | |")
            continue
        runs = [(True, *_per_row(code, x, y, args.dtype, args.repeat, True))]
        if args.elements:
            runs.append((False, *_per_row(code, x, y, args.dtype, args.repeat, False)))
        numerics = [(r.grad_numeric.tobytes(), r.grad_numeric_2h.tobytes()) for _, _, _, r, _ in runs]
        same = "" if len(runs) == 1 else ("yes" if numerics[0] == numerics[1] else "NO")
        for columns, wall, inside, result, ok in runs:
            path = "by columns" if result.numeric_path == "columns" else f"elements ({result.numeric_reason})"
            print(f"| {label} | {path if columns else 'element by element (forced)'} | {wall:.2f} | {inside:.2f} | "
                  f"{result.loss_calls} | {'PASS' if ok else 'FAIL'} | {same} |")  # fmt: skip
    print()


def _cli_verdict(name: str, x: np.ndarray, y: np.ndarray, dtype: str) -> int:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "mine.py").write_text(MUTANTS[name].source)
        np.savez(folder / "batch.npz", logits=x, labels=y)
        args = ["check", "--loss", "mine.py:loss", "--logits", "batch.npz", "--dtype", dtype, "--reduction", "sum",
                "--timeout", str(LIMIT_S)]  # fmt: skip
        if MUTANTS[name].grad_name:
            args += ["--grad", "mine.py:grad"]
        env = {**os.environ, "PYTHONPATH": str(ROOT), "QT_QPA_PLATFORM": "offscreen"}
        return subprocess.run([sys.executable, "-m", "explorer", *args], cwd=folder, env=env,
                              capture_output=True, text=True).returncode  # fmt: skip


class _Enough(Exception):
    """Stops a differencing run after the calls timed."""


def _timed_calls(kind: str, convert: Callable, evaluate: Callable, quiet: Callable, x: np.ndarray,
                 calls: int) -> tuple[float, list[complex]]:  # fmt: skip
    """Seconds for the first ``calls`` calls of the element path ("before": numeric_grad; "now": the child's),
    and the values the loss returned."""
    from explorer.core import numeric_grad
    from explorer.usercode import child

    got: list[complex] = []

    def value_of(v: np.ndarray) -> complex:
        if len(got) == calls:
            raise _Enough
        with quiet():
            out = child._scalar(evaluate(convert(v)), "loss", x.shape[0])
        got.append(out)
        return out

    t0 = time.perf_counter()
    try:
        if kind == "before":
            numeric_grad(value_of, x, 1e-3, "central")
        else:
            child.element_gradient(value_of, x, 1e-3, "central", shared=True)
    except _Enough:
        pass
    return time.perf_counter() - t0, got


def _per_call(n: int, c: int, calls: int, rounds: int) -> None:
    """Microseconds per call of a scalar loss (the gallery's torch_correct and NumPy 'correct'), element by
    element, in this process: the path before (``numeric_grad``, a copy of the whole array per call, converted
    again by the framework) and the one the child takes now (``element_gradient`` on one reused buffer), each
    stopped after ``calls`` calls, alternated ``rounds`` times (medians), against the loss alone in a loop."""
    from explorer.usercode import child

    print(f"\nPer call, element by element ({n} x {c}, central; median of {rounds} rounds of {calls} calls; "
          f"load average {os.getloadavg()[0]:.1f}):")  # fmt: skip
    print(
        "| loss | dtype | the loss alone (us) | before (us) | now (us) | same values |\n"
        "| --- | --- | ---: | ---: | ---: | --- |"
    )
    for name in ("correct", "torch_correct"):
        m = MUTANTS[name]
        if m.framework != "numpy" and importlib.util.find_spec(m.framework) is None:
            continue
        fw = child.TorchFramework() if m.framework == "torch" else child.Framework()
        namespace: dict = {"__name__": "user_code"}
        exec(compile(m.source, name, "exec"), namespace)
        rng = np.random.default_rng(0)
        for dtype in ("float32", "float64"):
            x = (rng.normal(size=(n, c)) * 3).astype(dtype)
            y = fw.labels(rng.integers(0, c, n))
            evaluate, quiet = fw.evaluator(namespace["loss"], y), child._quiet(fw)
            times: dict[str, list[float]] = {"raw": [], "before": [], "now": []}
            values: dict[str, list[complex]] = {"before": [], "now": []}

            xt = fw.logits(x)
            for _ in range(rounds):
                t0 = time.perf_counter()
                with quiet():
                    for _ in range(calls):
                        evaluate(xt)
                times["raw"].append((time.perf_counter() - t0) / calls * 1e6)
                for kind, convert in (("before", fw.logits), ("now", fw.share)):
                    seconds, values[kind] = _timed_calls(kind, convert, evaluate, quiet, x, calls)
                    times[kind].append(seconds / calls * 1e6)
            same = np.array(values["before"]).tobytes() == np.array(values["now"]).tobytes()
            med = {k: statistics.median(v) for k, v in times.items()}
            print(f"| {name} ({m.framework}) | {dtype} | {med['raw']:.0f} | {med['before']:.0f} | {med['now']:.0f} | "
                  f"{'yes' if same else 'NO'} |")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=64)
    parser.add_argument("--c", type=int, default=512)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--dtype", default="float64")
    parser.add_argument("--gallery", action="store_true", help="also every PyTorch/JAX example, both dtypes, both ways")
    parser.add_argument("--elements", action="store_true", help="also time the per-row losses element by element")
    parser.add_argument("--per-row-only", action="store_true", help="only the per-row losses (no scalar-loss table)")
    parser.add_argument("--per-call", action="store_true", help="only a scalar loss's cost per call, before and now")
    parser.add_argument("--calls", type=int, default=2000, help="calls per round with --per-call")
    args = parser.parse_args()
    if args.per_call:
        _per_call(args.n, args.c, args.calls, max(3, args.repeat))
        return
    x, y = _problem(args.n, args.c)
    have = {"numpy": True, **{f: importlib.util.find_spec(f) is not None for f in ("torch", "jax")}}
    print(f"{args.n} x {args.c}, {args.dtype}, central, noise verdict; median of {args.repeat}; {os.cpu_count()} CPUs, "
          f"load average {os.getloadavg()[0]:.1f}")  # fmt: skip
    _per_row_table(x, y, args, have)
    if args.per_row_only:
        return
    print("Scalar losses (differenced element by element):")
    print("| code | wall (s) | in the child (s) | ratio to NumPy | verdict |\n| --- | ---: | ---: | ---: | --- |")
    base = None
    for label, name in (("NumPy grad function (gallery 'correct')", "correct"),
                        ("PyTorch autograd.Function, autodiff", "torch_correct"),
                        ("JAX custom_vjp, autodiff (jit)", "jax_correct")):  # fmt: skip
        if not have[MUTANTS[name].framework]:
            print(f"| {label} | not installed | | | |")
            continue
        wall, inside, ok = _time_runs(name, x, y, args.dtype, args.repeat)
        base = wall if base is None else base
        print(f"| {label} | {wall:.2f} | {inside:.2f} | {wall / base:.2f} | {'PASS' if ok else 'FAIL'} |")
    if not args.gallery:
        return
    print("\n| example | dtype | runner | check --loss (exit) | as expected |\n| --- | --- | --- | --- | --- |")
    for name, m in MUTANTS.items():
        if m.framework == "numpy" or not have[m.framework]:
            continue
        for dtype in ("float32", "float64"):
            _, _, ok = _time_runs(name, x, y, dtype, 1)
            code = _cli_verdict(name, x, y, dtype)
            good = ok == (code == 0) == name.endswith("_correct")
            print(f"| {name} | {dtype} | {'PASS' if ok else 'FAIL'} | {code} | {'yes' if good else 'NO'} |")


if __name__ == "__main__":
    main()
