"""Speed and accuracy of the full per-element numeric gradient, against peers measured in the same run.

    python benchmarks/bench_core.py            # peers that finish in seconds
    python benchmarks/bench_core.py --full     # also torch's slow gradcheck at 128 x 1000 (about a minute)

Prints medians (ms) and ratios to this project's analytic gradient measured in the same run, with the
max abs error of each numeric gradient against the analytic one. Peers that are not installed are skipped.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from explorer.core import (
    CheckSettings,
    check_gradient,
    cross_entropy,
    cross_entropy_grad,
    cross_entropy_numeric_grad,
    eps_sweep,
    numeric_grad,
)
from explorer.core.losses import loss_terms
from explorer.core.noise import expected_error_map

EPS = 1e-5


def median_ms(fn: Callable[[], object], repeat: int, budget_s: float = 20.0) -> tuple[float, object]:
    """Median wall time over up to ``repeat`` runs (fewer if the budget runs out), and the last result."""
    times, result = [], None
    start = time.perf_counter()
    for _ in range(repeat):
        t = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t)
        if time.perf_counter() - start > budget_s:
            break
    return statistics.median(times) * 1e3, result


def row_separable(x: np.ndarray, y: np.ndarray, eps: float) -> np.ndarray:
    """The usual fast NumPy approach: perturb one column for every row at once, re-evaluate all row losses."""
    out = np.empty_like(x)
    rows = np.arange(x.shape[0])

    def row_losses(v: np.ndarray) -> np.ndarray:
        m = v.max(axis=1, keepdims=True)
        lse = np.log(np.exp(v - m).sum(axis=1)) + m[:, 0]
        return lse - v[rows, y]

    for j in range(x.shape[1]):
        xp = x.copy()
        xp[:, j] += eps
        xm = x.copy()
        xm[:, j] -= eps
        out[:, j] = (row_losses(xp) - row_losses(xm)) / (2 * eps)
    return out


def scipy_differentiate(x: np.ndarray, y: np.ndarray) -> np.ndarray | None:
    try:
        from scipy.differentiate import derivative
    except ImportError:
        return None
    m = x.max(axis=1, keepdims=True)
    z = x - m
    e = np.exp(z)
    s = e.sum(axis=1, keepdims=True)
    onehot = np.zeros_like(x)
    onehot[np.arange(x.shape[0]), y] = 1.0
    u = (z * onehot).sum(axis=1, keepdims=True)
    per_element = [np.broadcast_to(a, x.shape) for a in (m, s, e, onehot, u, z)]

    def row_loss_of_element(t, m, s, e, oh, u, z):  # type: ignore[no-untyped-def]
        # Row i's loss with x_ij replaced by t; scipy passes each element's row sums alongside.
        zt = t - m
        return np.log(s - e + np.exp(zt)) - (u + oh * (zt - z))

    return derivative(row_loss_of_element, x, args=tuple(per_element)).df


def torch_peers(x: np.ndarray, y: np.ndarray, slow: bool) -> dict[str, tuple[float, float | None]]:
    try:
        import torch
        from torch.autograd.gradcheck import gradcheck
    except ImportError:
        return {}
    xt = torch.tensor(x, dtype=torch.float64, requires_grad=True)
    yt = torch.tensor(y)

    def fn(v: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.cross_entropy(v, yt, reduction="sum")

    out: dict[str, tuple[float, float | None]] = {}
    t, _ = median_ms(lambda: gradcheck(fn, (xt,), eps=EPS, atol=1e-5, rtol=1e-3, fast_mode=True), 5)
    out["torch gradcheck, fast mode (one random direction)"] = (t, None)
    if slow:
        from torch.autograd.gradcheck import _get_numerical_jacobian

        t, jac = median_ms(lambda: _get_numerical_jacobian(fn, (xt,), eps=EPS), 1, budget_s=0)
        num = jac[0][0].reshape(x.shape).numpy()
        out["torch numerical Jacobian (gradcheck slow mode)"] = (
            t,
            float(np.abs(num - cross_entropy_grad(x, y, reduction="sum")).max()),
        )
    return out


def numdifftools_peer(x: np.ndarray, y: np.ndarray) -> tuple[float, float] | None:
    try:
        import numdifftools as nd
    except ImportError:
        return None

    def f(flat: np.ndarray) -> float:
        return float(cross_entropy(flat.reshape(x.shape), y, reduction="sum"))

    t, g = median_ms(lambda: nd.Gradient(f)(x.ravel()), 1, budget_s=0)
    return t, float(np.abs(np.asarray(g).reshape(x.shape) - cross_entropy_grad(x, y, reduction="sum")).max())


def table(n: int, c: int, full: bool, small: bool) -> list[tuple[str, float, float | None]]:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(n, c)) * 3
    y = rng.integers(0, c, n)
    ana_ms, ana = median_ms(lambda: cross_entropy_grad(x, y, reduction="sum"), 50)
    rows: list[tuple[str, float, float | None]] = [("explorer analytic gradient (closed form)", ana_ms, None)]

    def err(g: np.ndarray) -> float:
        return float(np.abs(g - ana).max())

    t, g = median_ms(lambda: cross_entropy_numeric_grad(x, y, EPS, "central", reduction="sum"), 30)
    rows.append(("explorer numeric gradient, every element, central", t, err(g)))
    t, g = median_ms(lambda: cross_entropy_numeric_grad(x, y, 1e-20, "complex", reduction="sum"), 30)
    rows.append(("explorer numeric gradient, every element, complex step", t, err(g)))
    t, g = median_ms(lambda: row_separable(x, y, EPS), 3)
    rows.append(("row-separable re-evaluation in NumPy, central", t, err(g)))
    t, g = median_ms(lambda: scipy_differentiate(x, y), 3)
    if g is not None:
        rows.append(("scipy.differentiate.derivative (adaptive, elementwise)", t, err(g)))
    for name, (t, e) in torch_peers(x, y, slow=full or small).items():
        rows.append((name, t, e))
    if small:
        t, g = median_ms(lambda: numeric_grad(lambda v: cross_entropy(v, y, reduction="sum"), x, EPS), 1, budget_s=0)
        rows.append(("explorer black-box numeric_grad (one call per element)", t, err(g)))
        nd_res = numdifftools_peer(x, y)
        if nd_res is not None:
            rows.append(("numdifftools Gradient", nd_res[0], nd_res[1]))
    return rows


def memory_and_ratio_lm(n: int = 1024, c: int = 32000) -> str:
    rng = np.random.default_rng(1)
    x = rng.normal(size=(n, c)).astype(np.float32)
    y = rng.integers(0, c, n)
    ana_ms, _ = median_ms(lambda: cross_entropy_grad(x, y), 5)
    num_ms, _ = median_ms(lambda: cross_entropy_numeric_grad(x, y, 1e-2, "central"), 5)
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    cross_entropy_numeric_grad(x, y, 1e-2, "central")
    peak = tracemalloc.get_traced_memory()[1] - base
    tracemalloc.stop()
    return (
        f"| {n} x {c} float32, central | analytic {ana_ms:.0f} ms | numeric {num_ms:.0f} ms | "
        f"ratio {num_ms / ana_ms:.2f} | peak extra memory {peak / x.nbytes:.2f} x the logits "
        f"({x.nbytes / 2**20:.0f} MiB) |"
    )


def cpu_ms(fn: Callable[[], object], repeat: int) -> tuple[float, float]:
    """(median wall ms, median CPU ms of this process) over ``repeat`` runs: CPU time is what a loaded machine
    does not inflate (other processes' time slices are not counted)."""
    wall, cpu = [], []
    for _ in range(repeat):
        t, c = time.perf_counter(), time.process_time()
        fn()
        wall.append(time.perf_counter() - t)
        cpu.append(time.process_time() - c)
    return statistics.median(wall) * 1e3, statistics.median(cpu) * 1e3


def full_check_case(n: int, c: int, dtype: str, repeat: int) -> list[str]:
    """The whole check (the verdict included) against its parts and the analytic gradient, and its peak memory."""
    rng = np.random.default_rng(0)
    x = (rng.normal(size=(n, c)) * 2).astype(dtype)
    y = rng.integers(0, c, n)
    s = CheckSettings.with_default_eps("central", dtype, reduction="mean")
    kw = s.loss_kwargs
    terms = loss_terms(x.shape, y, **kw)  # type: ignore[arg-type]
    parts: list[tuple[str, Callable[[], object]]] = [
        ("check_gradient (noise verdict)", lambda: check_gradient(x, y, s)),
        ("analytic gradient", lambda: cross_entropy_grad(x, y, **kw)),  # type: ignore[arg-type]
        ("numeric gradient", lambda: cross_entropy_numeric_grad(x, y, s.eps, s.scheme, **kw)),  # type: ignore[arg-type]
        ("expected-error map", lambda: expected_error_map(x, terms, s.scheme, s.eps)),
    ]
    tracemalloc.start()
    check_gradient(x, y, s)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    grid = f"{n} x {c} {dtype}"
    lines = []
    for name, fn in parts:
        wall, cpu = cpu_ms(fn, repeat)
        lines.append(f"| {grid} | {name} | {wall:,.1f} ms | {cpu:,.1f} ms |")
    lines.append(f"| {grid} | peak memory of check_gradient (tracemalloc) | {peak / x.nbytes:.2f} x the logits | |")
    return lines


def sweeps(n: int = 128, c: int = 1000) -> list[str]:
    rng = np.random.default_rng(2)
    x = rng.normal(size=(n, c)) * 3
    y = rng.integers(0, c, n)
    cell_ms, cell = median_ms(lambda: eps_sweep(x, y, (5, 7), reduction="mean"), 20)
    grid_ms, _ = median_ms(lambda: eps_sweep(x, y, None, reduction="mean"), 5)
    k, s = len(cell.eps), len(cell.errors)
    return [
        f"| one cell, {k} eps x {s} schemes | {cell_ms:.1f} ms |",
        f"| maximum over the grid, {k} eps x {s} schemes | {grid_ms:.0f} ms |",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--full", action="store_true", help="also run torch's slow gradcheck at 128 x 1000")
    parser.add_argument("--skip-lm", action="store_true", help="skip the 1024 x 32000 float32 case")
    args = parser.parse_args()
    print(f"NumPy {np.__version__}; float64, central differences, eps = {EPS:g}, summed row losses\n")
    for n, c, small in ((16, 100, True), (128, 1000, False)):
        rows = table(n, c, args.full, small)
        ana_ms = rows[0][1]
        print(f"### {n} x {c}\n")
        print("| method | median | ratio to analytic | max abs error |")
        print("| --- | ---: | ---: | ---: |")
        for name, t, e in rows:
            err = "—" if e is None else f"{e:.1e}"
            print(f"| {name} | {t:,.2f} ms | {t / ana_ms:,.1f} | {err} |")
        print()
    print("### Full check (verdict included), central at the dtype's default eps, mean reduction\n")
    print("| grid | work | median wall | median CPU |\n| --- | --- | ---: | ---: |")
    for n, c, dtype, repeat in ((128, 1000, "float64", 15), (32, 262_144, "float32", 3)):
        for line in full_check_case(n, c, dtype, repeat):
            print(line)
    print()
    print("### Error-versus-eps sweep at 128 x 1000 float64\n\n| sweep | median |\n| --- | ---: |")
    for line in sweeps():
        print(line)
    print()
    if not args.skip_lm:
        print("### Language-model vocabulary\n")
        print(memory_and_ratio_lm())


if __name__ == "__main__":
    main()
