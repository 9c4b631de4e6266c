"""Property tests (hypothesis) of the core: invariants, orders of accuracy, error bounds."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from explorer.core import (
    SCHEME_NAMES,
    cross_entropy,
    cross_entropy_grad,
    cross_entropy_numeric_grad,
    default_eps,
    get_scheme,
    loss_terms,
    numeric_grad,
    softmax,
    unit_roundoff,
)
from explorer.core.sweep import cell_derivatives, cell_error_model, row_noise_scale

finite = st.floats(-30, 30, allow_nan=False, allow_infinity=False, width=64)


@st.composite
def problems(draw: st.DrawFn, max_n: int = 5, max_c: int = 8) -> tuple[np.ndarray, np.ndarray, dict]:
    n = draw(st.integers(1, max_n))
    c = draw(st.integers(2, max_c))
    x = draw(arrays(np.float64, (n, c), elements=finite))
    labels = np.asarray(draw(st.lists(st.integers(0, c - 1), min_size=n, max_size=n)), dtype=np.int64)
    kwargs = {
        "reduction": draw(st.sampled_from(["mean", "sum", "none"])),
        "label_smoothing": draw(st.sampled_from([0.0, 0.1, 0.5])),
    }
    if draw(st.booleans()):
        kwargs["weight"] = np.asarray(draw(st.lists(st.floats(0.1, 3.0), min_size=c, max_size=c)))
    return x, labels, kwargs


@given(problems())
def test_gradient_rows_sum_to_zero(problem: tuple) -> None:
    x, labels, kwargs = problem
    grad = cross_entropy_grad(x, labels, **kwargs)
    # Rounding scale of row i: its coefficient total A_i / D (the terms A p and a cancel).
    terms = loss_terms(x.shape, labels, **kwargs)
    scale = terms.total / (terms.denom if kwargs["reduction"] == "mean" else 1.0)
    assert np.all(np.abs(grad.sum(axis=1)) <= 4 * x.shape[1] * 2.2e-16 * scale)


@given(problems(), st.floats(-50, 50))
def test_shifting_a_row_changes_nothing(problem: tuple, shift: float) -> None:
    x, labels, kwargs = problem
    shifted = x.copy()
    shifted[0] += shift
    # x + shift rounds, moving each logit by up to u * |x + shift|: allow for that.
    tol = 4 * 2.2e-16 * (np.abs(x).max() + abs(shift) + 1)
    np.testing.assert_allclose(
        cross_entropy(shifted, labels, **kwargs), cross_entropy(x, labels, **kwargs), rtol=tol, atol=tol * 10
    )
    np.testing.assert_allclose(
        cross_entropy_grad(shifted, labels, **kwargs), cross_entropy_grad(x, labels, **kwargs), atol=tol * 10
    )


@given(st.integers(1, 6), st.integers(1, 50), st.floats(-1e3, 1e3))
def test_uniform_logits_give_log_c(n: int, c: int, value: float) -> None:
    x = np.full((n, c), value)
    labels = np.arange(n) % c
    assert cross_entropy(x, labels) == pytest.approx(np.log(c), rel=1e-15, abs=1e-15)
    np.testing.assert_allclose(softmax(x), 1.0 / c, rtol=1e-15)


@pytest.mark.parametrize("dtype", ["float16", "float32", "float64"])
def test_softmax_is_stable_for_extreme_finite_logits(dtype: str) -> None:
    big = float(np.finfo(dtype).max) / 2
    x = np.array(
        [[big, -big, 0.0], [1000.0 if dtype == "float64" else 100.0, -1000.0 if dtype == "float64" else -100.0, 0.0]],
        dtype=dtype,
    )
    with np.errstate(over="raise", invalid="raise", divide="raise"):  # underflow to 0 is the point
        from explorer.core import log_softmax

        lp = log_softmax(x)
        p = softmax(x)
    assert lp.dtype == np.dtype(dtype) and np.all(np.isfinite(lp[1]))
    assert np.all(np.isfinite(p)) and np.allclose(p.astype(float).sum(axis=1), 1.0, atol=1e-3)


def _well_conditioned_cell(x: np.ndarray, labels: np.ndarray, kwargs: dict, order: int) -> tuple[int, int] | None:
    """A cell whose leading truncation derivative is not accidentally tiny."""
    p = softmax(x)
    for i, j in zip(*np.nonzero((p > 0.05) & (p < 0.95)), strict=True):
        d = cell_derivatives(x, labels, (int(i), int(j)), **kwargs)
        if abs(d[order + 1]) > 0.2 * np.max(np.abs(d[2:])) and abs(d[order + 1]) > 1e-3:
            return int(i), int(j)
    return None


@pytest.mark.parametrize(
    ("scheme", "h"), [("forward", 1e-3), ("backward", 1e-3), ("central", 1e-3), ("central4", 2e-2)]
)
@given(problems(max_n=3, max_c=6))
def test_observed_order_of_accuracy(scheme: str, h: float, problem: tuple) -> None:
    x, labels, kwargs = problem
    x = x / 10  # keep probabilities away from 0 and 1
    order = get_scheme(scheme).order
    cell = _well_conditioned_cell(x, labels, kwargs, order)
    assume(cell is not None)
    exact = cross_entropy_grad(x, labels, **kwargs)[cell]
    e1 = abs(cross_entropy_numeric_grad(x, labels, h, scheme, **kwargs)[cell] - exact)
    e2 = abs(cross_entropy_numeric_grad(x, labels, h / 2, scheme, **kwargs)[cell] - exact)
    assert np.log2(e1 / e2) == pytest.approx(order, abs=0.3)


@given(problems(), st.floats(1e-20, 1e-8))
def test_complex_step_is_exact_to_rounding(problem: tuple, h: float) -> None:
    x, labels, kwargs = problem
    exact = cross_entropy_grad(x, labels, **kwargs)
    num = cross_entropy_numeric_grad(x, labels, h, "complex", **kwargs)
    # 1e-13 relative, plus the cancellation in p - 1 on the label that the analytic
    # reference itself suffers (a few ulps of the row's coefficient total A_i / D).
    terms = loss_terms(x.shape, labels, **kwargs)
    row_scale = (terms.total / (terms.denom if kwargs["reduction"] == "mean" else 1.0))[:, None]
    assert np.all(np.abs(num - exact) <= 1e-13 * np.abs(exact) + 8 * 2.2e-16 * row_scale)


def _model_bound(x: np.ndarray, labels: np.ndarray, kwargs: dict, scheme: str, h: float, dtype: str) -> np.ndarray:
    """Textbook error bound per element, plus rounding of the result to the dtype."""
    order = get_scheme(scheme).order
    bound = np.empty(x.shape)
    for idx in np.ndindex(*x.shape):
        model = cell_error_model(x, labels, idx, scheme, dtype, bound=True, **kwargs)
        grad_abs = abs(cell_derivatives(x, labels, idx, **kwargs)[1])
        # Higher-order truncation terms: allow one more order at the same scale. Rounding
        # the result to the dtype: relative u, or half a subnormal spacing near 0.
        output_rounding = 2 * unit_roundoff(dtype) * grad_abs + float(np.finfo(dtype).smallest_subnormal)
        bound[idx] = model.total(h) + model.truncation_scale * h ** (order + 1) + output_rounding
    return bound


@pytest.mark.parametrize("dtype", ["float32", "float16"])
@pytest.mark.parametrize("scheme", SCHEME_NAMES)
@given(problems(max_n=4, max_c=6))
def test_low_precision_within_textbook_bound(dtype: str, scheme: str, problem: tuple) -> None:
    x, labels, kwargs = problem
    x = (x / 4).astype(dtype)
    x64 = x.astype(np.float64)  # the point actually checked: the logits rounded to the dtype
    h = default_eps(scheme, dtype)
    num = cross_entropy_numeric_grad(x, labels, h, scheme, **kwargs)
    assert num.dtype == np.dtype(dtype)
    exact = cross_entropy_grad(x64, labels, **kwargs)
    bound = _model_bound(x64, labels, kwargs, scheme, h, dtype)
    assert np.all(np.abs(num.astype(np.float64) - exact) <= bound)


@pytest.mark.parametrize("scheme", SCHEME_NAMES)
@given(problems(max_n=3, max_c=5))
def test_fast_path_agrees_with_black_box(scheme: str, problem: tuple) -> None:
    x, labels, kwargs = problem
    h = default_eps(scheme, "float64")
    fast = cross_entropy_numeric_grad(x, labels, h, scheme, **kwargs)
    slow = numeric_grad(lambda v: cross_entropy(v, labels, **kwargs), x, h, scheme)
    # The black box rounds the whole (summed) loss, the fast path one row's loss: the
    # bound is the textbook error of each, the black box's |f| being every row's noise.
    terms = loss_terms(x.shape, labels, **kwargs)
    d = terms.denom if kwargs["reduction"] == "mean" else 1.0
    total_noise = float(np.sum(row_noise_scale(x, labels, **kwargs))) / d
    for idx in np.ndindex(*x.shape):
        model = cell_error_model(x, labels, idx, scheme, bound=True, **kwargs)
        slow_rounding = get_scheme(scheme).rounding_coef * unit_roundoff("float64") * total_noise / h
        assert abs(fast[idx] - slow[idx]) <= 2 * model.total(h) + slow_rounding + 1e-15


@given(problems())
def test_whole_matrix_and_row_perturbations_are_about_zero(problem: tuple) -> None:
    x, labels, kwargs = problem
    for mode in ("all", "row"):
        q = cross_entropy_numeric_grad(x, labels, 1e-5, "central", mode, **kwargs)
        assert np.all(np.abs(q) < 1e-6), mode
