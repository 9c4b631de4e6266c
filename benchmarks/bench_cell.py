"""One-cell work must not scale with the grid: the cell sweep and the cell inspector at a small and a huge grid.

    python benchmarks/bench_cell.py

Prints the median time (ms) of a one-cell error-versus-eps sweep (61 steps plus the current one,
5 schemes) and of :func:`explorer.core.explain_cell` at 32 x 100 and 4096 x 4096, in float64 and
float32, and the ratio of the large grid's time to the small grid's. Goal: ratio within 3 and every
median under 20 ms (per-cell work touches one row: O(C), plus O(N) on the labels only).
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

SIZES = ((32, 100), (4096, 4096))
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


def measure(n: int, c: int, dtype: str, repeat: int) -> tuple[float, float]:
    """(one-cell sweep ms, explain_cell ms) for an n x c grid in ``dtype``."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(n, c)).astype(dtype)
    y = rng.integers(0, c, n)
    cell = (n // 2, c // 3)
    settings = CheckSettings.with_default_eps("central", dtype, reduction="mean")
    kw = settings.loss_kwargs
    sweep_ms = median_ms(lambda: eps_sweep(x, y, cell, **kw), repeat)  # type: ignore[arg-type]
    explain_ms = median_ms(lambda: _explain(x, y, cell, settings), repeat)
    return sweep_ms, explain_ms


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=21, help="runs per median (default 21)")
    args = parser.parse_args()
    print(f"NumPy {np.__version__}; central scheme at its default eps, reduction='mean'\n")
    print("| work | dtype | 32 x 100 | 4096 x 4096 | ratio |")
    print("| --- | --- | ---: | ---: | ---: |")
    for dtype in DTYPES:
        small = measure(*SIZES[0], dtype, args.repeat)
        large = measure(*SIZES[1], dtype, args.repeat)
        for name, k in (("one-cell sweep (61 eps x 5 schemes)", 0), ("explain_cell", 1)):
            print(f"| {name} | {dtype} | {small[k]:.2f} ms | {large[k]:.2f} ms | {large[k] / small[k]:.2f} |")


if __name__ == "__main__":
    main()
