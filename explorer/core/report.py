"""One gradient check as a single immutable result: what the window, the CLI and tests consume."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ._dtypes import as_float_array, quiet_if_nonfinite, resolve_dtype
from .diagnose import CellFlags, diagnose
from .errors import Comparison, RankCandidates, _abs_err, compare, compare_noise, worst_cells
from .losses import cross_entropy, cross_entropy_grad, loss_terms
from .noise import NOISE_MULTIPLE, expected_error_map, noise_floor
from .numeric import BLOCK_ELEMENTS, cross_entropy_numeric_grad, loss_sum_parts
from .overview import RegionMap
from .settings import CheckSettings

__all__ = ["CheckSettings", "Report", "check_gradient"]


#: Depth of the worst-cell ranking the app keeps with each report.
RANK_DEPTH = 200
#: Key of that ranking in a report's ``__dict__``.
RANKING_KEY = "_ranked"
#: Key of the per-block candidates behind it.
CANDIDATES_KEY = "_rank_candidates"


@dataclass(frozen=True)
class Report:
    """Result of one gradient check.

    Attributes
    ----------
    settings : CheckSettings
    logits : ndarray (N, C)
        The logits as checked (rounded to ``settings.dtype``).
    labels : ndarray (N,) or (N, C)
    loss : float
        The reduced loss (the sum for "none").
    grad_analytic, grad_numeric : ndarray (N, C), dtype of the check
    comparison : Comparison
        ``abs_err``, ``rel_err``, ``passed``, worst cell and verdict.
    row_sums : ndarray (N,), float64
        Row sums of the analytic gradient (0 up to rounding, by shift invariance).
    cell_flags : CellFlags
        Why elements are 0 or NaN (lost step, underflowed p, overflowed row, noise
        floor) and the smallest surviving step per logit; computed on first use.
    expected_error : ndarray (N, C), or None
        In float32 (float64 for float64 checks; see :func:`~explorer.core.noise.expected_dtype`).
        The expected error of each numeric element at this eps, dtype, scheme and
        evaluate mode (:func:`~explorer.core.expected_error`), for either verdict (the "noise"
        verdict's tolerance is :data:`~explorer.core.NOISE_MULTIPLE` times it plus a tiny floor).
    """

    settings: CheckSettings
    logits: NDArray
    labels: NDArray
    loss: float
    grad_analytic: NDArray
    grad_numeric: NDArray
    comparison: Comparison
    row_sums: NDArray = field(repr=False)
    expected_error: NDArray | None = field(default=None, repr=False)

    @property
    def tolerance_map(self) -> NDArray:
        """The per-element tolerance the verdict used (float64, (N, C)): ``K E + floor`` or ``atol + rtol |ana|``."""
        return self.comparison.tolerance_map(self.grad_analytic)

    @property
    def blind(self) -> NDArray:
        """Cells where the check cannot tell: the tolerance is at least ``|analytic|`` (bool, (N, C)).

        There a numeric value of 0, or of half the size, would pass too: the summary should say
        so (raise eps, or use a wider dtype). Exact zeros of the analytic gradient are not blind.
        """
        ana = np.abs(self.grad_analytic.astype(np.float64))
        with np.errstate(invalid="ignore"):
            return (ana > 0) & (self.tolerance_map >= ana)

    @property
    def tolerance_mode(self) -> str:
        """Which tolerance decided the verdict: "noise" or "fixed"."""
        return self.comparison.mode

    @property
    def abs_err(self) -> NDArray:
        return self.comparison.abs_err

    @property
    def rel_err(self) -> NDArray:
        return self.comparison.rel_err

    @property
    def ok(self) -> bool:
        return self.comparison.ok

    def region_map(self, name: str) -> RegionMap:
        """``"abs_err"``, ``"rel_err"`` or ``"tolerance"`` as a :class:`~explorer.core.overview.RegionMap`: its
        cells formed when a region is asked for (exactly the whole map's values there), never the whole map."""
        cmp, ana = self.comparison, self.grad_analytic
        cmp.region(name, slice(0, 0), slice(0, 0), ana)  # refuses an unknown name now
        return RegionMap(ana.shape, lambda rows, cols: cmp.region(name, rows, cols, ana))

    @property
    def worst(self) -> tuple[int, ...]:
        """Index of the largest ``|numeric - analytic|`` (a NaN error counts as the largest)."""
        return self.comparison.worst

    def worst_cells(self, k: int) -> NDArray:
        """The ``k`` worst cells, failing ones first, each group by error (see :func:`~explorer.core.worst_cells`).

        A ranking kept with the report (:meth:`keep_ranking`, formed in the app's worker) answers when it is
        deep enough; otherwise the cells are ranked now (O(N C), in chunks).
        """
        kept = self.__dict__.get(RANKING_KEY)
        if kept is not None and isinstance(k, int) and 0 <= k <= len(kept):
            return kept[:k].copy()
        return worst_cells(self.comparison, k)

    def keep_ranking(self, cells: NDArray | None = None, depth: int = RANK_DEPTH,
                     candidates: RankCandidates | None = None) -> NDArray:  # fmt: skip
        """Rank the ``depth`` worst cells and keep the ranking with the report, so :meth:`worst_cells` up to
        ``depth`` is O(k); keep the per-block candidates too, so an edit of some rows re-ranks only their
        blocks (:meth:`explorer.core.partial.RowPatch.ranked`). ``cells`` and ``candidates``: both formed
        elsewhere (the app's worker)."""
        if cells is None:
            if candidates is None:
                cmp = self.comparison

                def rows_of(rows: slice) -> tuple[NDArray, NDArray]:
                    num, ana = cmp.grad_numeric[rows].astype(np.float64), cmp.grad_analytic[rows].astype(np.float64)
                    return _abs_err(num, ana), cmp.passed[rows]

                candidates = RankCandidates.build(rows_of, self.grad_analytic.shape, depth)
            cells = candidates.ranking()
        if candidates is not None:
            self.__dict__[CANDIDATES_KEY] = candidates
        ranked = np.asarray(cells, dtype=np.intp)
        self.__dict__[RANKING_KEY] = ranked
        return ranked

    @cached_property
    def cell_flags(self) -> CellFlags:
        """:func:`~explorer.core.diagnose` of this report, computed once on first use."""
        return diagnose(self)


def float64_row_sums(grad: NDArray) -> NDArray:
    """``grad.astype(float64).sum(axis=1)`` bit for bit, converting one block of rows at a time."""
    n, c = grad.shape
    if grad.dtype == np.float64:
        return grad.sum(axis=1)
    out = np.empty(n)
    per = max(1, 4 * BLOCK_ELEMENTS // max(c, 1))
    for r0 in range(0, n, per):
        rows = slice(r0, min(n, r0 + per))
        out[rows] = grad[rows].astype(np.float64).sum(axis=1)
    return out


def check_gradient(
    logits: ArrayLike,
    labels: ArrayLike,
    settings: CheckSettings | None = None,
    progress: Callable[[float], None] | None = None,
) -> Report:
    r"""Compare the finite-difference gradient of the cross-entropy with its closed form.

    Parameters
    ----------
    logits : array_like, shape (N, C)
        Rounded to ``settings.dtype`` first.
    labels : array_like, shape (N,) of int or (N, C) of float
    settings : CheckSettings, optional
        Defaults: central differences, eps 1e-5, float64, summed row losses
        (the origin question's setting).
    progress : callable, optional
        Passed to :func:`~explorer.core.cross_entropy_numeric_grad`.

    Returns
    -------
    Report

    Notes
    -----
    The verdict per element is, for ``settings.tolerance == "noise"`` (the default),
    :math:`|g_n - g_a| \le K E + \text{floor}` with :math:`E` the expected error of the
    numeric element (:func:`~explorer.core.expected_error`) and :math:`K` =
    :data:`~explorer.core.NOISE_MULTIPLE`; for "fixed" (or when ``atol`` or ``rtol`` is given),
    :math:`|g_n - g_a| \le \mathrm{atol} + \mathrm{rtol} |g_a|`.

    Examples
    --------
    >>> r = check_gradient(np.array([[1.0, 2.0, 3.0]]), np.array([2]))
    >>> r.ok, r.worst
    (True, (0, 0))
    """
    settings = settings or CheckSettings()
    dtype = resolve_dtype(settings.dtype)
    x = as_float_array(logits, "logits")
    if x.dtype != dtype:
        with np.errstate(over="ignore"):  # values beyond the dtype's range become inf, shown as such
            x = x.astype(dtype)
    # Logits beyond the dtype's range (float16 overflow) are inf: their rows give NaN.
    with quiet_if_nonfinite(x):
        return _check(x, labels, settings, progress)


def _check(x: NDArray, labels: ArrayLike, settings: CheckSettings, progress: Callable[[float], None] | None) -> Report:
    kw = settings.loss_kwargs
    loss = cross_entropy(x, labels, **kw)
    grad_analytic = cross_entropy_grad(x, labels, **kw)
    # The numeric gradient and the expected-error map take about the same time: half of the progress each.
    grad_numeric = cross_entropy_numeric_grad(
        x,
        labels,
        settings.eps,
        settings.scheme,
        settings.perturb,
        progress=None if progress is None else (lambda f: progress(0.5 * f)),
        evaluate=settings.evaluate,
        **kw,
    )
    atol, rtol = settings.tolerances
    terms = loss_terms(x.shape, labels, **kw)  # type: ignore[misc]
    whole = loss_sum_parts(x, terms)[1] if settings.evaluate == "loss" and settings.perturb == "element" else None
    expected = expected_error_map(x, terms, settings.scheme, settings.eps, whole,
                                  None if progress is None else (lambda f: progress(0.5 + 0.5 * f)))  # fmt: skip
    if settings.tolerance == "noise":
        comparison = compare_noise(grad_numeric, grad_analytic, atol, rtol, expected, NOISE_MULTIPLE,
                                   noise_floor(x.dtype))  # fmt: skip
    else:
        comparison = compare(grad_numeric, grad_analytic, atol, rtol)
    row_sums = float64_row_sums(grad_analytic)
    total = float(np.sum(loss.astype(np.float64)))
    return Report(settings, x, np.asarray(labels), total, grad_analytic, grad_numeric, comparison, row_sums, expected)
