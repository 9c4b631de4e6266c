"""Whole-grid facts without whole-grid maps: the digest, map regions and the worst-cell ranking, chunk by chunk."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from explorer.app.report_text import blind_share, extreme_notes
from explorer.core import CheckSettings, check_gradient, compare, errors
from explorer.core.diagnose import diagnose
from explorer.core.digest import digest
from explorer.core.errors import worst_cells
from explorer.core.partial import compute_rows, update_rows
from explorer.core.report import CANDIDATES_KEY, RANKING_KEY


def _reference_ranking(cmp, k: int) -> np.ndarray:  # type: ignore[no-untyped-def]
    """A full sort: failing first, then |num - ana| descending (NaN as inf), then C order."""
    err = np.abs(cmp.grad_numeric.astype(np.float64) - cmp.grad_analytic.astype(np.float64)).ravel()
    key = np.where(np.isnan(err), np.inf, err)
    failed = ~cmp.passed.ravel()
    idx = np.arange(err.size)
    order = np.lexsort((idx, -key, ~failed))[:k]
    return np.stack(np.unravel_index(order, cmp.grad_numeric.shape), axis=1)


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), cols=st.sampled_from([7, 300, 5000]), k=st.integers(0, 40),
       ties=st.booleans(), nans=st.booleans())  # fmt: skip
def test_chunked_ranking_equals_a_full_sort(seed: int, cols: int, k: int, ties: bool, nans: bool) -> None:
    rng = np.random.default_rng(seed)
    shape = (int(rng.integers(1, 200)), cols)
    ana = rng.normal(size=shape)
    num = ana + (np.round(rng.normal(size=shape), 1) if ties else rng.normal(size=shape)) * 1e-3
    if nans:
        num[tuple(rng.integers(0, s, 3) for s in shape)] = np.nan
    cmp = compare(num, ana, atol=1e-3, rtol=0.0)
    assert worst_cells(cmp, k).tolist() == _reference_ranking(cmp, k).tolist()


@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float32", "float64"])
def test_digest_counts_equal_the_whole_grid_masks(dtype: str) -> None:
    rng = np.random.default_rng(3)
    x = rng.normal(size=(40, 700)) * 6
    x[5, 9] = 1e5  # overflows float16
    report = check_gradient(x, rng.integers(0, 700, 40), CheckSettings(dtype=dtype, eps=1e-3))
    t = digest(report).totals()
    flags = diagnose(report)
    ana, num = report.grad_analytic.astype(np.float64), report.grad_numeric.astype(np.float64)
    nonfinite = ~np.isfinite(ana) | ~np.isfinite(num)
    vanished = (num == 0) & (ana != 0) & ~nonfinite
    assert t.blind == int(np.count_nonzero(report.blind))
    assert t.nonfinite == int(nonfinite.sum())
    assert t.overflowed_rows == int(flags.row_overflow.any(axis=1).sum())
    assert t.lost == int((vanished & flags.step_lost).sum())
    assert t.underflow == int((vanished & flags.p_underflow & ~flags.step_lost).sum())
    assert t.floor == int((vanished & flags.noise_floor).sum())
    assert t.extent == max(float(np.abs(a[np.isfinite(a)]).max()) for a in (ana, num))
    a = np.abs(ana)
    share = float(a[report.blind & np.isfinite(a)].sum()) / float(a[np.isfinite(a)].sum())
    assert blind_share(report) == pytest.approx(share, rel=1e-12)
    assert all(isinstance(note, str) for note in extreme_notes(report))


@pytest.mark.parametrize("name", ["abs_err", "rel_err", "tolerance"])
@pytest.mark.parametrize("tolerance", ["noise", "fixed"])
def test_map_regions_are_the_whole_maps_cells(name: str, tolerance: str) -> None:
    rng = np.random.default_rng(4)
    report = check_gradient(rng.normal(size=(30, 50)) * 4, rng.integers(0, 50, 30),
                            CheckSettings(dtype="float32", tolerance=tolerance))  # fmt: skip
    region = report.comparison.region(name, slice(3, 17), slice(20, 41), report.grad_analytic)
    whole = {"abs_err": report.abs_err, "rel_err": report.rel_err, "tolerance": report.tolerance_map}[name]
    assert region.tobytes() == np.ascontiguousarray(whole[3:17, 20:41]).tobytes()


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), dtype=st.sampled_from(["float16", "float32", "float64"]))
def test_row_local_digest_equals_a_full_one(seed: int, dtype: str) -> None:
    rng = np.random.default_rng(seed)
    n, c = int(rng.integers(2, 30)), int(rng.integers(2, 400))
    x = rng.normal(size=(n, c)) * 5
    y = rng.integers(0, c, n)
    s = CheckSettings(dtype=dtype, eps=float(10 ** rng.uniform(-6, -1)))
    base = check_gradient(x, y, s)
    digest(base)
    rows = np.unique(rng.integers(0, n, 2))
    x2 = x.copy()
    x2[rows, rng.integers(0, c)] = rng.normal() * 50
    updated = update_rows(base, x2, y, rows, s)
    full = check_gradient(x2, y, s)
    assert "_row_digest" in updated.__dict__  # carried over row by row, not formed again
    assert digest(updated).totals() == digest(full).totals()


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), depth=st.integers(1, 60), kept=st.booleans(),
       block=st.sampled_from([1, 7, 4096]))
def test_a_patched_ranking_equals_the_full_checks(seed: int, depth: int, kept: bool, block: int) -> None:
    """The worker ranks the edited grid from the base's rows and the new ones (re-ranking only the edited rows'
    blocks when the base kept its candidates); the result is the full check's ranking."""
    rng = np.random.default_rng(seed)
    n, c = int(rng.integers(2, 40)), int(rng.integers(2, 300))
    x = rng.normal(size=(n, c)) * 5
    y = rng.integers(0, c, n)
    s = CheckSettings(dtype=str(rng.choice(["float32", "float64"])), eps=float(10 ** rng.uniform(-7, -2)))
    base = check_gradient(x, y, s)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(errors, "_RANK_CHUNK", block * c)  # blocks of `block` rows
        if kept:
            base.keep_ranking(depth=depth + int(rng.integers(0, 5)))
            assert base.__dict__[CANDIDATES_KEY].rows_per_block == block
        rows = np.unique(rng.integers(0, n, 3))
        x2 = x.copy()
        x2[rows, rng.integers(0, c)] = rng.normal() * 40
        patch = compute_rows(base, x2[rows], y, rows, s).ranked(depth)
    updated = patch.apply()
    assert RANKING_KEY in updated.__dict__
    k = int(rng.integers(0, depth + 1))
    assert updated.worst_cells(k).tolist() == check_gradient(x2, y, s).worst_cells(k).tolist()
