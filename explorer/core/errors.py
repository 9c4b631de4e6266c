"""Error measures between a numeric and an analytic gradient, and a gradcheck-style verdict."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
from numpy.typing import ArrayLike, DTypeLike, NDArray

__all__ = [
    "DEFAULT_TOLERANCES",
    "TOLERANCE_MODES",
    "Comparison",
    "compare",
    "compare_noise",
    "default_tolerances",
    "tolerance_from_expected",
    "worst_cells",
]

#: How the verdict decides: "noise" (within a stated multiple of the expected error of the numeric
#: estimate, element by element) or "fixed" (``atol + rtol |ana|``, as ``torch.autograd.gradcheck``).
TOLERANCE_MODES: tuple[str, ...] = ("noise", "fixed")

#: (atol, rtol) per dtype for the verdict, set a little above the best error the
#: central scheme reaches at its default step in that dtype (see ``benchmarks``).
DEFAULT_TOLERANCES: dict[str, tuple[float, float]] = {
    "float64": (1e-7, 1e-5),
    "float32": (1e-3, 1e-2),
    "float16": (5e-2, 5e-2),
    "bfloat16": (2e-1, 1e-1),
}


def default_tolerances(dtype: DTypeLike) -> tuple[float, float]:
    """Default ``(atol, rtol)`` for a dtype.

    Examples
    --------
    >>> default_tolerances("float64")
    (1e-07, 1e-05)
    """
    return DEFAULT_TOLERANCES.get(np.dtype(dtype).name, DEFAULT_TOLERANCES["float64"])


#: Elements per chunk when the error maps are formed: the temporaries stay small and in cache.
_CHUNK = 1 << 16
#: Every row or column.
_ALL = slice(None)


@dataclass(frozen=True)
class Comparison:
    """Element-wise comparison of ``grad_numeric`` with ``grad_analytic``.

    The error maps (:attr:`abs_err`, :attr:`rel_err`) and the noise verdict's tolerance map
    (:attr:`tolerance`) are derived from the gradients (and the expected error) on first use,
    element by element with the operations of :func:`compare`, and kept: a check holds the two
    gradients, the expected error and the verdict, and forms the float64 maps only when asked.

    Attributes
    ----------
    grad_numeric, grad_analytic : ndarray (N, C)
        The gradients compared (held, not copied).
    passed : ndarray (N, C), bool
        ``|num - ana| <= atol + rtol * |ana|`` (False where either is NaN), or within the
        per-element tolerance of the "noise" verdict.
    atol, rtol : float
        The tolerances of the fixed verdict.
    worst : tuple of int
        Index of the element with the largest ``abs_err = |num - ana|``, the one whose
        error is ``max_abs_err``. A NaN error (a NaN gradient, e.g. a row that overflowed
        float16) counts as larger than any number: the first NaN in C order is the worst.
        ``()`` for an empty grid. :meth:`ranked` lists the top k, failing cells first.
    max_abs_err, max_rel_err : float
        Largest errors; ``inf`` when any is NaN.
    ok : bool
        Every element passed.
    n_failed : int
    mode : str
        Which tolerance decided: "fixed" (``atol + rtol |ana|``) or "noise" (:attr:`tolerance`).
    expected : ndarray (N, C), float32 or float64, or None
        The expected error :math:`E` of the check's "noise" verdict, whose tolerance is
        ``noise_multiple * E + noise_floor``; None otherwise.
    noise_multiple, noise_floor : float
        That tolerance's multiple and floor (NaN when there is no ``expected``).
    given_tolerance : ndarray or None
        A per-element tolerance given to :func:`compare` (its "noise" verdict), as given.
    """

    grad_numeric: NDArray = field(repr=False)
    grad_analytic: NDArray = field(repr=False)
    passed: NDArray = field(repr=False)
    atol: float
    rtol: float
    worst: tuple[int, ...]
    max_abs_err: float
    max_rel_err: float
    ok: bool
    n_failed: int
    mode: str = "fixed"
    expected: NDArray | None = field(default=None, repr=False)
    noise_multiple: float = math.nan
    noise_floor: float = math.nan
    given_tolerance: NDArray | None = field(default=None, repr=False)

    @cached_property
    def abs_err(self) -> NDArray:
        """``|num - ana|`` (float64, (N, C)), formed on first use."""
        out = np.empty(self.grad_numeric.shape)
        flat = out.reshape(-1)
        for sl, num, ana in _chunks(self.grad_numeric, self.grad_analytic):
            flat[sl] = _abs_err(num, ana)
        return out

    @cached_property
    def rel_err(self) -> NDArray:
        """``|num - ana| / max(|num|, |ana|)`` (float64, (N, C)), 0 where both are 0 (so it lies in [0, 2])."""
        out = np.empty(self.grad_numeric.shape)
        flat = out.reshape(-1)
        known = self.__dict__.get("abs_err")
        known_flat = None if known is None else known.reshape(-1)
        for sl, num, ana in _chunks(self.grad_numeric, self.grad_analytic):
            err = _abs_err(num, ana) if known_flat is None else known_flat[sl]
            flat[sl] = _rel_err(err, num, ana)
        return out

    @cached_property
    def tolerance(self) -> NDArray | None:
        """The per-element tolerance of the "noise" verdict (float64, (N, C)); None for "fixed".

        ``noise_multiple * expected + noise_floor`` (NaN where not finite: the element fails),
        formed on first use, or the tolerance given to :func:`compare`.
        """
        if self.given_tolerance is not None:
            return np.broadcast_to(np.asarray(self.given_tolerance, dtype=np.float64), self.grad_numeric.shape)
        if self.expected is None:
            return None
        out = np.empty(self.expected.shape)
        flat, e = out.reshape(-1), self.expected.reshape(-1)
        for start in range(0, e.size, _CHUNK):
            sl = slice(start, min(e.size, start + _CHUNK))
            flat[sl] = tolerance_from_expected(e[sl], self.noise_multiple, self.noise_floor)
        return out

    def tolerance_map(self, grad_analytic: ArrayLike | None = None) -> NDArray:
        """The per-element tolerance the verdict used: the noise map, or ``atol + rtol |ana|`` (float64).

        Examples
        --------
        >>> c = compare(np.array([1.0]), np.array([2.0]), atol=0.5, rtol=0.25)
        >>> c.tolerance_map(np.array([2.0])).tolist()
        [1.0]
        """
        if self.tolerance is not None:
            return self.tolerance
        ana = self.grad_analytic if grad_analytic is None else grad_analytic
        return self.atol + self.rtol * np.abs(np.asarray(ana, dtype=np.float64))

    def region(self, name: str, rows: slice = _ALL, cols: slice = _ALL,
               grad_analytic: ArrayLike | None = None) -> NDArray:  # fmt: skip
        """Cells ``rows x cols`` of a map (``"abs_err"``, ``"rel_err"`` or ``"tolerance"``, float64) without
        forming the whole map: element-wise, so the values are exactly the whole map's there (its slice when
        it was formed already). ``grad_analytic`` is the fixed tolerance's ``|ana|`` (default: the compared one).

        Examples
        --------
        >>> c = compare(np.array([[1.0, 2.0], [3.0, 5.0]]), np.array([[1.0, 2.5], [3.0, 4.0]]))
        >>> c.region("abs_err", slice(1, 2), slice(0, 2)).tolist() == c.abs_err[1:2].tolist()
        True
        """
        if name not in ("abs_err", "rel_err", "tolerance"):
            raise ValueError(f"unknown map {name!r}; expected abs_err, rel_err or tolerance")
        known = self.__dict__.get(name)
        if known is not None:
            return known[rows, cols]
        if name == "tolerance":
            if self.given_tolerance is None and self.expected is None:
                ana = self.grad_analytic if grad_analytic is None else np.asarray(grad_analytic)
                return self.atol + self.rtol * np.abs(np.asarray(ana[rows, cols], dtype=np.float64))
            if self.given_tolerance is not None:
                given = np.asarray(self.given_tolerance, dtype=np.float64)
                return np.broadcast_to(given, self.grad_numeric.shape)[rows, cols]
            assert self.expected is not None
            return tolerance_from_expected(self.expected[rows, cols], self.noise_multiple, self.noise_floor)
        num = self.grad_numeric[rows, cols].astype(np.float64)
        ana64 = self.grad_analytic[rows, cols].astype(np.float64)
        known_abs = self.__dict__.get("abs_err")
        err = known_abs[rows, cols] if known_abs is not None else _abs_err(num, ana64)
        return err if name == "abs_err" else _rel_err(err, num, ana64)

    def at(self, name: str, i: ArrayLike, j: ArrayLike, grad_analytic: ArrayLike | None = None) -> NDArray:
        """Cells ``(i[k], j[k])`` of a map (``"abs_err"``, ``"rel_err"`` or ``"tolerance"``), formed for those
        cells only: the whole map's values there (element-wise). For a few listed cells of a large grid;
        ``grad_analytic`` as for :meth:`region`."""
        if name not in ("abs_err", "rel_err", "tolerance"):
            raise ValueError(f"unknown map {name!r}; expected abs_err, rel_err or tolerance")
        rows, cols = np.asarray(i, dtype=np.intp), np.asarray(j, dtype=np.intp)
        if name == "tolerance":  # element-wise with index arrays as with slices
            return np.asarray(self.region("tolerance", rows, cols, grad_analytic))  # type: ignore[arg-type]
        known = self.__dict__.get(name)
        if known is not None:
            return np.asarray(known[rows, cols])
        num = np.asarray(self.grad_numeric[rows, cols]).astype(np.float64)
        ana = np.asarray(self.grad_analytic[rows, cols]).astype(np.float64)
        err = _abs_err(num, ana)
        return err if name == "abs_err" else _rel_err(err, num, ana)

    def tolerance_rows(self, rows: slice, grad_analytic: ArrayLike | None = None) -> NDArray:
        """Rows of :meth:`tolerance_map` (float64), formed for those rows only."""
        return self.region("tolerance", rows, _ALL, grad_analytic)

    def ranked(self, k: int) -> NDArray:
        """The ``k`` worst cells: failing cells first, each group by ``abs_err``, largest first.

        Parameters
        ----------
        k : int
            How many cells (>= 0); fewer when the grid is smaller.

        Returns
        -------
        ndarray, shape (min(k, size), ndim), int
            Indices, one row per cell. NaN errors rank above every number (they fail);
            ties keep C order.

        Notes
        -----
        Vectorised: block maxima and ``np.argpartition`` select the candidates in O(N C)
        and only the ``k`` selected ones are sorted (no full sort of the grid).

        Examples
        --------
        >>> c = compare(np.array([[0.0, 1.0, 2.5]]), np.array([[0.1, 1.5, 2.0]]), atol=0.0, rtol=0.3)
        >>> c.ranked(3).tolist()  # (0, 1) fails with error 0.5; (0, 2) passes with 0.5; (0, 0) fails with 0.1
        [[0, 1], [0, 0], [0, 2]]
        """
        return worst_cells(self, k)


#: Elements per chunk of :func:`worst_cells` (its temporaries stay a few MiB).
_RANK_CHUNK = 1 << 16
#: Block length of the pre-selection in :func:`_top`.
_TOP_BLOCK = 1024


def _top(keys: NDArray, m: int) -> NDArray:
    """Flat indices of the ``m`` largest ``keys`` (no NaN), largest first, ties in index order.

    One pass of block maxima narrows the candidates to the blocks that can hold a top
    element (at most ``m`` blocks, more only with ties), then ``np.argpartition`` finds
    the m-th largest value among them; only the ``m`` results are sorted.
    """
    n = keys.size
    if m <= 0:
        return np.zeros(0, dtype=np.intp)
    cand: NDArray | None = None
    nb = n // _TOP_BLOCK
    if nb > 4 * m:
        # The m-th largest block maximum is <= the m-th largest key, so every top key lies in a
        # block whose maximum reaches it.
        bmax = keys[: nb * _TOP_BLOCK].reshape(nb, _TOP_BLOCK).max(axis=1)
        t = np.partition(bmax, nb - m)[nb - m]
        blocks = np.flatnonzero(bmax >= t)
        if blocks.size * _TOP_BLOCK < n // 2:
            cand = (blocks[:, None] * _TOP_BLOCK + np.arange(_TOP_BLOCK)).ravel()
            cand = np.concatenate([cand, np.arange(nb * _TOP_BLOCK, n)])
    pool = keys if cand is None else keys[cand]
    kth = pool[np.argpartition(pool, pool.size - m)[pool.size - m]] if m < pool.size else pool.min()
    above = np.flatnonzero(pool > kth)
    ties = np.flatnonzero(pool == kth)[: m - above.size]  # the lowest indices among equal keys
    pick = np.concatenate([above, ties])
    idx = pick if cand is None else cand[pick]
    order = np.lexsort((idx, -pool[pick]))  # by key descending, then by index ascending
    return idx[order].astype(np.intp)


def worst_cells(result: object, k: int) -> NDArray:
    r"""The ``k`` worst cells of a check: failing cells first, each group ordered by ``|num - ana|``.

    Parameters
    ----------
    result : Comparison or Report
        A comparison, or anything with a ``comparison`` attribute holding one.
    k : int
        How many (>= 0).

    Returns
    -------
    ndarray, shape (min(k, N C), 2), int
        One ``(i, j)`` per row, the worst first.

    Notes
    -----
    The order key is :math:`(	ext{failed}, |g_n - g_a|)`, both descending; a NaN
    error fails and ranks as :math:`+\infty`. Selection uses ``np.argpartition``
    (no full sort of the grid): the failing cells' errors are partitioned when at
    least ``k`` fail, else all failing cells are taken and the passing ones fill up.

    Examples
    --------
    >>> c = compare(np.array([1.0, np.nan, 3.0]), np.array([1.0, 0.0, 2.0]))
    >>> worst_cells(c, 2).tolist()
    [[1], [2]]
    """
    cmp = result if isinstance(result, Comparison) else getattr(result, "comparison", None)
    if not isinstance(cmp, Comparison):
        raise TypeError(f"worst_cells needs a Comparison or a Report, got {type(result).__name__}")
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 0:
        raise ValueError(f"k must be an integer >= 0, got {k!r}")
    known = cmp.__dict__.get("abs_err")
    passed = cmp.passed.reshape(-1)

    def blocks() -> Iterator[tuple[int, NDArray, NDArray]]:
        for sl, num, ana in _chunks(cmp.grad_numeric, cmp.grad_analytic, _RANK_CHUNK):
            err = known.reshape(-1)[sl] if known is not None else _abs_err(num, ana)
            yield sl.start, err, passed[sl]

    return rank_blocks(blocks(), cmp.grad_numeric.shape, int(k))


def _block_candidates(start: int, err: NDArray, ok: NDArray, m: int) -> tuple[NDArray, NDArray, NDArray]:
    """A block's ``m`` worst failing and ``m`` worst passing cells (ties at the lowest indices): flat indices,
    keys (NaN as inf) and failed flags. The grid's ``m`` worst lie among its blocks' candidates."""
    idx_parts, key_parts, fail_parts = [], [], []
    for group, failing in ((np.flatnonzero(~ok), True), (np.flatnonzero(ok), False)):
        if group.size == 0:
            continue
        keys = err[group]
        if failing:
            keys = np.where(np.isnan(keys), np.inf, keys)  # a NaN error fails and ranks above every number
        top = group[_top(keys, min(m, group.size))]
        idx_parts.append(start + top)
        key_parts.append(np.where(np.isnan(err[top]), np.inf, err[top]))
        fail_parts.append(np.full(top.size, failing))
    if not idx_parts:
        return np.zeros(0, dtype=np.intp), np.zeros(0), np.zeros(0, dtype=bool)
    return np.concatenate(idx_parts), np.concatenate(key_parts), np.concatenate(fail_parts)


def _merge(cands: Iterable[tuple[NDArray, NDArray, NDArray]], shape: tuple[int, ...], m: int) -> NDArray:
    """The ``m`` worst of the candidates: failing first, then by error descending, then in C order."""
    parts = list(cands)
    idx = np.concatenate([c[0] for c in parts])
    key = np.concatenate([c[1] for c in parts])
    fail = np.concatenate([c[2] for c in parts])
    order = np.lexsort((idx, -key, ~fail))
    return np.stack(np.unravel_index(idx[order[:m]], shape), axis=1).astype(np.intp)


def rank_blocks(blocks: Iterable[tuple[int, NDArray, NDArray]], shape: tuple[int, ...], k: int) -> NDArray:
    """:func:`worst_cells` from the error map given block by block: ``(flat start, |num - ana|, passed)`` per
    block, flattened in C order, covering the grid once. The map is never needed whole."""
    m = min(int(k), int(np.prod(shape)))
    if m == 0:
        return np.zeros((0, len(shape)), dtype=np.intp)
    return _merge((_block_candidates(start, err, ok, m) for start, err, ok in blocks), shape, m)


@dataclass(frozen=True)
class RankCandidates:
    """For each block of ``rows_per_block`` rows, its ``depth`` worst failing and passing cells.

    The grid's ``depth`` worst cells are among them, so an edit of some rows re-ranks only their
    blocks and merges the candidates (O(rows x C + blocks x depth)) instead of the whole grid.
    """

    shape: tuple[int, int]
    rows_per_block: int
    depth: int
    blocks: tuple[tuple[NDArray, NDArray, NDArray], ...]

    def ranking(self, k: int | None = None) -> NDArray:
        """The ``k`` (default ``depth``) worst cells, ``k <= depth``."""
        m = min(self.depth if k is None else int(k), self.shape[0] * self.shape[1])
        if m == 0:
            return np.zeros((0, 2), dtype=np.intp)
        return _merge(self.blocks, self.shape, m)

    def block_rows(self, b: int) -> slice:
        return slice(b * self.rows_per_block, min(self.shape[0], (b + 1) * self.rows_per_block))

    @classmethod
    def build(cls, rows_of: Callable[[slice], tuple[NDArray, NDArray]], shape: tuple[int, int], depth: int,
              rows_per_block: int | None = None) -> RankCandidates:  # fmt: skip
        """Candidates of every block; ``rows_of(rows)`` gives ``(|num - ana|, passed)`` of those rows."""
        n, c = shape
        per = rows_per_block or max(1, _RANK_CHUNK // max(c, 1))
        out = cls(shape, per, depth, ())
        return out.updated(rows_of, range(math.ceil(n / per)))

    def updated(self, rows_of: Callable[[slice], tuple[NDArray, NDArray]], blocks: Iterable[int]) -> RankCandidates:
        """These candidates with ``blocks`` re-ranked from ``rows_of`` (a new object)."""
        n, c = self.shape
        count = math.ceil(n / self.rows_per_block)
        empty = (np.zeros(0, dtype=np.intp), np.zeros(0), np.zeros(0, dtype=bool))
        table = list(self.blocks) + [empty] * (count - len(self.blocks))
        for b in blocks:
            rows = self.block_rows(b)
            err, ok = rows_of(rows)
            table[b] = _block_candidates(rows.start * c, err.reshape(-1), ok.reshape(-1), self.depth)
        return RankCandidates(self.shape, self.rows_per_block, self.depth, tuple(table))


def tolerance_from_expected(expected: NDArray, multiple: float, floor: float) -> NDArray:
    """``multiple * expected + floor`` (float64), NaN where it is not finite: the noise verdict's tolerance."""
    e = np.asarray(expected, dtype=np.float64)
    with np.errstate(over="ignore", invalid="ignore"):
        tol = e * float(multiple) + floor
    # An expected error that is not finite (a step beyond all reason) decides nothing: the element fails.
    return np.where(np.isfinite(tol), tol, np.nan)


def _as_gradient(values: ArrayLike) -> NDArray:
    arr = np.asarray(values)
    if arr.dtype.kind == "f" or (arr.dtype.kind == "V" and arr.dtype.name == "bfloat16"):
        return arr
    return arr.astype(np.float64)


def _chunks(num: NDArray, ana: NDArray, size: int = _CHUNK) -> Iterator[tuple[slice, NDArray, NDArray]]:
    """``(slice, float64 chunk of num, float64 chunk of ana)`` over the flattened arrays, in C order."""
    num_flat, ana_flat = num.reshape(-1), ana.reshape(-1)
    n = num_flat.size
    for start in range(0, n, size):
        sl = slice(start, min(n, start + size))
        yield sl, num_flat[sl].astype(np.float64), ana_flat[sl].astype(np.float64)


def _abs_err(num: NDArray, ana: NDArray) -> NDArray:
    with np.errstate(invalid="ignore"):  # inf - inf in gradients of non-finite logits
        return np.abs(num - ana)


def _rel_err(abs_err: NDArray, num: NDArray, ana: NDArray) -> NDArray:
    scale = np.maximum(np.abs(num), np.abs(ana))
    rel_err = np.zeros_like(abs_err)
    with np.errstate(invalid="ignore"):  # inf / inf where a gradient is infinite: NaN, as the error is
        np.divide(abs_err, scale, out=rel_err, where=scale > 0)
    rel_err[np.isnan(abs_err)] = np.nan
    return rel_err


def compare(
    grad_numeric: ArrayLike,
    grad_analytic: ArrayLike,
    atol: float = 1e-7,
    rtol: float = 1e-5,
    *,
    tolerance: ArrayLike | None = None,
) -> Comparison:
    r"""Compare a numeric gradient with an analytic one, element by element.

    Parameters
    ----------
    grad_numeric, grad_analytic : array_like, same shape
    atol, rtol : float
        Tolerances of the fixed verdict (non-negative).
    tolerance : array_like, optional
        A per-element tolerance (the "noise" verdict, see
        :func:`~explorer.core.noise_tolerance`): an element passes when
        :math:`|g_n - g_a| \le` its tolerance; ``atol`` and ``rtol`` are then not used.

    Returns
    -------
    Comparison

    Notes
    -----
    .. math::
        \mathrm{abs} = |g_n - g_a|, \quad
        \mathrm{rel} = \frac{|g_n - g_a|}{\max(|g_n|, |g_a|)} \ (0 \text{ if both are } 0), \quad
        \mathrm{pass} \iff |g_n - g_a| \le \mathrm{atol} + \mathrm{rtol}\,|g_a|

    The symmetric relative error needs no arbitrary floor: it is 0 for two
    exact zeros and at most 2 (a sign flip), so an analytic 0 cannot blow it up.
    The work runs in chunks of the flattened grid (float64 temporaries of one chunk); the
    float64 maps are formed on first use (:class:`Comparison`).

    Examples
    --------
    >>> c = compare(np.array([1.0, 0.5]), np.array([1.0, 0.25]), atol=0.0, rtol=0.1)
    >>> c.passed, c.worst, c.max_rel_err
    (array([ True, False]), (1,), 0.5)
    >>> compare(np.array([1.0, 2.0]), np.array([1.1, 3.0]), atol=0.0, rtol=0.5).worst  # largest error, passed or not
    (1,)
    """
    given = None if tolerance is None else np.asarray(tolerance, dtype=np.float64)
    return _compare(grad_numeric, grad_analytic, atol, rtol, given=given)


def compare_noise(
    grad_numeric: ArrayLike,
    grad_analytic: ArrayLike,
    atol: float,
    rtol: float,
    expected: NDArray,
    multiple: float,
    floor: float,
) -> Comparison:
    """:func:`compare` with the "noise" verdict's tolerance ``multiple * expected + floor``, never stored whole.

    The tolerance is formed chunk by chunk for the verdict and again on first use of
    :attr:`Comparison.tolerance`, with the same operations (:func:`tolerance_from_expected`).
    """
    return _compare(grad_numeric, grad_analytic, atol, rtol, expected=(np.asarray(expected), multiple, floor))


def _compare(
    grad_numeric: ArrayLike,
    grad_analytic: ArrayLike,
    atol: float,
    rtol: float,
    given: NDArray | None = None,
    expected: tuple[NDArray, float, float] | None = None,
) -> Comparison:
    if atol < 0 or rtol < 0 or not (np.isfinite(atol) and np.isfinite(rtol)):
        raise ValueError(f"tolerances must be finite and >= 0, got atol={atol!r}, rtol={rtol!r}")
    num, ana = _as_gradient(grad_numeric), _as_gradient(grad_analytic)
    if num.shape != ana.shape:
        raise ValueError(f"shapes differ: numeric {num.shape} vs analytic {ana.shape}")
    shape = num.shape
    if given is not None:
        given_full = np.broadcast_to(given, shape)
        tol_flat = given_full.reshape(-1) if given.shape == shape else np.ascontiguousarray(given_full).reshape(-1)
    if expected is not None:
        e_flat = expected[0].reshape(-1)
    passed = np.empty(shape, dtype=bool)
    passed_flat = passed.reshape(-1)
    worst_at, worst_err, nan_seen = -1, -np.inf, False
    max_abs, max_rel = 0.0, 0.0
    for sl, n_c, a_c in _chunks(num, ana):
        err = _abs_err(n_c, a_c)
        with np.errstate(invalid="ignore"):
            if given is not None:
                np.less_equal(err, tol_flat[sl], out=passed_flat[sl])
            elif expected is not None:
                np.less_equal(err, tolerance_from_expected(e_flat[sl], expected[1], expected[2]), out=passed_flat[sl])
            else:
                margin = err - rtol * np.abs(a_c)
                np.less_equal(margin, atol, out=passed_flat[sl])
        k = int(np.argmax(err))  # the first NaN, else the first largest
        top = float(err[k])
        if not nan_seen and (top != top or top > worst_err):
            worst_at, worst_err, nan_seen = sl.start + k, top, top != top
        max_abs = max(max_abs, math.inf if top != top else top)
        rel_top = float(np.max(_rel_err(err, n_c, a_c)))
        max_rel = max(max_rel, math.inf if rel_top != rel_top else rel_top)
    worst = tuple(int(i) for i in np.unravel_index(worst_at, shape)) if num.size else ()
    n_failed = int(passed.size - np.count_nonzero(passed))
    mode = "fixed" if given is None and expected is None else "noise"
    e, multiple, floor = (None, math.nan, math.nan) if expected is None else expected
    return Comparison(num, ana, passed, float(atol), float(rtol), worst, max_abs, max_rel, n_failed == 0, n_failed,
                      mode, e, float(multiple), float(floor), given)  # fmt: skip
