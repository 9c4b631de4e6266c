"""What a user's own check will see: cost and noise of evaluate="row" vs "loss", and the noise verdict.

    python benchmarks/bench_evaluate.py

Prints medians: the whole-grid numeric gradient in each evaluate mode (goal: "loss" within 3x of "row"),
check_gradient with the noise verdict, and the median error over cells against plain re-evaluations.
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from explorer.core import CheckSettings, check_gradient, cross_entropy_grad, cross_entropy_numeric_grad


def median_ms(fn: Callable[[], object], repeat: int = 7) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times) * 1e3


def main() -> None:
    print("| grid | dtype | row mode | loss mode | ratio | check_gradient (noise verdict) |")
    print("| --- | --- | ---: | ---: | ---: | ---: |")
    for n, c, dtype in ((128, 1000, "float64"), (128, 1000, "float32"), (1024, 1000, "float32")):
        rng = np.random.default_rng(0)
        x, y = rng.normal(size=(n, c)).astype(dtype), rng.integers(0, c, n)
        eps = 1e-5 if dtype == "float64" else 1e-2
        settings = CheckSettings(eps=eps, dtype=dtype, evaluate="loss")
        row = median_ms(partial(cross_entropy_numeric_grad, x, y, eps, reduction="sum", evaluate="row"))
        loss = median_ms(partial(cross_entropy_numeric_grad, x, y, eps, reduction="sum", evaluate="loss"))
        full = median_ms(partial(check_gradient, x, y, settings), 3)
        print(f"| {n} x {c} | {dtype} | {row:.1f} ms | {loss:.1f} ms | {loss / row:.2f} | {full:.1f} ms |")
    from test_evaluate_modes import _medians  # the tests' plain re-evaluations

    print()
    print("| N x C | dtype | reduction | mode | median error, explorer | median error, plain re-evaluation |")
    print("| --- | --- | --- | --- | ---: | ---: |")
    for n in (32, 1024):
        for dtype in ("float32", "float64"):
            for reduction in ("sum", "mean"):
                for evaluate in ("row", "loss"):
                    ours, plain = _medians(n, 16, dtype, reduction, evaluate)
                    print(f"| {n} x 16 | {dtype} | {reduction} | {evaluate} | {ours:.2e} | {plain:.2e} |")
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(32, 100)), rng.integers(0, 100, 32)
    g = cross_entropy_grad(x, y, reduction="sum")
    for ev in ("row", "loss"):
        err = np.median(np.abs(cross_entropy_numeric_grad(x, y, 1e-7, reduction="sum", evaluate=ev) - g))
        print(f"32 x 100 float64 sum central eps 1e-7, evaluate={ev}: median error {err:.2e}")


if __name__ == "__main__":
    main()
