"""Error measures between a numeric and an analytic gradient, and a gradcheck-style verdict."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from numpy.typing import ArrayLike, DTypeLike, NDArray

__all__ = [
    "DEFAULT_TOLERANCES",
    "TOLERANCE_MODES",
    "Comparison",
    "compare",
    "default_tolerances",
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


@dataclass(frozen=True)
class Comparison:
    """Element-wise comparison of ``grad_numeric`` with ``grad_analytic``.

    Attributes
    ----------
    abs_err : ndarray (N, C), float64
        ``|num - ana|``.
    rel_err : ndarray (N, C), float64
        ``|num - ana| / max(|num|, |ana|)``, 0 where both are 0 (so it lies in [0, 2]).
    passed : ndarray (N, C), bool
        ``|num - ana| <= atol + rtol * |ana|`` (False where either is NaN).
    atol, rtol : float
        The tolerances used.
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
    tolerance : ndarray (N, C), float64, or None
        The per-element tolerance of the "noise" verdict (None for "fixed"; see
        :meth:`tolerance_map`).
    """

    abs_err: NDArray
    rel_err: NDArray
    passed: NDArray
    atol: float
    rtol: float
    worst: tuple[int, ...]
    max_abs_err: float
    max_rel_err: float
    ok: bool
    n_failed: int
    mode: str = "fixed"
    tolerance: NDArray | None = field(default=None, repr=False)

    def tolerance_map(self, grad_analytic: ArrayLike) -> NDArray:
        """The per-element tolerance the verdict used: the noise map, or ``atol + rtol |ana|`` (float64).

        Examples
        --------
        >>> c = compare(np.array([1.0]), np.array([2.0]), atol=0.5, rtol=0.25)
        >>> c.tolerance_map(np.array([2.0])).tolist()
        [1.0]
        """
        if self.tolerance is not None:
            return self.tolerance
        return self.atol + self.rtol * np.abs(np.asarray(grad_analytic, dtype=np.float64))

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
    err = cmp.abs_err.ravel()
    m = min(int(k), err.size)
    if m == 0:
        return np.zeros((0, cmp.abs_err.ndim), dtype=np.intp)
    if cmp.n_failed == 0:
        flat = _top(err, m)  # nothing fails, so nothing is NaN
    else:
        failing = np.flatnonzero(~cmp.passed.ravel())
        keys = err[failing]
        keys = np.where(np.isnan(keys), np.inf, keys)
        first = failing[_top(keys, min(m, failing.size))]
        rest = m - first.size
        if rest > 0:
            masked = err.copy()
            masked[failing] = -np.inf  # passing cells only (their errors are numbers)
            flat = np.concatenate([first, _top(masked, rest)])
        else:
            flat = first
    return np.stack(np.unravel_index(flat, cmp.abs_err.shape), axis=1).astype(np.intp)


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

    Examples
    --------
    >>> c = compare(np.array([1.0, 0.5]), np.array([1.0, 0.25]), atol=0.0, rtol=0.1)
    >>> c.passed, c.worst, c.max_rel_err
    (array([ True, False]), (1,), 0.5)
    >>> compare(np.array([1.0, 2.0]), np.array([1.1, 3.0]), atol=0.0, rtol=0.5).worst  # largest error, passed or not
    (1,)
    """
    if atol < 0 or rtol < 0 or not (np.isfinite(atol) and np.isfinite(rtol)):
        raise ValueError(f"tolerances must be finite and >= 0, got atol={atol!r}, rtol={rtol!r}")
    num = np.asarray(grad_numeric, dtype=np.float64)
    ana = np.asarray(grad_analytic, dtype=np.float64)
    if num.shape != ana.shape:
        raise ValueError(f"shapes differ: numeric {num.shape} vs analytic {ana.shape}")
    with np.errstate(invalid="ignore"):  # inf - inf in gradients of non-finite logits
        abs_err = np.abs(num - ana)
    scale = np.maximum(np.abs(num), np.abs(ana))
    rel_err = np.zeros_like(abs_err)
    np.divide(abs_err, scale, out=rel_err, where=scale > 0)
    rel_err[np.isnan(abs_err)] = np.nan
    tol: NDArray | None = None
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
    return Comparison(
        abs_err, rel_err, passed, float(atol), float(rtol), worst, max_abs, max_rel, n_failed == 0, n_failed,
        "fixed" if tol is None else "noise", tol,
    )  # fmt: skip
