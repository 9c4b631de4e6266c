"""Issue 15: overviews where every pixel is the extreme of the cells it covers (explorer.core.overview)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from explorer.core.overview import OverviewImage, Pyramid, extreme_of


def _assert_pixels_are_extremes(x: np.ndarray, view: OverviewImage, kind: str) -> None:
    for p in range(view.image.shape[0]):
        for q in range(view.image.shape[1]):
            rows, cols = view.cells(p, q)
            assert rows.stop > rows.start and cols.stop > cols.start
            want, got = extreme_of(x[rows, cols], kind), float(view.image[p, q])
            assert (np.isnan(want) and np.isnan(got)) or want == got, (p, q, want, got)


@settings(max_examples=150, deadline=None)
@given(
    n=st.integers(1, 40),
    c=st.integers(1, 300),
    dtype=st.sampled_from([np.float16, np.float32, np.float64]),
    kind=st.sampled_from(["abs_max", "signed_extreme"]),
    seed=st.integers(0, 2**32 - 1),
    nan=st.booleans(),
)
def test_every_pixel_of_every_view_is_the_extreme_of_the_cells_it_covers(n, c, dtype, kind, seed, nan) -> None:  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, c)).astype(dtype)
    x[rng.random((n, c)) < 0.1] *= -1  # ties of opposite sign happen with float16
    if nan:
        x[rng.integers(n), rng.integers(c)] = np.nan
    pyramid = Pyramid.build(x, kind)
    for _ in range(4):
        r0 = int(rng.integers(0, n))
        r1 = int(rng.integers(r0 + 1, n + 1))
        c0 = int(rng.integers(0, c))
        c1 = int(rng.integers(c0 + 1, c + 1))
        h, w = int(rng.integers(1, 20)), int(rng.integers(1, 50))
        view = pyramid.view((r0, r1), (c0, c1), (h, w))
        assert view.image.shape[0] <= h and view.image.shape[1] <= w
        assert view.row_edges[0] <= r0 and view.row_edges[-1] >= r1 and view.row_edges[-1] <= n
        assert view.col_edges[0] <= c0 and view.col_edges[-1] >= c1 and view.col_edges[-1] <= c
        assert np.all(np.diff(view.row_edges) > 0) and np.all(np.diff(view.col_edges) > 0)
        _assert_pixels_are_extremes(x, view, kind)
        p, q = int(rng.integers(view.image.shape[0])), int(rng.integers(view.image.shape[1]))
        i, j = pyramid.extreme_cell(view, p, q)
        shown = float(view.image[p, q])
        value = float(abs(x[i, j]) if kind == "abs_max" else x[i, j])
        assert (np.isnan(shown) and np.isnan(value)) or shown == value
        assert view.pixel_of(i, j) == (p, q)


@pytest.mark.parametrize("kind", ["abs_max", "signed_extreme"])
@pytest.mark.parametrize("bad", [np.nan, -7.0, 7.0])
def test_one_bad_cell_in_a_wide_map_shows_at_every_level_and_every_zoom(kind: str, bad: float) -> None:
    rng = np.random.default_rng(1)
    n, c = 32, 262_144
    x = (rng.random((n, c), dtype=np.float32) - 0.5).astype(np.float32)  # |x| < 0.5 everywhere else
    i, j = 17, 200_003
    x[i, j] = bad
    pyramid = Pyramid.build(x, kind)
    want = bad if kind == "signed_extreme" else abs(bad)
    # Every stored level holds it in the block that covers the cell.
    for k in range(pyramid.depth):
        fr, fc = pyramid.factors[k]
        got = float(pyramid.level(k)[i // fr, j // fc])
        assert (np.isnan(got) and np.isnan(want)) or got == want, (k, got)
    # Every zoom, from the whole map on 300 x 800 pixels down to the cell's own neighbourhood.
    for span in [c, c // 4, 20_000, 3000, 800, 100, 9]:
        c0 = max(0, min(c - span, j - span // 3))
        for out in [(300, 800), (8, 64), (1, 1)]:
            view = pyramid.view((0, n), (c0, c0 + span), out)
            pixel = view.pixel_of(i, j)
            assert pixel is not None
            got = float(view.image[pixel])
            assert (np.isnan(got) and np.isnan(want)) or got == want, (span, out, view.level)
            assert pyramid.extreme_cell(view, *pixel) == (i, j)
            if not np.isnan(want):
                assert np.nanmax(np.abs(view.image.astype(np.float64))) == abs(want)


@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(1, 50),
    c=st.integers(1, 200),
    kind=st.sampled_from(["abs_max", "signed_extreme"]),
    seed=st.integers(0, 2**32 - 1),
)
def test_an_update_of_some_rows_equals_a_fresh_build(n, c, kind, seed) -> None:  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, c))
    old = Pyramid.build(x, kind)
    before = [old.level(k).copy() for k in range(old.depth)]
    r0 = int(rng.integers(0, n))
    r1 = int(rng.integers(r0 + 1, n + 1))
    y = x.copy()
    y[r0:r1] = rng.normal(size=(r1 - r0, c)) * 3
    if rng.random() < 0.3:
        y[r0, int(rng.integers(c))] = np.nan
    new, fresh = old.updated(y, slice(r0, r1)), Pyramid.build(y, kind)
    assert new.depth == fresh.depth
    for k in range(fresh.depth):
        np.testing.assert_array_equal(new.level(k), fresh.level(k))
        np.testing.assert_array_equal(old.level(k), before[k])  # the old pyramid did not change


def test_bad_arguments_say_what_is_wrong() -> None:
    with pytest.raises(ValueError, match="unknown overview kind"):
        Pyramid.build(np.zeros((2, 2)), "mean")
    with pytest.raises(ValueError, match="non-empty 2-D"):
        Pyramid.build(np.zeros(3))
    p = Pyramid.build(np.zeros((2, 5)))
    with pytest.raises(ValueError, match="holds no cell"):
        p.view((3, 9))
    with pytest.raises(ValueError, match="at least"):
        p.view(out_shape=(0, 4))


@pytest.mark.parametrize("kind", ["abs_max", "signed_extreme"])
def test_a_view_reads_at_most_its_budget_of_a_tall_map_and_still_shows_the_bad_cell(
    monkeypatch: pytest.MonkeyPatch, kind: str
) -> None:
    """A whole 8192 x 4096 error map seen at 150 x 500 pixels needs 9 columns a pixel, finer than the first stored
    level (32 columns): the view read all 33.5M cells from the map, 2.2 s on the GUI thread. Scaled down here with a
    small budget: the view reads a coarser level, every pixel is still the extreme of the cells it covers, and the
    bad cell shows; zoomed in far enough, the view is exact (one pixel a cell)."""
    from explorer.core import overview

    monkeypatch.setattr(overview, "VIEW_CELL_BUDGET", 2000)
    rng = np.random.default_rng(5)
    x = rng.normal(size=(512, 256))
    x[301, 77] = -50.0
    read = {"cells": 0}

    def region(rows: slice, cols: slice) -> np.ndarray:
        block = x[rows, cols]
        read["cells"] += block.size
        return block.copy()

    pyramid = Pyramid.build(overview.RegionMap(x.shape, region), kind)
    read["cells"] = 0
    view = pyramid.view(None, None, (16, 64))  # 32 rows but only 4 columns a pixel: finer than stored levels
    assert read["cells"] <= 2000 and view.level > 0
    assert view.image.shape[0] <= 16 and view.image.shape[1] <= 64
    _assert_pixels_are_extremes(x, view, kind)
    p, q = view.pixel_of(301, 77)
    assert float(view.image[p, q]) == (50.0 if kind == "abs_max" else -50.0)
    assert pyramid.extreme_cell(view, p, q) == (301, 77)
    close = pyramid.view((296, 312), (70, 86), (16, 16))  # 256 cells in the window: exact
    assert close.level == 0 and close.image.shape == (16, 16)
    _assert_pixels_are_extremes(x, close, kind)
