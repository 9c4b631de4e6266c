"""The core's fast paths give the bits of the plain formulas they replace.

The error model's map (:func:`explorer.core.noise.expected_error_map`), computed in cache-sized
chunks with the operations that are exact at a zero coefficient left out, against the plain
whole-block implementation it replaced (kept here verbatim as the reference); the lazily
computed error maps of a comparison against the eager ones; the peak memory of a check.
"""

from __future__ import annotations

import math
import tracemalloc
from functools import cache

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from numpy.typing import ArrayLike, DTypeLike, NDArray

from explorer.core import CheckSettings, check_gradient, compare, explain_cell, noise, noise_tolerance
from explorer.core._dtypes import resolve_dtype, round_to, unit_roundoff, work_dtype
from explorer.core.losses import LossTerms, loss_terms
from explorer.core.noise import _half_ulp, _ulp_into, expected_dtype, expected_error_map, noise_block
from explorer.core.numeric import BLOCK_ELEMENTS, loss_sum_parts
from explorer.core.schemes import Scheme, get_scheme

# ---------------------------------------------------------------------------------------------
# The reference: noise_block as it was before the fast path (verbatim but for the names).
# ---------------------------------------------------------------------------------------------


def _ref_finfo(dtype: np.dtype) -> tuple[int, float]:
    """``(nmant, smallest subnormal)`` of a floating dtype (ml_dtypes included)."""
    try:
        fi = np.finfo(dtype)
    except ValueError:
        import ml_dtypes

        fi = ml_dtypes.finfo(dtype)
    return int(fi.nmant), float(fi.smallest_subnormal)


def ref_ulp(values: ArrayLike, dtype: DTypeLike) -> NDArray:
    r"""The spacing of ``dtype`` at ``|values|`` (one unit in the last place), as float64.

    Works for float16, bfloat16, float32 and float64 from float64 values, also beyond the
    dtype's range (no conversion): :math:`2^{e - 1 - \text{nmant}}` with :math:`|v| = m 2^e`,
    :math:`m \in [1/2, 1)`, at least the smallest subnormal.

    """
    nmant, tiny = _ref_finfo(resolve_dtype(dtype))  # type: ignore[arg-type]
    v = np.abs(np.asarray(values, dtype=np.float64))
    _, e = np.frexp(v)
    return np.maximum(np.ldexp(1.0, e - 1 - nmant), tiny)


@cache
def _ref_p_derivative(order: int) -> tuple[np.polynomial.Polynomial, tuple[float, ...]]:
    """The ``order``-th derivative of ``p = softmax_j`` along its own logit, as a polynomial in p.

    Returns the polynomial and its critical points in (0, 1), where ``|g|`` may peak.
    """
    p = np.polynomial.Polynomial([0.0, 1.0])
    g = p
    for _ in range(order):
        g = g.deriv() * p * (1 - p)  # d/dt g(p) = g'(p) p (1 - p)
    roots = np.asarray(g.deriv().roots(), dtype=np.complex128)
    crit = tuple(float(r.real) for r in roots if abs(r.imag) < 1e-12 and 0.0 < float(r.real) < 1.0)
    return g, crit


def _ref_p_derivative_abs(order: int, p: NDArray) -> NDArray:
    """``|g(p)|`` of :func:`_p_derivative` in a few passes (the factored forms, not Horner's rule)."""
    pq = p * (1.0 - p)
    if order == 1:
        return pq
    if order == 2:
        return np.abs(pq * (1.0 - 2.0 * p))
    if order == 4:
        return np.abs(pq * (1.0 - 2.0 * p) * (1.0 - 12.0 * pq))
    return np.abs(_ref_p_derivative(order)[0](p))


def _ref_truncation_coef(sch: Scheme) -> float:
    """Taylor-remainder constant: ``sum |w| |o|^(p+1) / ((p+1)! divisor)`` (1/6 for the complex step)."""
    if sch.is_complex:
        return 1.0 / 6.0
    p = sch.order
    return sum(abs(w) * abs(o) ** (p + 1) for o, w in sch.stencil) / (math.factorial(p + 1) * sch.divisor)


def reference_noise_block(
    x: NDArray, terms: LossTerms, rows: slice, scheme: str | Scheme, eps: float, whole_sum: float | None = None
) -> tuple[NDArray, NDArray, NDArray, NDArray]:
    r"""The expected error of every element of a block of rows (the one implementation).

    Parameters
    ----------
    x : ndarray (n, C)
        The rows' logits in the check's dtype.
    terms : LossTerms
        Loss terms holding these rows at ``rows`` (the denominator is the batch's).
    rows : slice
    scheme : str or Scheme
    eps : float
    whole_sum : float, optional
        For ``evaluate="loss"``: the sum of all row losses :math:`T` (the whole loss times
        :math:`D`); the values differenced are then whole losses, rounded at its size.

    Returns
    -------
    tuple of four arrays

    Notes
    -----
    Row-separable: one row alone gives the same bits as in a block. With
    :math:`p_{lo}, p_{hi}` the range of :math:`p_{ij}` while :math:`x_{ij}` moves by up to
    :math:`T = \max|o| h`, :math:`G = \max |A p - a| / D` over that range, the parts are:

    * truncation: :math:`c_t h^p A \max |p^{(p)}| / D`, the maximum over :math:`[p_{lo}, p_{hi}]`
      of the exact polynomial in p (its ends and critical points);
    * step: :math:`G \sum |w_k| |\delta_k| / (d h)` with :math:`\delta_k` the rounding of the point;
    * rounding: :math:`\sum |w_k| \rho / (d h D)`, each row loss off by
      :math:`\rho = u_w (A (1 + 2 |\log S'| + p_{hi} (3 + |z| + T)) + 2 |\ell'| + |a| T)`
      plus half an ulp of the dtype when it is narrower than the working precision; whole
      losses add half an ulp of the sum (and of the mean) in both precisions; plus
      :math:`u_w (4 + \log_2 C) G` for the quotient's own arithmetic;
    * storage: half an ulp of the dtype at :math:`G + E` (the numeric value) and at
      :math:`G` (the analytic value), plus the analytic formula's :math:`u_w (A p (4 + |z|) + |a|) / D`.
    """
    sch = get_scheme(scheme)
    h = float(eps)
    storage = x.dtype
    work = work_dtype(storage)
    narrow = storage != work
    uw = unit_roundoff(work)
    n, c = x.shape
    d = terms.denom
    if d == 0.0 or n == 0:  # every row ignored: both gradients are exactly 0
        zero = np.zeros((n, c))
        return zero, zero, zero, zero
    xs = x.astype(np.float64)
    m = np.max(xs, axis=1, keepdims=True)
    z = xs - m
    e = np.exp(z)
    s = np.sum(e, axis=1, keepdims=True)
    big_a = terms.total[rows][:, None].astype(np.float64)
    a = terms.coefficients(rows).astype(np.float64)
    log_s = np.log(s)
    ell = big_a * log_s - np.sum(a * z, axis=1, keepdims=True)
    reach = (max(abs(o) for o in sch.offsets) if sch.offsets else 1.0) * h
    # p(t) = r e^t / (1 + r e^t) with the odds r = e / (S - e) (inf where the row is that one logit).
    grow = math.exp(min(reach, 700.0))
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        odds = e / (s - e)
        up, down = odds * grow, odds / grow
        p_hi = np.where(np.isinf(up), 1.0, up / (1.0 + up))
        p_lo = np.where(np.isinf(down), 1.0, down / (1.0 + down))
    slope = np.maximum(np.abs(big_a * p_lo - a), np.abs(big_a * p_hi - a)) / d  # G = max |f'|
    # Truncation: the exact derivative polynomial's largest |value| over [p_lo, p_hi].
    g, crit = _ref_p_derivative(sch.order)
    peak = np.maximum(_ref_p_derivative_abs(sch.order, p_lo), _ref_p_derivative_abs(sch.order, p_hi))
    for cp in crit:
        inside = (p_lo < cp) & (cp < p_hi)
        np.maximum(peak, inside * abs(float(g(cp))), out=peak)
    with np.errstate(over="ignore", invalid="ignore"):  # a huge step: an infinite truncation error
        truncation = _ref_truncation_coef(sch) * np.float64(h) ** sch.order * big_a * peak / d
    # The values differenced.
    moved = np.abs(ell) + reach * slope * d  # |l'| at most
    if sch.is_complex:
        step = np.zeros_like(xs)
        rounding = 3.0 * uw * (big_a * p_hi * (1.0 + np.abs(z)) + np.abs(a)) / d
    else:
        xw = x.astype(work)
        moved_points = np.zeros_like(xs)
        for o, w in sch.stencil:
            if o != 0.0:
                xp = round_to(xw + o * h, storage).astype(np.float64)
                moved_points += abs(w) * np.abs(xp - xs - o * h)
        step = slope * moved_points / (sch.divisor * h)
        rho = uw * (big_a * (1.0 + 2.0 * (np.abs(log_s) + reach) + p_hi * (3.0 + np.abs(z) + reach)))
        rho = rho + uw * (2.0 * moved + np.abs(a) * reach)
        if narrow:
            rho = rho + 0.5 * ref_ulp(moved, storage)
        weights = sum(abs(w) for w in sch.weights)
        # Summing the stencil: differences of +-1-weighted neighbours are exact (Sterbenz); central4's
        # -v + 8 v' rounds once at about 7 |v|.
        formation = 0.0 if all(abs(w) == 1.0 for w in sch.weights) else 0.5 * weights * uw
        if whole_sum is None:
            rho = rho + formation * moved
            rounding = weights * rho / (sch.divisor * h * d)
        else:
            total = abs(float(whole_sum)) + moved  # the sum R + l', rounded in both precisions
            rho = rho + 0.5 * ref_ulp(total, work)
            if narrow:
                rho = rho + 0.5 * ref_ulp(total, storage)
            rho = rho / d
            value = total / d
            if terms.reduction == "mean" and d != 1.0:  # the mean's division, rounded again
                rho = rho + 0.5 * ref_ulp(value, work)
                if narrow:
                    rho = rho + 0.5 * ref_ulp(value, storage)
            rho = rho + formation * value
            rounding = weights * rho / (sch.divisor * h)
    # Gradual underflow: an exp (or e sin h) below the normal range is off by up to the smallest subnormal.
    tiny_w = _ref_finfo(work)[1]
    weights_h = (2.0 if sch.is_complex else sum(abs(w) for w in sch.weights) / sch.divisor) / h
    rounding = rounding + tiny_w * weights_h * big_a / d
    rounding = rounding + uw * (4.0 + math.log2(max(c, 1))) * slope
    rounding = rounding + uw * (big_a * p_hi * (4.0 + np.abs(z)) + np.abs(a)) / d  # the analytic formula
    pre = truncation + step + rounding
    stored = 0.5 * ref_ulp(slope + pre, storage) + 0.5 * ref_ulp(slope, storage)
    return truncation, step, rounding, stored


def reference_map(x: NDArray, terms: LossTerms, scheme: str, eps: float, whole_sum: float | None) -> NDArray:
    """The map as it was built: the reference block's total, in the same row blocks, kept in the map's dtype
    (float32 below float64 checks)."""
    n, c = x.shape
    out = np.empty((n, c), dtype=expected_dtype(x.dtype))
    per = max(1, BLOCK_ELEMENTS // max(c, 1))
    for r0 in range(0, n, per):
        rows = slice(r0, min(n, r0 + per))
        t, s, r, st_ = reference_noise_block(x[rows], terms, rows, scheme, eps, whole_sum)
        out[rows] = t + s + r + st_
    return out


def _bits(a: ArrayLike) -> bytes:
    """The bytes of the values, the sign of zero included; NaN equals NaN (its sign and payload are not kept)."""
    arr = np.array(a, dtype=np.float64)
    arr[np.isnan(arr)] = np.nan
    return repr(arr.shape).encode() + arr.tobytes()


def _problem(rng: np.random.Generator, n: int, c: int, dtype: str, special: str, target: str, smoothing: float,
             weighted: bool, reduction: str) -> tuple[NDArray, NDArray, dict]:  # fmt: skip
    scale = {"normal": 3.0, "wide": 40.0, "huge": 400.0}.get(special, 3.0)
    x = rng.normal(size=(n, c)) * scale
    if special == "ties":
        x = np.round(x)
    if special == "nonfinite":
        for v in (np.inf, -np.inf, np.nan):
            x[rng.integers(0, n), rng.integers(0, c)] = v
    if special == "dominant":
        x[:, 0] = 800.0  # the others underflow: p = 1 exactly, odds infinite
    with np.errstate(over="ignore"):
        xd = x.astype(resolve_dtype(dtype))
    if target == "probs":
        y = rng.random((n, c))
        y /= y.sum(axis=1, keepdims=True)
    else:
        y = rng.integers(0, c, n)
        if target == "ignore":
            y[rng.random(n) < 0.4] = -100
    kw = {"reduction": reduction, "label_smoothing": smoothing,
          "weight": rng.integers(0, 4, c).astype(float) if weighted else None}  # fmt: skip
    return xd, y, kw


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    n=st.integers(1, 9),
    c=st.integers(1, 60),
    dtype=st.sampled_from(["float16", "bfloat16", "float32", "float64"]),
    scheme=st.sampled_from(["forward", "backward", "central", "central4", "complex"]),
    reduction=st.sampled_from(["mean", "sum", "none"]),
    special=st.sampled_from(["normal", "wide", "huge", "ties", "nonfinite", "dominant"]),
    target=st.sampled_from(["index", "ignore", "probs"]),
    smoothing=st.sampled_from([0.0, 0.0, 0.1]),
    weighted=st.booleans(),
    evaluate=st.sampled_from(["row", "row", "loss"]),
    log_eps=st.floats(-21, 1),
    seed=st.integers(0, 2**32 - 1),
)
def test_the_error_map_has_the_bits_of_the_plain_implementation(  # type: ignore[no-untyped-def]
    n, c, dtype, scheme, reduction, special, target, smoothing, weighted, evaluate, log_eps, seed
) -> None:
    rng = np.random.default_rng(seed)
    x, y, kw = _problem(rng, n, c, dtype, special, target, smoothing, weighted, reduction)
    eps = 10.0**log_eps
    terms = loss_terms(x.shape, y, **kw)
    with np.errstate(all="ignore"):
        whole = loss_sum_parts(x, terms)[1] if evaluate == "loss" else None
        want = reference_map(x, terms, scheme, eps, whole)
        got = expected_error_map(x, terms, scheme, eps, whole)
        assert _bits(got) == _bits(want)
        saved = noise._CHUNK
        try:  # chunks of a few columns: the targets and the scratch arrays' narrower last chunk
            noise._CHUNK = int(rng.integers(1, 12))
            assert _bits(expected_error_map(x, terms, scheme, eps, whole)) == _bits(want)
        finally:
            noise._CHUNK = saved
        # The parts of a block, and of any columns of it (the inspector's one cell).
        rows = slice(0, n)
        ref = reference_noise_block(x, terms, rows, scheme, eps, whole)
        parts = noise_block(x, terms, rows, scheme, eps, whole)
        for a, b in zip((parts.truncation, parts.step, parts.rounding, parts.storage), ref, strict=True):
            assert _bits(a) == _bits(b)


@pytest.mark.parametrize("dtype", ["float32", "float64", "bfloat16"])
@pytest.mark.parametrize("scheme", ["central", "forward", "central4"])
@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_a_wide_row_in_many_chunks_has_the_bits_of_the_plain_implementation(dtype: str, scheme: str,
                                                                           reduction: str) -> None:  # fmt: skip
    rng = np.random.default_rng(3)
    n, c = 3, 20_011  # one row per block, many chunks, targets in different chunks
    x = (rng.normal(size=(n, c)) * 4).astype(resolve_dtype(dtype))
    x[1, 17] = 30.0  # one large p
    y = np.array([5, 17, c - 1])
    terms = loss_terms(x.shape, y, reduction=reduction, weight=np.full(c, 0.5) if reduction == "sum" else None)
    eps = 1e-2 if dtype != "float64" else 1e-5
    assert _bits(expected_error_map(x, terms, scheme, eps, None)) == _bits(reference_map(x, terms, scheme, eps, None))


@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float32", "float64"])
def test_ulp_from_the_exponent_bits_is_ulp(dtype: str) -> None:
    rng = np.random.default_rng(0)
    v = np.concatenate([
        rng.normal(size=200) * 10.0 ** rng.integers(-300, 300, 200),
        [0.0, -0.0, np.inf, -np.inf, np.nan, 5e-324, 1e-310, 2.0**-1022, 2.0**-1000, 1.0, -3.0, 1.7e308],
    ])  # fmt: skip
    dt = resolve_dtype(dtype)
    normal = v[np.isfinite(v) & (np.abs(v) > 1e-290)]
    moderate = v[np.isfinite(v) & (np.abs(v) > 1e-30)]
    for part in [v, normal, moderate, *np.array_split(v, 7)]:  # some without the special values: the bit path
        assert _bits(_ulp_into(part, dt)) == _bits(ref_ulp(part, dtype))
        assert _bits(_half_ulp(part, dt)) == _bits(0.5 * ref_ulp(part, dtype))


# ---------------------------------------------------------------------------------------------
# The verdict in chunks, its maps formed on first use, against the eager formulas it replaced.
# ---------------------------------------------------------------------------------------------


def reference_compare(num: ArrayLike, ana: ArrayLike, atol: float, rtol: float, tolerance: ArrayLike | None) -> dict:
    """compare() as it was: every map formed eagerly over the whole grid (verbatim but for the return)."""
    num = np.asarray(num, dtype=np.float64)
    ana = np.asarray(ana, dtype=np.float64)
    with np.errstate(invalid="ignore"):  # inf - inf in gradients of non-finite logits
        abs_err = np.abs(num - ana)
    scale = np.maximum(np.abs(num), np.abs(ana))
    rel_err = np.zeros_like(abs_err)
    np.divide(abs_err, scale, out=rel_err, where=scale > 0)
    rel_err[np.isnan(abs_err)] = np.nan
    tol = None
    with np.errstate(invalid="ignore"):
        if tolerance is None:
            margin = abs_err - rtol * np.abs(ana)
            passed = margin <= atol
        else:
            tol = np.broadcast_to(np.asarray(tolerance, dtype=np.float64), abs_err.shape)
            passed = abs_err <= tol
    if abs_err.size:
        worst = tuple(int(i) for i in np.unravel_index(int(np.argmax(abs_err)), abs_err.shape))  # NaN counts as largest
        max_abs = float(np.max(np.where(np.isnan(abs_err), np.inf, abs_err)))
        max_rel = float(np.max(np.where(np.isnan(rel_err), np.inf, rel_err)))
    else:
        worst, max_abs, max_rel = (), 0.0, 0.0
    n_failed = int(passed.size - np.count_nonzero(passed))
    return {"abs_err": abs_err, "rel_err": rel_err, "passed": passed, "worst": worst, "max_abs_err": max_abs,
            "max_rel_err": max_rel, "n_failed": n_failed, "tolerance": tol}  # fmt: skip


def _values(rng: np.random.Generator, shape: tuple[int, ...], dtype: str) -> NDArray:
    v = rng.normal(size=shape) * 10.0 ** rng.integers(-8, 2, shape)
    flat = v.reshape(-1)
    for special in (0.0, -0.0, np.inf, -np.inf, np.nan):
        if flat.size and rng.random() < 0.5:
            flat[rng.integers(0, flat.size)] = special
    with np.errstate(over="ignore"):
        return v.astype(resolve_dtype(dtype))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    shape=st.sampled_from([(0,), (1,), (7,), (3, 5), (2, 70_000), (4, 33)]),
    dtype=st.sampled_from(["float16", "bfloat16", "float32", "float64"]),
    verdict=st.sampled_from(["fixed", "map", "scalar", "expected"]),
    ties=st.booleans(),
    seed=st.integers(0, 2**32 - 1),
)
def test_compare_in_chunks_gives_the_eager_comparisons_bits(shape, dtype, verdict, ties, seed) -> None:  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(seed)
    num, ana = _values(rng, shape, dtype), _values(rng, shape, dtype)
    if ties and num.size:
        num = ana.copy()  # every error 0: the worst is the first cell
    expected = np.abs(rng.normal(size=shape)) * 1e-3
    if verdict == "expected" and expected.size:
        expected.reshape(-1)[0] = np.inf  # not finite: the element fails
    tol = {"fixed": None, "map": np.abs(rng.normal(size=shape)), "scalar": 0.5,
           "expected": noise_tolerance(expected, dtype)}[verdict]  # fmt: skip
    from explorer.core.errors import compare_noise
    from explorer.core.noise import NOISE_MULTIPLE, noise_floor

    with np.errstate(invalid="ignore"):  # inf / inf in the relative error, before and after
        want = reference_compare(num, ana, 1e-3, 1e-2, tol)
        if verdict == "expected":
            got = compare_noise(num, ana, 1e-3, 1e-2, expected, NOISE_MULTIPLE, noise_floor(dtype))
        else:
            got = compare(num, ana, 1e-3, 1e-2, tolerance=tol)
        maps = {name: getattr(got, name) for name in ("abs_err", "rel_err", "passed", "tolerance")}
    for name in ("abs_err", "rel_err", "passed", "tolerance"):
        w, g = want[name], maps[name]
        assert (w is None) == (g is None), name
        if w is not None:
            assert g.shape == w.shape and _bits(g) == _bits(w), name
    for name in ("worst", "max_abs_err", "max_rel_err", "n_failed"):
        assert getattr(got, name) == want[name], name
    assert got.ok == (want["n_failed"] == 0) and got.mode == ("fixed" if verdict == "fixed" else "noise")


def test_a_checks_error_maps_are_formed_on_first_use_with_the_formulas_bits() -> None:
    rng = np.random.default_rng(4)
    x, y = rng.normal(size=(6, 50)).astype(np.float32), rng.integers(0, 50, 6)
    for tolerance in ("noise", "fixed"):
        r = check_gradient(x, y, CheckSettings(eps=1e-2, dtype="float32", tolerance=tolerance))
        assert "abs_err" not in r.comparison.__dict__ and "rel_err" not in r.comparison.__dict__  # not yet formed
        want = reference_compare(
            r.grad_numeric,
            r.grad_analytic,
            *r.settings.tolerances,
            noise_tolerance(r.expected_error, "float32") if tolerance == "noise" else None,
        )
        assert _bits(r.abs_err) == _bits(want["abs_err"]) and _bits(r.rel_err) == _bits(want["rel_err"])
        assert r.abs_err is r.abs_err  # kept once formed
        assert np.array_equal(r.comparison.passed, want["passed"])
        if tolerance == "noise":
            assert _bits(r.tolerance_map) == _bits(want["tolerance"])


# ---------------------------------------------------------------------------------------------
# One cell at a wide row: the inspector's bits are the map's, and the whole check's memory.
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", ["float32", "bfloat16", "float64"])
@pytest.mark.parametrize("tolerance", ["noise", "fixed"])
def test_the_inspector_at_a_wide_row_finds_the_maps_bits(dtype: str, tolerance: str) -> None:
    rng = np.random.default_rng(8)
    n, c = 3, 40_000  # one row per block, several chunks of the error model
    x = (rng.normal(size=(n, c)) * 3).astype(resolve_dtype(dtype))
    y = np.array([3, 25_000, c - 1])
    s = CheckSettings.with_default_eps("central", dtype, reduction="mean", tolerance=tolerance)
    report = check_gradient(x, y, s)
    for cell in [(0, 3), (1, 25_000), (1, 16_385), (2, c - 1), (2, 0), (0, 20_000)]:
        e = explain_cell(x, y, cell, s)
        for got, want in [
            (e.numeric, report.grad_numeric[cell]),
            (e.analytic, report.grad_analytic[cell]),
            (e.expected_error, report.expected_error[cell]),
            (e.tolerance, report.tolerance_map[cell]),
        ]:
            assert _bits(got) == _bits(want), cell  # fmt: skip
        assert e.passed == report.comparison.passed[cell]


@pytest.mark.parametrize("scheme", ["forward", "backward", "central", "central4", "complex"])
@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float32", "float64"])
def test_one_elements_flags_are_the_flag_maps(scheme: str, dtype: str) -> None:
    from explorer.core import cell_flags
    from explorer.core.explain import _element_flags
    from explorer.core.numeric import RowBlock

    rng = np.random.default_rng(11)
    row = rng.normal(size=(1, 64)) * 30
    row[0, :4] = [1e5, 70_000.0, -np.inf, 120.0]  # beyond float16's range, an infinite logit, a large one
    row[0, 5] = -400.0  # p underflows
    with np.errstate(over="ignore"):
        x = row.astype(resolve_dtype(dtype))
    for eps in (1e-3, 1e-9, 0.5):
        with np.errstate(all="ignore"):
            want = cell_flags(x, eps, scheme)
            block = RowBlock(x, loss_terms(x.shape, np.array([7])), slice(0, 1))
            for j in range(x.shape[1]):
                got = _element_flags(block, j, eps, get_scheme(scheme))
                assert got == (bool(want.step_lost[0, j]), bool(want.p_underflow[0, j]), bool(want.row_overflow[0, j]))
    finite = x.copy()
    finite[0, :4] = 1.0
    with np.errstate(all="ignore"):
        block = RowBlock(finite, loss_terms(finite.shape, np.array([7])), slice(0, 1))
        want = cell_flags(finite, 1e-3, scheme)
        assert not any(_element_flags(block, j, 1e-3, get_scheme(scheme))[2] for j in range(64))
        underflow = [_element_flags(block, j, 1e-3, get_scheme(scheme))[1] for j in range(64)]
        assert underflow == want.p_underflow[0].tolist()


@pytest.mark.parametrize("labels", ["index", "ignored", "smoothed", "probs", "neg_inf"])
def test_a_rows_derivatives_from_the_targets_term_are_the_dot_products(labels: str) -> None:
    from explorer.core.sweep import _p_derivatives, _row_derivatives

    rng = np.random.default_rng(12)
    row = rng.normal(size=300) * 4
    if labels == "neg_inf":
        row[17] = -np.inf
    y: ArrayLike = np.array([-100 if labels == "ignored" else 17])
    if labels == "probs":
        y = rng.random((1, 300))
    terms = loss_terms((1, 300), y, label_smoothing=0.1 if labels == "smoothed" else 0.0, reduction="sum")
    with np.errstate(all="ignore"):
        got = _row_derivatives(row, terms, 5)
        z = row - row.max()  # the plain form: a dense dot product
        e = np.exp(z)
        s = e.sum()
        p = e[5] / s
        a = terms.coefficients()[0]
        big_a = float(terms.total[0])
        loss = big_a * math.log(s) - float(a @ z)
        want = [loss, big_a * p - a[5]] + [big_a * v for v in _p_derivatives(p, 5)[1:]]
    assert _bits(got) == _bits(np.array(want[:6]))


def test_a_checks_peak_memory_stays_within_six_times_the_logits() -> None:
    rng = np.random.default_rng(13)
    x, y = rng.normal(size=(8, 100_000)).astype(np.float32), rng.integers(0, 100_000, 8)
    s = CheckSettings(eps=1e-2, dtype="float32", reduction="mean")
    check_gradient(x[:1], y[:1], s)  # imports and caches outside the measurement
    tracemalloc.start()
    try:
        report = check_gradient(x, y, s)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak <= 6 * x.nbytes, peak / x.nbytes  # the report holds both gradients, the expected error, the verdict
    assert report.ok


def test_the_check_reports_progress_through_the_error_model_and_can_be_abandoned() -> None:
    rng = np.random.default_rng(14)
    x, y = rng.normal(size=(40, 1000)), rng.integers(0, 1000, 40)
    seen: list[float] = []
    check_gradient(x, y, CheckSettings(), progress=seen.append)
    assert seen == sorted(seen) and seen[-1] == 1.0 and any(0.5 < f < 1.0 for f in seen)

    class Stop(Exception):
        pass

    def stop_late(fraction: float) -> None:
        if fraction > 0.6:  # inside the error model's part
            raise Stop

    with pytest.raises(Stop):
        check_gradient(x, y, CheckSettings(), progress=stop_late)
