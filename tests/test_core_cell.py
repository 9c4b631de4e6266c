"""One cell, one truth: the inspector, the sweep, the worst cell and the diagnosis agree with the maps."""

from __future__ import annotations

import json
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

import explorer.core as core
from explorer.core import (
    PERTURB_MODES,
    SCHEME_NAMES,
    CheckSettings,
    check_gradient,
    compare,
    cross_entropy_grad,
    diagnose,
    eps_grid,
    eps_sweep,
    explain_cell,
    loss_terms,
    reduction_denominator,
    resolve_dtype,
    worst_cells,
)

PRESETS = Path(__file__).resolve().parent.parent / "resources" / "presets.json"


def _origin() -> tuple[np.ndarray, np.ndarray]:
    origin = json.loads(PRESETS.read_text())["presets"][0]
    assert origin["name"] == "origin"
    return np.array(origin["logits"], dtype=np.float64), np.array(origin["labels"])


def _same_bits(a: float, b: float) -> bool:
    """Equal as floats including the sign of zero; NaN equals NaN."""
    a64, b64 = np.float64(a), np.float64(b)
    if np.isnan(a64) or np.isnan(b64):
        return bool(np.isnan(a64) and np.isnan(b64))
    return bool(a64 == b64 and np.signbit(a64) == np.signbit(b64))


# --------------------------------------------------------------------------- the pitfall in the inspector


@pytest.mark.parametrize("perturb", ["row", "all"])
@pytest.mark.parametrize("scheme", SCHEME_NAMES)
def test_inspector_shows_the_pitfall_value_of_the_map(perturb: str, scheme: str) -> None:
    x, y = _origin()
    settings = CheckSettings(perturb=perturb, scheme=scheme, eps=1e-5 if scheme != "complex" else 1e-20)
    report = check_gradient(x, y, settings)
    for i, j in np.ndindex(*x.shape):
        e = explain_cell(x, y, (i, j), settings)
        assert _same_bits(e.numeric, report.grad_numeric[i, j]), (i, j)
        assert _same_bits(e.analytic, report.grad_analytic[i, j]), (i, j)
        assert e.perturb == perturb


def test_explain_cell_takes_the_contract_order_and_the_old_one() -> None:
    x, y = _origin()
    settings = CheckSettings(eps=1e-4)
    new = explain_cell(x, y, (1, 4), settings)
    old = explain_cell(x, y, settings, (1, 4))  # type: ignore[arg-type]
    assert new == old and new.cell == (1, 4)
    assert core.explain_cell is explain_cell and "explain_cell" in core.__all__
    with pytest.raises(ValueError, match="outside the grid"):
        explain_cell(x, y, (3, 0), settings)
    with pytest.raises(TypeError, match="CheckSettings"):
        explain_cell(x, y, (0, 0), {"eps": 1e-4})  # type: ignore[arg-type]


# --------------------------------------------------------------------------- the sweep at the current eps


def test_float16_complex_step_sweep_at_the_current_eps_is_the_map_value() -> None:
    x, y = _origin()
    x[0, 0] = 120.0
    settings = CheckSettings.with_default_eps("complex", "float16")
    report = check_gradient(x, y, settings)
    sweep = eps_sweep(report.logits, y, (0, 0), include_eps=settings.eps, **settings.loss_kwargs)
    k = sweep.index_of(settings.eps)
    assert k is not None and sweep.eps[k] == settings.eps
    assert sweep.errors["complex"][k] == report.abs_err[0, 0] == 0.0  # was 2.8e-10 against a float64 reference
    assert sweep.numeric["complex"][k] == report.grad_numeric[0, 0]
    assert sweep.analytic == report.grad_analytic[0, 0]


def test_include_eps_inserts_the_step_exactly_in_order() -> None:
    x, y = _origin()
    grid = eps_grid()
    sweep = eps_sweep(x, y, (0, 0), schemes=["central"], include_eps=[3.3e-7, float(grid[10])])
    assert sweep.eps.size == grid.size + 1
    assert np.all(np.diff(sweep.eps) > 0)
    assert sweep.index_of(3.3e-7) is not None and sweep.index_of(4.4e-7) is None
    with pytest.raises(ValueError, match="finite steps"):
        eps_sweep(x, y, (0, 0), include_eps=-1.0)


@pytest.mark.parametrize("perturb", ["row", "all"])
def test_sweep_of_a_pitfall_mode_measures_what_the_pitfall_check_measures(perturb: str) -> None:
    x, y = _origin()
    settings = CheckSettings(perturb=perturb, eps=1e-3)
    report = check_gradient(x, y, settings)
    sweep = eps_sweep(x, y, (2, 7), include_eps=settings.eps, perturb=perturb, **settings.loss_kwargs)
    k = sweep.index_of(settings.eps)
    assert k is not None and sweep.perturb == perturb
    for scheme in SCHEME_NAMES:
        s = settings.replace(scheme=scheme)
        r = check_gradient(x, y, s)
        assert sweep.numeric[scheme][k] == r.grad_numeric[2, 7], scheme
        assert sweep.errors[scheme][k] == r.abs_err[2, 7], scheme
    # The element-wise sweep differs: the pitfall's quotient is about 0, the gradient is not.
    element = eps_sweep(x, y, (2, 7), include_eps=settings.eps, **settings.loss_kwargs)
    assert element.numeric["central"][k] != sweep.numeric["central"][k] == report.grad_numeric[2, 7]
    grid = eps_sweep(x, y, None, include_eps=settings.eps, perturb=perturb, **settings.loss_kwargs)
    assert grid.errors["central"][k] == report.comparison.max_abs_err


def test_exact_agreement_is_a_zero_in_the_sweep_not_a_made_up_constant() -> None:
    x = np.array([[120.0, 0.0, 1.0]], dtype=np.float16)
    y = np.array([1])
    sweep = eps_sweep(x, y, (0, 2), schemes=["central"])
    zeros = sweep.exact_zeros("central")
    assert zeros.any()
    assert np.all(sweep.errors["central"][zeros] == 0.0)
    assert np.all(sweep.errors["central"][~zeros] > 1e-20)


# --------------------------------------------------------------------------- the worst cell


def test_worst_cell_has_the_largest_error_at_128_by_1000() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(128, 1000))
    y = rng.integers(0, 1000, 128)
    report = check_gradient(x, y, CheckSettings())
    assert report.abs_err[report.worst] == report.comparison.max_abs_err > 0
    assert report.worst == tuple(int(v) for v in np.unravel_index(np.argmax(report.abs_err), x.shape))


def test_a_nan_error_is_the_worst() -> None:
    cmp = compare(np.array([[1.0, 5.0], [np.nan, 1.0]]), np.array([[1.0, 1.0], [1.0, 1.0]]))
    assert cmp.worst == (1, 0)
    assert cmp.ranked(2).tolist() == [[1, 0], [0, 1]]


def test_ranked_puts_failing_cells_first_each_by_error() -> None:
    rng = np.random.default_rng(5)
    num = rng.normal(size=(40, 50))
    ana = num + rng.normal(size=num.shape) * rng.choice([1e-9, 1e-3], size=num.shape, p=[0.98, 0.02])
    ana[3, 4] = np.nan
    cmp = compare(num, ana, atol=1e-6, rtol=1e-4)
    assert 0 < cmp.n_failed < 100
    err = np.where(np.isnan(cmp.abs_err), np.inf, cmp.abs_err).ravel()
    failed = ~cmp.passed.ravel()
    order = np.lexsort((np.arange(err.size), -err, ~failed))  # failing first, by error, then C order
    for k in (0, 1, 5, cmp.n_failed, cmp.n_failed + 7, err.size, err.size + 3):
        expected = np.stack(np.unravel_index(order[:k], num.shape), axis=1)
        np.testing.assert_array_equal(cmp.ranked(k), expected)
    assert worst_cells(check_gradient(num[:2, :3], np.array([0, 1])), 2).shape == (2, 2)
    with pytest.raises(ValueError, match="k must be"):
        cmp.ranked(-1)


@pytest.mark.parametrize("levels", [3, 1000])
def test_ranked_on_a_large_grid_with_ties_keeps_c_order(levels: int) -> None:
    rng = np.random.default_rng(levels)
    ana = np.zeros((300, 400))
    num = rng.integers(0, levels, ana.shape) * 1e-3  # few distinct errors: many ties
    cmp = compare(num, ana, atol=(levels - 1.5) * 1e-3, rtol=0.0)
    err = cmp.abs_err.ravel()
    order = np.lexsort((np.arange(err.size), -err, cmp.passed.ravel()))
    for k in (1, 10, 29, 500, cmp.n_failed + 3):
        expected = np.stack(np.unravel_index(order[:k], ana.shape), axis=1)
        np.testing.assert_array_equal(cmp.ranked(k), expected)


def test_ranked_rejects_a_bad_k() -> None:
    cmp = compare(np.zeros(3), np.ones(3))
    with pytest.raises(ValueError, match="k must be"):
        cmp.ranked(-1)


# --------------------------------------------------------------------------- the diagnosis


def test_diagnosis_blames_the_lost_step_and_names_the_remedy() -> None:
    x = np.array([[120.0, 0.0, 1.0]])
    y = np.array([1])
    settings = CheckSettings(dtype="float16", eps=1e-2, scheme="forward")
    report = check_gradient(x, y, settings)
    flags = report.cell_flags
    assert flags.step_lost[0].tolist() == [True, False, False]  # 120 + 0.01 rounds to 120 in float16
    assert flags.min_eps[0, 0] == 0.0625  # float16's spacing at 120
    assert not flags.noise_floor[0, 0]
    e = explain_cell(x, y, (0, 0), settings)
    assert e.step_lost and e.min_eps == 0.0625
    remedied = check_gradient(x, y, settings.replace(eps=float(flags.min_eps[0, 0])))
    assert not remedied.cell_flags.step_lost[0, 0] and remedied.grad_numeric[0, 0] != 0


def test_diagnosis_of_underflow_overflow_and_the_noise_floor() -> None:
    # float16: p = e^-30 rounds to 0; 70000 is beyond float16's range (inf): that row is NaN.
    half = check_gradient(
        np.array([[0.0, -30.0, 1.0], [70000.0, 0.0, 0.0]]), np.array([0, 1]), CheckSettings(dtype="float16", eps=1e-2)
    )
    flags = diagnose(half)
    assert flags.p_underflow[0].tolist() == [False, True, False]
    assert flags.row_overflow.tolist() == [[False] * 3, [True] * 3]
    assert np.isnan(half.grad_numeric[1]).all()
    # float64: p = e^-76 is representable, but A p h is far below the rounding of a loss of 46.
    wide = check_gradient(np.array([[0.0, 46.0, -30.0]]), np.array([0]), CheckSettings(eps=1e-5))
    assert wide.grad_numeric[0, 2] == 0 and wide.grad_analytic[0, 2] != 0
    assert wide.cell_flags.noise_floor[0].tolist() == [False, False, True]
    assert not wide.cell_flags.step_lost.any() and not wide.cell_flags.p_underflow.any()
    assert explain_cell(wide.logits, wide.labels, (0, 2), wide.settings).noise_floor


# --------------------------------------------------------------------------- one cell touches one row


def _peak_bytes(fn) -> int:  # type: ignore[no-untyped-def]
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("perturb", ["element", "row"])
def test_one_cell_work_allocates_for_a_row_not_for_the_grid(perturb: str) -> None:
    c = 256
    rng = np.random.default_rng(1)
    w = tuple(float(v) for v in rng.uniform(0.5, 2.0, c))
    settings = CheckSettings(dtype="float32", eps=1e-2, reduction="mean", weight=w, perturb=perturb)
    kw = settings.loss_kwargs
    peaks = {}
    for n in (8, 8192):  # the large grid is 8 MiB of float32
        x = rng.normal(size=(n, c)).astype(np.float32)
        y = rng.integers(0, c, n)
        peaks[n] = (
            _peak_bytes(lambda: explain_cell(x, y, (5, 3), settings)),  # noqa: B023
            _peak_bytes(lambda: eps_sweep(x, y, (5, 3), perturb=perturb, **kw)),  # type: ignore[arg-type]  # noqa: B023
        )
    # Only the labels (O(N), for the mean's denominator) may grow with N: far less than one copy of the grid.
    grid_bytes = 8192 * c * 4
    for small, large in zip(peaks[8], peaks[8192], strict=True):
        assert large - small < grid_bytes / 16, peaks


def test_the_denominator_is_that_of_the_whole_batch_for_a_row() -> None:
    y = np.array([0, 2, -100, 1])
    w = np.array([0.5, 2.0, 3.0])
    full = loss_terms((4, 3), y, w, reduction="mean")
    row = loss_terms((4, 3), y, w, reduction="mean", rows=slice(1, 2))
    assert full.denom == row.denom == reduction_denominator("mean", [0.5, 3.0, 0.0, 2.0]) == 5.5
    np.testing.assert_array_equal(row.coefficients(), full.coefficients(slice(1, 2)))
    assert reduction_denominator("none", [1.0]) == 1.0


# --------------------------------------------------------------------------- the property


def _dtypes() -> list[str]:
    try:
        resolve_dtype("bfloat16")
    except ValueError:  # without ml_dtypes
        return ["float16", "float32", "float64"]
    return ["float16", "bfloat16", "float32", "float64"]


DTYPES = _dtypes()


@st.composite
def checks(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray, CheckSettings, tuple[int, int]]:
    n = draw(st.integers(1, 5))
    c = draw(st.integers(1, 7))
    scale = draw(st.sampled_from([1.0, 10.0, 200.0]))
    x = draw(arrays(np.float64, (n, c), elements=st.floats(-1, 1, allow_nan=False, width=64))) * scale
    probability_targets = draw(st.booleans()) and c > 1
    if probability_targets:
        q = draw(arrays(np.float64, (n, c), elements=st.floats(0, 1, allow_nan=False, width=64)))
        labels = q / np.maximum(q.sum(axis=1, keepdims=True), 1e-12)
    else:
        labels = np.array(draw(st.lists(st.integers(-1, c - 1), min_size=n, max_size=n)), dtype=np.int64)
    one_weight = st.one_of(st.just(0.0), st.floats(1e-3, 3.0, width=64))  # (weights below float32's range: see report)
    weight = draw(st.one_of(st.none(), st.lists(one_weight, min_size=c, max_size=c)))
    scheme = draw(st.sampled_from(SCHEME_NAMES))
    eps = draw(st.sampled_from([1e-20, 1e-12, 1e-7, 1e-5, 1e-3, 0.0625, 0.1]))
    settings = CheckSettings(
        eps=eps,
        scheme=scheme,
        dtype=draw(st.sampled_from(DTYPES)),
        perturb=draw(st.sampled_from(PERTURB_MODES)),
        reduction=draw(st.sampled_from(["mean", "sum", "none"])),
        label_smoothing=draw(st.sampled_from([0.0, 0.1])),
        weight=None if weight is None else tuple(weight),
        ignore_index=-1,
        evaluate=draw(st.sampled_from(["row", "loss"])),
        **draw(st.sampled_from([{}, {"tolerance": "fixed"}, {"atol": 1e-3}])),
    )
    cell = (draw(st.integers(0, n - 1)), draw(st.integers(0, c - 1)))
    return x, labels, settings, cell


@given(checks())
def test_explain_and_sweep_equal_the_maps_bit_for_bit(case: tuple) -> None:
    x, labels, settings, cell = case
    report = check_gradient(x, labels, settings)
    e = explain_cell(x, labels, cell, settings)
    assert _same_bits(e.numeric, report.grad_numeric[cell]), (e.numeric, report.grad_numeric[cell])
    assert _same_bits(e.analytic, report.grad_analytic[cell]), (e.analytic, report.grad_analytic[cell])
    assert e.step_lost == report.cell_flags.step_lost[cell]
    assert e.p_underflow == report.cell_flags.p_underflow[cell]
    assert e.row_overflow == report.cell_flags.row_overflow[cell]
    assert e.noise_floor == report.cell_flags.noise_floor[cell]
    assert _same_bits(e.min_eps, report.cell_flags.min_eps[cell])
    assert _same_bits(e.expected_error, report.expected_error[cell])
    assert _same_bits(e.tolerance, report.tolerance_map[cell])
    assert e.passed == report.comparison.passed[cell] and e.tolerance_mode == report.tolerance_mode
    sweep = eps_sweep(
        report.logits, labels, cell, eps_grid(7), [settings.scheme], include_eps=settings.eps,
        perturb=settings.perturb, evaluate=settings.evaluate, **settings.loss_kwargs,
    )  # fmt: skip
    k = sweep.index_of(settings.eps)
    assert k is not None
    assert _same_bits(sweep.numeric[settings.scheme][k], report.grad_numeric[cell])
    assert _same_bits(sweep.errors[settings.scheme][k], report.abs_err[cell])


def test_the_reference_of_the_sweep_is_the_analytic_map_in_the_dtype() -> None:
    rng = np.random.default_rng(2)
    x = rng.normal(size=(3, 5)).astype(np.float16)
    y = rng.integers(0, 5, 3)
    sweep = eps_sweep(x, y, (1, 2))
    assert sweep.analytic == cross_entropy_grad(x, y)[1, 2]
    assert resolve_dtype(sweep.dtype) == np.float16
