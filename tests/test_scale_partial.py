"""Issue 15: the row-local recompute (explorer.core.partial) equals a full check bit for bit."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from explorer.core import CheckSettings, Report, check_gradient
from explorer.core.partial import compute_rows, prepare, row_local_refusal, update_rows


def _bits(a: np.ndarray) -> bytes:
    a = np.ascontiguousarray(a)
    return a.dtype.str.encode() + repr(a.shape).encode() + a.tobytes()


def assert_same_report(got: Report, want: Report) -> None:
    assert got.settings == want.settings
    for name in ("logits", "grad_analytic", "grad_numeric", "row_sums", "expected_error"):
        assert _bits(getattr(got, name)) == _bits(getattr(want, name)), name
    np.testing.assert_array_equal(got.labels, want.labels)
    assert np.array_equal(got.loss, want.loss, equal_nan=True) and _bits(np.float64(got.loss)) == _bits(
        np.float64(want.loss)
    )
    a, b = got.comparison, want.comparison
    for f in dataclasses.fields(a):
        x, y = getattr(a, f.name), getattr(b, f.name)
        if isinstance(x, np.ndarray) or isinstance(y, np.ndarray):
            assert _bits(x) == _bits(y), f.name
        else:
            assert x == y or (x != x and y != y), (f.name, x, y)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    n=st.integers(1, 24),
    c=st.integers(1, 40),
    dtype=st.sampled_from(["float16", "bfloat16", "float32", "float64"]),
    reduction=st.sampled_from(["mean", "sum", "none"]),
    scheme=st.sampled_from(["forward", "backward", "central", "central4", "complex"]),
    perturb=st.sampled_from(["element", "row"]),
    smoothing=st.sampled_from([0.0, 0.1]),
    weighted=st.booleans(),
    ignore=st.booleans(),
    relabel=st.booleans(),
    tolerance=st.sampled_from(["noise", "fixed"]),
    seed=st.integers(0, 2**32 - 1),
)
def test_updating_random_blocks_gives_the_full_checks_report_bit_for_bit(  # type: ignore[no-untyped-def]
    n, c, dtype, reduction, scheme, perturb, smoothing, weighted, ignore, relabel, tolerance, seed
) -> None:
    rng = np.random.default_rng(seed)
    weight = tuple(float(w) for w in rng.integers(0, 4, c)) if weighted else None
    s = CheckSettings(eps=float(10.0 ** rng.uniform(-6, -1)), scheme=scheme, dtype=dtype, perturb=perturb,
                      tolerance=tolerance, reduction=reduction, label_smoothing=smoothing, weight=weight,
                      ignore_index=-100)  # fmt: skip
    x = rng.normal(size=(n, c)) * rng.choice([1.0, 5.0, 30.0])
    y = rng.integers(0, c, n)
    if ignore:
        y[rng.random(n) < 0.3] = -100
    base = check_gradient(x, y, s)
    # A random block of logits changes; maybe a label too, keeping the mean's denominator.
    r0 = int(rng.integers(0, n))
    r1 = int(rng.integers(r0 + 1, n + 1))
    c0 = int(rng.integers(0, c))
    c1 = int(rng.integers(c0 + 1, c + 1))
    x2 = x.copy()
    x2[r0:r1, c0:c1] = rng.normal(size=(r1 - r0, c1 - c0)) * 4
    y2 = y.copy()
    if relabel:
        i = int(rng.integers(0, n))
        same_weight = [k for k in range(c) if weight is None or weight[k] == weight[y[i]]] if y[i] >= 0 else []
        if same_weight:
            y2[i] = int(rng.choice(same_weight))
    want = check_gradient(x2, y2, s)
    assert row_local_refusal(base, x2.shape, y2, s) is None
    got = update_rows(base, x2, y2, np.arange(r0, r1))
    assert_same_report(got, want)
    # Only the edited rows given, and a second update on top of the first.
    got_block = update_rows(base, x2[r0:r1], y2, np.arange(r0, r1))
    assert_same_report(got_block, want)
    x3 = x2.copy()
    k = int(rng.integers(0, n))
    x3[k, int(rng.integers(0, c))] += 1.5
    assert_same_report(update_rows(got, x3, y2, [k]), check_gradient(x3, y2, s))
    # The base report did not change.
    assert_same_report(base, check_gradient(x, y, s))


def test_a_nan_row_and_float16_overflow_keep_the_worst_cell_and_maxima() -> None:
    s = CheckSettings(eps=1e-2, scheme="central", dtype="float16", reduction="sum")
    rng = np.random.default_rng(0)
    x = rng.normal(size=(6, 9))
    y = rng.integers(0, 9, 6)
    base = check_gradient(x, y, s)
    prepare(base)
    x2 = x.copy()
    x2[4, 2] = 1e6  # inf in float16: row 4's gradient is NaN
    assert_same_report(update_rows(base, x2, y, [4]), check_gradient(x2, y, s))
    x3 = x2.copy()
    x3[4, 2] = 0.5  # and back
    got = update_rows(update_rows(base, x2, y, [4]), x3, y, [4])
    assert_same_report(got, check_gradient(x3, y, s))


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"evaluate": "loss"}, "evaluate"),
        ({"perturb": "all"}, "perturb"),
        ({"eps": 1e-3}, "settings"),
    ],
)
def test_what_is_not_row_local_falls_back_to_the_full_check(change: dict, reason: str) -> None:
    rng = np.random.default_rng(2)
    x, y = rng.normal(size=(5, 7)), rng.integers(0, 7, 5)
    s = CheckSettings(eps=1e-5, reduction="mean")
    s2 = s.replace(**change)
    base = check_gradient(x, y, s2 if reason != "settings" else s)
    x2 = x.copy()
    x2[1, 1] = 3.0
    why = row_local_refusal(base, x2.shape, y, s2)
    assert why is not None and reason in why
    assert_same_report(update_rows(base, x2, y, [1], s2), check_gradient(x2, y, s2))


def test_a_label_change_that_moves_the_mean_denominator_falls_back() -> None:
    rng = np.random.default_rng(3)
    x, y = rng.normal(size=(5, 4)), np.array([0, 1, 2, 3, 0])
    s = CheckSettings(eps=1e-5, reduction="mean", weight=(1.0, 2.0, 1.0, 1.0))
    base = check_gradient(x, y, s)
    y2 = y.copy()
    y2[0] = 1  # weight 1 -> 2: the denominator changes, so every row's gradient does
    assert "denominator" in str(row_local_refusal(base, x.shape, y2, s))
    assert_same_report(update_rows(base, x, y2, []), check_gradient(x, y2, s))
    y3 = y.copy()
    y3[0] = 2  # weight 1 -> 1: row 0 only
    assert row_local_refusal(base, x.shape, y3, s) is None
    assert_same_report(update_rows(base, x, y3, []), check_gradient(x, y3, s))


def test_a_one_row_update_of_a_wide_grid_equals_the_full_check() -> None:
    rng = np.random.default_rng(4)
    x = rng.normal(size=(4, 70_000)).astype(np.float32)
    y = rng.integers(0, 70_000, 4)
    s = CheckSettings(eps=1e-2, dtype="float32", reduction="mean")
    base = check_gradient(x, y, s)
    x2 = x.copy()
    x2[2, 12_345] = 40.0
    assert_same_report(update_rows(base, x2[2:3], y, [2]), check_gradient(x2, y, s))


@pytest.mark.parametrize("tolerance", ["noise", "fixed"])
def test_a_patch_written_in_place_gives_the_full_checks_report(tolerance: str) -> None:
    rng = np.random.default_rng(5)
    x, y = rng.normal(size=(9, 300)), rng.integers(0, 300, 9)
    s = CheckSettings(eps=1e-4, dtype="float32", reduction="mean", tolerance=tolerance)
    base = check_gradient(x, y, s)
    arrays = (base.logits, base.grad_analytic, base.comparison.abs_err)
    x2 = x.copy()
    x2[2:4, 7] = [9.0, -9.0]
    patch = compute_rows(base, x2[2:4], y, [2, 3])
    assert patch.rows.start <= 2 and patch.rows.stop >= 4  # widened to the full check's row blocks
    got = patch.apply(inplace=True)
    assert_same_report(got, check_gradient(x2, y, s))
    assert got.logits is arrays[0] and got.grad_analytic is arrays[1] and got.comparison.abs_err is arrays[2]
