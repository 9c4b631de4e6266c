"""Error measures between a numeric and an analytic gradient, and a gradcheck-style verdict."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, DTypeLike, NDArray

__all__ = ["DEFAULT_TOLERANCES", "Comparison", "compare", "default_tolerances"]

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
        Index of the element with the largest ``abs_err - rtol * |ana|`` (the one
        that fails, or comes closest to failing, the verdict).
    max_abs_err, max_rel_err : float
    ok : bool
        Every element passed.
    n_failed : int
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


def compare(grad_numeric: ArrayLike, grad_analytic: ArrayLike, atol: float = 1e-7, rtol: float = 1e-5) -> Comparison:
    r"""Compare a numeric gradient with an analytic one, element by element.

    Parameters
    ----------
    grad_numeric, grad_analytic : array_like, same shape
    atol, rtol : float
        Tolerances of the verdict (non-negative).

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
    with np.errstate(invalid="ignore"):
        margin = abs_err - rtol * np.abs(ana)
        passed = margin <= atol
    if abs_err.size:
        flat = np.where(np.isnan(margin), np.inf, margin)
        worst = tuple(int(i) for i in np.unravel_index(int(np.argmax(flat)), abs_err.shape))
        max_abs = float(np.max(np.where(np.isnan(abs_err), np.inf, abs_err)))
        max_rel = float(np.max(np.where(np.isnan(rel_err), np.inf, rel_err)))
    else:
        worst, max_abs, max_rel = (), 0.0, 0.0
    n_failed = int(passed.size - np.count_nonzero(passed))
    return Comparison(
        abs_err, rel_err, passed, float(atol), float(rtol), worst, max_abs, max_rel, n_failed == 0, n_failed
    )
