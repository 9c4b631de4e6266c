"""Overviews of maps with more cells than screen pixels: every pixel shows the extreme of the cells it covers.

Subsampling a 32 x 262,144 map to 800 pixels shows one cell in 328 and hides a single bad
one. A :class:`Pyramid` keeps the map's extremes at coarser and coarser levels (each level
halves the columns, the rows, or both, so its blocks stay about square), and
:meth:`Pyramid.view` cuts any window of the map into at most ``out_shape`` pixels whose
values are exactly the extreme of the cells they cover, together with the cell range of
every pixel (so hover and click address real cells).

Two kinds of extreme:

* ``"abs_max"``: the largest magnitude ``max |x|`` (for errors, which are >= 0);
* ``"signed_extreme"``: the value of largest magnitude with its sign (for gradients);
  between ``+a`` and ``-a`` the positive one is kept.

A NaN is the most extreme value of both kinds: one NaN cell makes its pixel NaN at every
level. Pure NumPy, vectorised (no Python loop per cell or per pixel).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, DTypeLike, NDArray

__all__ = ["OVERVIEW_KINDS", "VIEW_CELL_BUDGET", "MapLike", "OverviewImage", "Pyramid", "RegionMap", "extreme_of"]

#: The kinds of extreme a :class:`Pyramid` keeps.
OVERVIEW_KINDS: tuple[str, ...] = ("abs_max", "signed_extreme")

#: Rows of the base handled at once when the first level is built (keeps temporaries small).
_CHUNK_ELEMENTS = 1 << 18


def _signed(hi: NDArray, lo: NDArray) -> NDArray:
    """The larger-magnitude one of the maximum ``hi`` and minimum ``lo`` (``+x`` over ``-x``; NaN stays NaN)."""
    return np.where(-lo > hi, lo, hi)


def _pairs(a: NDArray, axis: int, ufunc: np.ufunc) -> NDArray:
    """Combine neighbours ``2k`` and ``2k + 1`` along ``axis``; an odd last element stays as it is."""
    n = a.shape[axis]
    if n < 2:
        return a
    m = n // 2
    take = [slice(None)] * a.ndim
    take[axis] = slice(0, 2 * m, 2)
    lo = a[tuple(take)]
    take[axis] = slice(1, 2 * m, 2)
    out = ufunc(lo, a[tuple(take)])
    if n % 2:
        take[axis] = slice(n - 1, n)
        out = np.concatenate([out, a[tuple(take)]], axis=axis)
    return out


def _step(a: NDArray, factors: tuple[int, int], ufunc: np.ufunc) -> NDArray:
    """One level up: combine pairs of rows and/or columns with ``np.maximum`` or ``np.minimum`` (NaN-propagating)."""
    if factors[1] == 2:
        a = _pairs(a, 1, ufunc)
    if factors[0] == 2:
        a = _pairs(a, 0, ufunc)
    return a


def _first_level(
    base: MapLike, steps: list[tuple[int, int]], ufunc: np.ufunc, absolute: bool, rows: slice | None = None
) -> NDArray:
    """The first stored level (``steps`` applied to the base), or its rows ``rows``, in row chunks of bounded size.

    The first few halvings are done chunk by chunk and not stored: their blocks are small
    enough that a view reads the map itself instead.
    """
    n, c = base.shape
    fr = math.prod(f[0] for f in steps)
    lo, hi = (0, (n + fr - 1) // fr) if rows is None else (rows.start, rows.stop)
    chunk = max(1, (_CHUNK_ELEMENTS // max(c, 1)) // fr)  # level rows per chunk
    parts = []
    for r in range(lo, hi, chunk):
        r_end = min(hi, r + chunk)
        block = base[r * fr : min(n, r_end * fr)]
        block = np.abs(block) if absolute else block
        for f in steps:
            block = _step(block, f, ufunc)
        parts.append(block)
    return parts[0] if len(parts) == 1 else np.concatenate(parts, axis=0)


#: Halvings done together, unstored, before the first stored level (its blocks hold up to 64 cells, so the
#: levels above a map hold about 1/32 of its cells per chain; views finer than that read the map itself).
_FIRST_STEPS = 6
#: Most level cells one :meth:`Pyramid.view` reads (or the pixels asked, if more): about 30 ms for an error map
#: formed on demand, so a view of a whole 2^25-cell map never reads all of it on the GUI thread.
VIEW_CELL_BUDGET = 1 << 19


def _groups(shape: tuple[int, int]) -> list[list[tuple[int, int]]]:
    """The halvings of :func:`_plan` grouped per stored level: the first few together, then one by one."""
    plan = _plan(shape)
    if not plan:
        return []
    return [plan[:_FIRST_STEPS]] + [[f] for f in plan[_FIRST_STEPS:]]


def _plan(shape: tuple[int, int]) -> list[tuple[int, int]]:
    """Reduction factors level by level: halve the longer side, or both when they are within 2x of each other."""
    n, c = shape
    steps: list[tuple[int, int]] = []
    while n > 1 or c > 1:
        if c >= 2 * n:
            f = (1, 2)
        elif n >= 2 * c:
            f = (2, 1)
        else:
            f = (2 if n > 1 else 1, 2 if c > 1 else 1)
        steps.append(f)
        n, c = (n + f[0] - 1) // f[0], (c + f[1] - 1) // f[1]
    return steps


class RegionMap:
    """A map whose cells are formed when asked, region by region: ``fn(rows, cols) -> ndarray``.

    Error maps of a large grid are derived element by element from its two gradients, so any
    region can be formed exactly on demand; a :class:`Pyramid` built on a ``RegionMap`` reads it
    in row blocks and never holds the whole map. Indexing takes ``[rows]`` or ``[rows, cols]``
    (slices or integers) and returns a new array.

    Examples
    --------
    >>> m = RegionMap((2, 3), lambda r, c: np.arange(6.0).reshape(2, 3)[r, c])
    >>> m[1, 0:2].tolist(), m.shape
    ([3.0, 4.0], (2, 3))
    """

    ndim = 2

    def __init__(self, shape: tuple[int, int], fn: Callable[[slice, slice], NDArray], dtype: DTypeLike = np.float64):
        self.shape = (int(shape[0]), int(shape[1]))
        self.dtype = np.dtype(dtype)
        self._fn = fn

    @property
    def size(self) -> int:
        return self.shape[0] * self.shape[1]

    def __getitem__(self, key: object) -> NDArray:
        keys = key if isinstance(key, tuple) else (key, slice(None))
        if len(keys) != 2:
            raise IndexError(f"a map takes [rows] or [rows, cols], got {key!r}")
        parts, squeeze = [], []
        for k, size in zip(keys, self.shape, strict=True):
            if isinstance(k, int | np.integer):
                i = int(k) + size if k < 0 else int(k)
                if not 0 <= i < size:
                    raise IndexError(f"index {k} is outside the map's {size}")
                parts.append(slice(i, i + 1))
                squeeze.append(True)
            elif isinstance(k, slice):
                parts.append(slice(*k.indices(size)))
                squeeze.append(False)
            else:
                raise IndexError(f"a map takes slices or integers, got {k!r}")
        out = np.asarray(self._fn(parts[0], parts[1]))
        axes = tuple(a for a, sq in enumerate(squeeze) if sq)
        return out.squeeze(axis=axes) if axes else out

    def __array__(self, dtype: DTypeLike | None = None, copy: bool | None = None) -> NDArray:
        whole = self[:, :]
        return whole if dtype is None else whole.astype(dtype)


MapLike = NDArray | RegionMap


def extreme_of(values: ArrayLike, kind: str) -> float:
    """The extreme of ``values`` as a pixel shows it (NaN when any value is NaN).

    Examples
    --------
    >>> extreme_of([0.5, -2.0, 1.0], "signed_extreme"), extreme_of([0.5, -2.0, 1.0], "abs_max")
    (-2.0, 2.0)
    """
    a = np.asarray(values, dtype=np.float64).ravel()
    if a.size == 0:
        raise ValueError("the extreme of no values is undefined")
    if kind == "abs_max":
        return float(np.max(np.abs(a)))
    hi, lo = float(np.max(a)), float(np.min(a))
    return lo if -lo > hi else hi


@dataclass(frozen=True)
class OverviewImage:
    """A window of a map reduced to at most ``out_shape`` pixels.

    Attributes
    ----------
    image : ndarray (h, w)
        Pixel ``(p, q)`` is the extreme of the cells ``rows(p) x cols(q)`` (exactly; NaN when any is NaN).
        ``|x|`` for ``"abs_max"``, signed values for ``"signed_extreme"``; dtype of the map.
    row_edges : ndarray (h + 1,) of int
        Pixel row ``p`` covers map rows ``row_edges[p]:row_edges[p + 1]``.
    col_edges : ndarray (w + 1,) of int
        Pixel column ``q`` covers map columns ``col_edges[q]:col_edges[q + 1]``.
    level : int
        The pyramid level the pixels were cut from (0: the map itself).
    kind : str

    Notes
    -----
    Pixel edges fall on the level's block boundaries, so the covered range can begin a
    little before the requested window and end a little after it (never beyond the map):
    place the image by its edges, not by the request.
    """

    image: NDArray
    row_edges: NDArray
    col_edges: NDArray
    level: int
    kind: str

    @property
    def shape(self) -> tuple[int, int]:
        return int(self.image.shape[0]), int(self.image.shape[1])

    def cells(self, p: int, q: int) -> tuple[slice, slice]:
        """The map rows and columns pixel ``(p, q)`` covers."""
        return slice(int(self.row_edges[p]), int(self.row_edges[p + 1])), slice(
            int(self.col_edges[q]), int(self.col_edges[q + 1])
        )

    def pixel_of(self, i: int, j: int) -> tuple[int, int] | None:
        """The pixel covering map cell ``(i, j)``, or None when the image does not cover it."""
        p = int(np.searchsorted(self.row_edges, i, side="right")) - 1
        q = int(np.searchsorted(self.col_edges, j, side="right")) - 1
        if 0 <= p < self.image.shape[0] and 0 <= q < self.image.shape[1]:
            return p, q
        return None


class Pyramid:
    """Extremes of a 2-D map at every scale, for drawing it at any size without hiding a cell.

    Build it with :meth:`build` (off the GUI thread for large maps), cut views with
    :meth:`view`, find the cell behind a pixel with :meth:`extreme_cell`, and follow an
    edit of some rows with :meth:`updated` (O(rows x C) instead of O(N x C)).

    Attributes
    ----------
    kind : {"abs_max", "signed_extreme"}
    base : ndarray (N, C)
        The map itself (level 0, not copied).
    factors : list of (int, int)
        Cells per block of each level along rows and columns (powers of two).

    Notes
    -----
    Each level halves the longer side (or both sides when they are within a factor 2), so
    a 32 x 262,144 map first loses columns only. The pyramid keeps block maxima (of
    ``|x|`` for abs_max) and, for signed_extreme, block minima too: both are plain
    ``np.maximum`` / ``np.minimum`` passes, and the signed extreme of a pixel is picked
    from its maximum and minimum only when a view is cut. The levels above the map hold
    about as many values as the map for a wide map (a third for a square one), per chain.
    """

    def __init__(self, kind: str, base: MapLike, highs: list[Any], lows: list[Any] | None,
                 factors: list[tuple[int, int]]):  # fmt: skip
        self.kind = kind
        self.base = base
        self._highs = highs
        self._lows = lows
        self.factors = factors
        self._groups = _groups(base.shape)

    @property
    def shape(self) -> tuple[int, int]:
        return int(self.base.shape[0]), int(self.base.shape[1])

    @property
    def depth(self) -> int:
        """Number of levels, the map itself included."""
        return len(self.factors)

    @property
    def nbytes(self) -> int:
        """Bytes of the levels above the map (the map itself is not counted)."""
        chains = [self._highs] + ([self._lows] if self._lows is not None else [])
        return sum(int(a.nbytes) for chain in chains for a in chain[1:] if isinstance(a, np.ndarray))

    def level(self, k: int) -> NDArray:
        """The extremes of the blocks of level ``k`` (``|x|`` maxima for abs_max, signed values otherwise)."""
        hi = self._highs[k]
        if self._lows is None:
            return np.abs(hi) if k == 0 else hi
        return _signed(hi, self._lows[k])

    # ------------------------------------------------------------------ building
    @classmethod
    def build(
        cls, array: ArrayLike | RegionMap, kind: str = "abs_max", progress: Callable[[float], None] | None = None
    ) -> Pyramid:
        r"""The pyramid of a 2-D map.

        Parameters
        ----------
        array : array_like, shape (N, C)
            The map (a float array: an error map or a gradient); kept as level 0 without a copy.
        kind : {"abs_max", "signed_extreme"}
        progress : callable, optional
            Called with the fraction done after each level; it may raise to abandon the build.

        Returns
        -------
        Pyramid

        Notes
        -----
        Level :math:`l + 1` combines pairs of level :math:`l` along the halved axes with
        ``np.maximum`` (of :math:`|x|` for abs_max) and, for signed_extreme, ``np.minimum``;
        both propagate NaN, so a NaN reaches every level. A pixel's signed extreme is its
        minimum where :math:`-\min > \max`, else its maximum. Cost O(N C).

        Examples
        --------
        >>> p = Pyramid.build(np.array([[1.0, -5.0, 2.0, 0.0]]), "signed_extreme")
        >>> [p.level(k).tolist() for k in range(p.depth)]
        [[[1.0, -5.0, 2.0, 0.0]], [[-5.0]]]
        """
        if kind not in OVERVIEW_KINDS:
            raise ValueError(f"unknown overview kind {kind!r}; expected one of {', '.join(OVERVIEW_KINDS)}")
        base = array if isinstance(array, RegionMap) else np.asarray(array)
        if base.ndim != 2 or base.size == 0:
            raise ValueError(f"an overview needs a non-empty 2-D map, got shape {base.shape}")
        groups = _groups(base.shape)
        absolute = kind == "abs_max"
        highs: list[Any] = [base]
        lows: list[Any] | None = None if absolute else [base]
        factors = [(1, 1)]
        for k, group in enumerate(groups):
            if k == 0:
                highs.append(_first_level(base, group, np.maximum, absolute))
                if lows is not None:
                    lows.append(_first_level(base, group, np.minimum, False))
            else:
                highs.append(_step(highs[-1], group[0], np.maximum))
                if lows is not None:
                    lows.append(_step(lows[-1], group[0], np.minimum))
            fr, fc = math.prod(f[0] for f in group), math.prod(f[1] for f in group)
            factors.append((factors[-1][0] * fr, factors[-1][1] * fc))
            if progress is not None:
                progress((k + 1) / len(groups))
        return cls(kind, base, highs, lows, factors)

    def updated(self, array: ArrayLike | RegionMap, rows: slice, inplace: bool = False) -> Pyramid:
        """A new pyramid for ``array``, equal to the old map outside ``rows``: O(rows x C) work.

        Only the blocks that hold a row of ``rows`` are recomputed, so the result equals
        :meth:`build` of ``array``. The levels are copied first (this pyramid does not
        change), or with ``inplace=True`` written in place (O(rows x C) in all; this
        pyramid then shares the new levels and must not be used for the old map).
        """
        base = array if isinstance(array, RegionMap) else np.asarray(array)
        if base.shape != self.base.shape:
            raise ValueError(f"the map changed shape ({self.base.shape} -> {base.shape}): build a new pyramid")
        n = base.shape[0]
        r0 = max(0, rows.start or 0)
        r1 = min(n, n if rows.stop is None else rows.stop)
        absolute = self.kind == "abs_max"
        chains: list[tuple[list[Any], np.ufunc, bool]] = [(self._highs, np.maximum, absolute)]
        if self._lows is not None:
            chains.append((self._lows, np.minimum, False))
        out: list[list[Any]] = []
        for old, ufunc, use_abs in chains:
            levels = [base]
            for k, group in enumerate(self._groups):
                level = old[k + 1] if inplace else old[k + 1].copy()
                total = self.factors[k + 1][0]
                lo = r0 // total
                hi = (r1 - 1) // total + 1 if r1 > r0 else lo
                if hi > lo:
                    if k == 0:
                        level[lo:hi] = _first_level(base, group, ufunc, use_abs, slice(lo, hi))
                    else:
                        f, below = group[0], levels[-1]
                        level[lo:hi] = _step(below[lo * f[0] : min(below.shape[0], hi * f[0])], f, ufunc)
                levels.append(level)
            out.append(levels)
        return Pyramid(self.kind, base, out[0], out[1] if len(out) > 1 else None, list(self.factors))

    # ------------------------------------------------------------------ viewing
    def _level_for(self, per_row: int, per_col: int) -> int:
        """The coarsest level whose blocks are no larger than the cells one pixel must cover."""
        best = 0
        for k, (fr, fc) in enumerate(self.factors):
            if fr <= per_row and fc <= per_col:
                best = k
        return best

    def view(
        self,
        row_range: tuple[int, int] | None = None,
        col_range: tuple[int, int] | None = None,
        out_shape: tuple[int, int] = (512, 512),
    ) -> OverviewImage:
        """The map's window ``row_range x col_range`` as at most ``out_shape`` pixels of extremes.

        Parameters
        ----------
        row_range, col_range : (start, stop), optional
            Half-open ranges of map rows and columns (default: all); clipped to the map.
        out_shape : (int, int)
            Most pixels along rows and columns (>= 1 each).

        Returns
        -------
        OverviewImage
            Every pixel is exactly the extreme of the cells it covers (see its edges).
            When the window fits, the pixels are the cells themselves (level 0).

        Examples
        --------
        >>> x = np.zeros((4, 1000)); x[2, 777] = -9.0
        >>> v = Pyramid.build(x, "signed_extreme").view(out_shape=(4, 10))
        >>> v.image.shape, float(v.image.min()), v.cells(*np.unravel_index(v.image.argmin(), v.image.shape))
        ((4, 8), -9.0, (slice(2, 3, None), slice(768, 896, None)))
        """
        n, c = self.shape
        h_max, w_max = int(out_shape[0]), int(out_shape[1])
        if h_max < 1 or w_max < 1:
            raise ValueError(f"out_shape must be at least (1, 1), got {tuple(out_shape)}")
        r0, r1 = _clip(row_range, n, "row")
        c0, c1 = _clip(col_range, c, "column")
        level = self._level_for(math.ceil((r1 - r0) / h_max), math.ceil((c1 - c0) / w_max))
        # A window that needs finer blocks than the first stored level along one side (a tall 8192 x 4096 map
        # seen whole: 55 rows but only 9 columns a pixel) would read every cell of the window from the map:
        # past a budget the next coarser level is read instead (fewer pixels than asked along that side, each
        # still the exact extreme of the cells it covers; zooming in brings the window under the budget).
        budget = max(VIEW_CELL_BUDGET, h_max * w_max)
        while level + 1 < len(self.factors) and _cells_read(r0, r1, c0, c1, self.factors[level]) > budget:
            level += 1
        fr, fc = self.factors[level]
        row_edges, row_cut, row_every = _edges(r0, r1, n, fr, h_max)
        col_edges, col_cut, col_every = _edges(c0, c1, c, fc, w_max)
        hi = self._highs[level][row_cut, col_cut]
        if self._lows is None:
            if level == 0:
                hi = np.abs(hi)
            image = _reduce(hi, row_every, col_every, np.maximum)
        else:
            lo = self._lows[level][row_cut, col_cut]
            top = _reduce(hi, row_every, col_every, np.maximum)
            image = _signed(top, _reduce(lo, row_every, col_every, np.minimum))
        return OverviewImage(np.ascontiguousarray(image), row_edges, col_edges, level, self.kind)

    def extreme_cell(self, view: OverviewImage, p: int, q: int) -> tuple[int, int]:
        """The map cell whose value pixel ``(p, q)`` of ``view`` shows (the first such in C order).

        Reads only the cells the pixel covers.
        """
        rows, cols = view.cells(p, q)
        block = self.base[rows, cols].astype(np.float64)
        if self.kind == "abs_max":
            flat = int(np.argmax(np.abs(block)))  # the first NaN, else the first largest
        else:
            target = extreme_of(block, self.kind)
            hit = np.isnan(block) if math.isnan(target) else block == target
            flat = int(np.flatnonzero(hit)[0])
        i, j = np.unravel_index(flat, block.shape)
        return rows.start + int(i), cols.start + int(j)


def _cells_read(r0: int, r1: int, c0: int, c1: int, factors: tuple[int, int]) -> int:
    """Level cells a view of ``[r0, r1) x [c0, c1)`` reads at a level of block ``factors``."""
    fr, fc = factors
    return (r1 // fr - r0 // fr + 1) * (c1 // fc - c0 // fc + 1)


def _reduce(block: NDArray, every_row: int, every_col: int, ufunc: np.ufunc) -> NDArray:
    """Combine groups of ``every_row x every_col`` level cells with ``ufunc`` (the last groups may be shorter)."""
    for axis, every in ((1, every_col), (0, every_row)):
        if every > 1:
            block = ufunc.reduceat(block, np.arange(0, block.shape[axis], every), axis=axis)
    return block


def _clip(span: tuple[int, int] | None, size: int, what: str) -> tuple[int, int]:
    if span is None:
        return 0, size
    lo, hi = max(0, int(span[0])), min(size, int(span[1]))
    if hi <= lo:
        raise ValueError(f"the {what} range {tuple(span)} holds no cell of the map's {size}")
    return lo, hi


def _edges(lo: int, hi: int, size: int, factor: int, most: int) -> tuple[NDArray, slice, int]:
    """Pixel edges on block boundaries of ``factor`` cells, at most ``most`` pixels covering ``lo:hi``.

    Returns the edges in map cells, the slice of level cells they cover, and level cells per pixel.
    """
    start = (lo // factor) * factor
    per_pixel = math.ceil(math.ceil((hi - start) / most) / factor) * factor  # cells, a multiple of the block
    count = math.ceil((hi - start) / per_pixel)
    edges = np.minimum(start + per_pixel * np.arange(count + 1), size)
    stop = int(edges[-1])
    return edges.astype(np.intp), slice(start // factor, math.ceil(stop / factor)), per_pixel // factor
