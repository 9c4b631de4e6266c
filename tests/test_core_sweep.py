"""Error versus eps: model against measurement, slopes, complex step, and agreement with the map."""

from __future__ import annotations

import numpy as np
import pytest

from explorer.core import (
    SCHEME_NAMES,
    cross_entropy_grad,
    cross_entropy_numeric_grad,
    default_eps,
    eps_grid,
    eps_sweep,
    get_scheme,
    softmax,
)
from explorer.core.sweep import cell_derivatives, measured_best


def _well_conditioned_cases(count: int, seed: int = 11) -> list[tuple]:
    """Random problems and cells whose probability is away from 0 and 1 and whose
    leading truncation derivatives are not accidentally tiny (where the model applies)."""
    rng = np.random.default_rng(seed)
    cases = []
    while len(cases) < count:
        n, c = int(rng.integers(1, 6)), int(rng.integers(2, 12))
        x = rng.normal(size=(n, c)) * rng.choice([0.5, 1.0, 2.0])
        y = rng.integers(0, c, n)
        cell = (int(rng.integers(n)), int(rng.integers(c)))
        reduction = str(rng.choice(["sum", "mean"]))
        d = cell_derivatives(x, y, cell, reduction=reduction)
        big = np.abs(d[2:]).max()
        if 0.05 < softmax(x)[cell] < 0.95 and abs(d[2]) > 0.2 * big and abs(d[3]) > 0.2 * big:
            cases.append((x, y, cell, reduction))
    return cases


CASES = _well_conditioned_cases(40)


@pytest.mark.parametrize("case", range(len(CASES)))
def test_measured_best_eps_and_error_match_the_model_within_10x(case: int) -> None:
    x, y, cell, reduction = CASES[case]
    sweep = eps_sweep(x, y, cell, schemes=["forward", "central"], reduction=reduction)
    assert len(sweep.eps) >= 60 and sweep.eps[0] == pytest.approx(1e-20) and sweep.eps[-1] == pytest.approx(1e-1)
    for scheme in ("forward", "central"):
        model = sweep.models[scheme]
        assert 0.1 < sweep.measured_best_eps[scheme] / model.best_eps < 10, scheme
        assert 0.1 < sweep.measured_best_err[scheme] / model.best_err < 10, scheme


@pytest.mark.parametrize("case", range(0, len(CASES), 4))
def test_complex_step_within_1e13_relative_for_tiny_steps(case: int) -> None:
    x, y, cell, reduction = CASES[case]
    steps = eps_grid(25, 1e-20, 1e-8)
    sweep = eps_sweep(x, y, cell, eps=steps, schemes=["complex"], reduction=reduction)
    exact = cross_entropy_grad(x, y, reduction=reduction)[cell]
    assert np.all(sweep.errors["complex"] <= 1e-13 * abs(exact))


@pytest.mark.parametrize(("scheme", "order"), [("forward", 1), ("backward", 1), ("central", 2), ("central4", 4)])
@pytest.mark.parametrize("case", range(0, len(CASES), 5))
def test_fitted_slope_in_the_truncation_region(scheme: str, order: int, case: int) -> None:
    x, y, cell, reduction = CASES[case]
    sweep = eps_sweep(x, y, cell, schemes=[scheme], reduction=reduction)
    model = sweep.models[scheme]
    # The truncation region: the model's truncation term dominates rounding 30-fold.
    region = (model.truncation(sweep.eps) > 30 * model.rounding(sweep.eps)) & (sweep.eps <= 0.1)
    assert region.sum() >= 3
    slope = np.polyfit(np.log10(sweep.eps[region]), np.log10(sweep.errors[scheme][region]), 1)[0]
    assert slope == pytest.approx(order, abs=0.3)


@pytest.mark.parametrize("dtype", ["float64", "float32", "float16"])
def test_sweep_points_equal_the_numeric_map(dtype: str) -> None:
    rng = np.random.default_rng(3)
    x = (rng.normal(size=(6, 9)) * 3).astype(dtype)
    y = rng.integers(0, 9, 6)
    kw = {"reduction": "mean", "label_smoothing": 0.1}
    # The reference is the analytic map of the check (the closed form in the dtype), as the error map has it.
    exact = cross_entropy_grad(x, y, **kw).astype(np.float64)
    cell_sweep = eps_sweep(x, y, (2, 5), **kw)
    grid_sweep = eps_sweep(x, y, None, **kw)
    for scheme in SCHEME_NAMES:
        for k in (5, 25, 45, 60):
            num = cross_entropy_numeric_grad(x, y, float(cell_sweep.eps[k]), scheme, **kw).astype(np.float64)
            assert abs(num[2, 5] - exact[2, 5]) == cell_sweep.errors[scheme][k]
            assert np.max(np.abs(num - exact)) == grid_sweep.errors[scheme][k]


def test_float16_where_x_plus_eps_equals_x_the_difference_is_zero() -> None:
    x = np.array([[3.0, 1.0, -2.0]], dtype=np.float16)
    y = np.array([0])
    sweep = eps_sweep(x, y, (0, 1), schemes=["central"])
    exact = abs(cross_entropy_grad(x.astype(np.float64), y)[0, 1])
    tiny = sweep.eps < 1e-4  # far below float16's spacing at 1.0 (about 1e-3)
    np.testing.assert_allclose(sweep.errors["central"][tiny], exact, rtol=1e-3)


def test_default_eps_is_near_the_model_optimum() -> None:
    for scheme in ("forward", "central", "central4"):
        for dtype in ("float32", "float64"):
            eps = default_eps(scheme, dtype)
            assert get_scheme(scheme).order >= 1
            assert 1e-10 < eps <= 0.1


def test_measured_best_ignores_lucky_zeros_and_handles_exact_curves() -> None:
    eps = np.logspace(-10, -1, 10)
    errors = np.array([1e-3, 1e-4, 1e-5, 0.0, 1e-6, 1e-7, 1e-6, 1e-5, 1e-4, 1e-3])
    best_eps, best_err = measured_best(eps, errors, window=3)
    assert eps[4] <= best_eps <= eps[5]  # the bottom of the V, not the lucky exact 0 at eps[3]
    assert best_err > 0
    assert measured_best(eps, np.zeros(10))[1] == 0.0
