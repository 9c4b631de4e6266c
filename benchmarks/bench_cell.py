"""One-cell work must not scale with the grid: the cell sweep and the cell inspector at a small and a huge grid.

    python benchmarks/bench_cell.py

Prints the median time (ms) of a one-cell error-versus-eps sweep (61 steps plus the current one,
5 schemes) and of :func:`explorer.core.explain_cell` at 32 x 100, 4096 x 4096 and 32 x 262,144 (a
language model's vocabulary), in float64 and float32, and the ratio of the largest row's time to the
smallest's. Goal: every median under 20 ms (per-cell work prepares one row once, O(C) with a small
constant, then O(1) per step, plus O(N) on the labels only). The pitfall
mode "row" is O(C) too and is listed; "all" is a difference of the whole loss, O(N C), and is not.
"""

from __future__ import annotations

import argparse
import inspect
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from explorer.core import CheckSettings, eps_sweep
from explorer.core.explain import explain_cell

SIZES = ((32, 100), (4096, 4096), (32, 262_144))
DTYPES = ("float64", "float32")


def median_ms(fn: Callable[[], object], repeat: int, budget_s: float = 10.0) -> float:
    """Median wall time in ms over up to ``repeat`` runs (after one warm-up run)."""
    fn()
    times = []
    start = time.perf_counter()
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
        if time.perf_counter() - start > budget_s:
            break
    return statistics.median(times) * 1e3


def _explain(x: np.ndarray, y: np.ndarray, cell: tuple[int, int], settings: CheckSettings) -> object:
    # The contract order is (logits, labels, cell, settings); older versions took (..., settings, cell).
    params = list(inspect.signature(explain_cell).parameters)
    if params[2] == "settings":
        return explain_cell(x, y, settings, cell)  # type: ignore[arg-type]
    return explain_cell(x, y, cell, settings)


def _sweep(x: np.ndarray, y: np.ndarray, cell: tuple[int, int], settings: CheckSettings) -> object:
    params = inspect.signature(eps_sweep).parameters
    if "perturb" not in params:  # older versions: the element-wise sweep only, without the current eps
        return eps_sweep(x, y, cell, **settings.loss_kwargs)  # type: ignore[arg-type]
    return eps_sweep(
        x, y, cell, include_eps=settings.eps, perturb=settings.perturb, **settings.loss_kwargs  # type: ignore[arg-type]
    )


def measure(n: int, c: int, dtype: str, perturb: str, repeat: int) -> tuple[float, float]:
    """(one-cell sweep ms, explain_cell ms) for an n x c grid in ``dtype``."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(n, c)).astype(dtype)
    y = rng.integers(0, c, n)
    cell = (n // 2, c // 3)
    settings = CheckSettings.with_default_eps("central", dtype, reduction="mean", perturb=perturb)
    sweep_ms = median_ms(lambda: _sweep(x, y, cell, settings), repeat)
    explain_ms = median_ms(lambda: _explain(x, y, cell, settings), repeat)
    return sweep_ms, explain_ms


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=21, help="runs per median (default 21)")
    parser.add_argument("--pitfall", action="store_true", help="also perturb='row' (the pitfall, O(C) as well)")
    args = parser.parse_args()
    print(f"NumPy {np.__version__}; central scheme at its default eps, reduction='mean'\n")
    print("| work | perturb | dtype | 32 x 100 | 4096 x 4096 | 32 x 262,144 | ratio largest / smallest |")
    print("| --- | --- | --- | ---: | ---: | ---: | ---: |")
    for perturb in ("element", "row") if args.pitfall else ("element",):
        for dtype in DTYPES:
            results = [measure(n, c, dtype, perturb, args.repeat) for n, c in SIZES]
            for name, k in (("one-cell sweep (61 eps x 5 schemes)", 0), ("explain_cell", 1)):
                cells = " | ".join(f"{r[k]:.2f} ms" for r in results)
                print(f"| {name} | {perturb} | {dtype} | {cells} | {results[-1][k] / results[0][k]:.2f} |")


if __name__ == "__main__":
    main()
