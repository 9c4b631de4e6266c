"""What the finite difference of one element actually evaluated, for the cell inspector."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from ._dtypes import as_float_array, complex_dtype, quiet_if_nonfinite, round_to
from .losses import loss_terms
from .numeric import RowBlock
from .report import CheckSettings
from .schemes import get_scheme

__all__ = ["CellExplanation", "explain_cell"]


@dataclass(frozen=True)
class CellExplanation:
    r"""The evaluation behind one element of the numeric gradient.

    Attributes
    ----------
    cell : (i, j)
    logit : float
        :math:`x_{ij}` in the check's dtype.
    label : int
        Row i's target (or the ignore index).
    points : tuple of complex
        The perturbed values of :math:`x_{ij}` (rounded to the dtype; complex for the complex step).
    losses : tuple of float
        Row i's loss :math:`\ell_i / D` at each point (the imaginary part for the complex step).
    weights : tuple of float
        Stencil weights; ``quotient = sum(w * loss) / eps``.
    quotient : float
        The numeric derivative.
    analytic : float
        :math:`(A_i p_{ij} - a_{ij}) / D`.
    p, big_a, a, denom : float
        :math:`p_{ij}`, :math:`A_i`, :math:`a_{ij}`, :math:`D`.
    eps : float
    scheme : str
    """

    cell: tuple[int, int]
    logit: float
    label: int
    points: tuple[complex, ...]
    losses: tuple[float, ...]
    weights: tuple[float, ...]
    quotient: float
    analytic: float
    p: float
    big_a: float
    a: float
    denom: float
    eps: float
    scheme: str

    @property
    def abs_err(self) -> float:
        return abs(self.quotient - self.analytic)

    @property
    def rel_err(self) -> float:
        scale = max(abs(self.quotient), abs(self.analytic))
        return self.abs_err / scale if scale else 0.0


def explain_cell(
    logits: ArrayLike, labels: ArrayLike, settings: CheckSettings, cell: tuple[int, int]
) -> CellExplanation:
    r"""Recompute one element of :func:`~explorer.core.cross_entropy_numeric_grad`, showing its parts.

    Parameters
    ----------
    logits : array_like, shape (N, C)
    labels : array_like, shape (N,)
    settings : CheckSettings
    cell : (i, j)

    Returns
    -------
    CellExplanation

    Notes
    -----
    The same evaluation as the fast path, so ``quotient`` equals the numeric map's
    value at the cell. Row i's loss at a perturbed point is

    .. math:: \ell_i' = A_i \log\Big(S_i + e^{x'_{ij} - m_i} - e^{x_{ij} - m_i}\Big) - U_i'

    For the pitfall modes the inspector still shows the per-element evaluation.
    Non-finite logits give NaN parts, without floating-point warnings.

    Examples
    --------
    >>> e = explain_cell(np.array([[0.0, 0.0]]), np.array([0]), CheckSettings(eps=1e-3), (0, 1))
    >>> e.points, round(e.quotient, 6), e.analytic
    (((0.001+0j), (-0.001+0j)), 0.5, 0.5)
    """
    x = np.asarray(logits)
    with quiet_if_nonfinite(x.astype(np.float64) if x.dtype.kind in "biuf" else x):
        return _explain_cell(logits, labels, settings, cell)


def _explain_cell(
    logits: ArrayLike, labels: ArrayLike, settings: CheckSettings, cell: tuple[int, int]
) -> CellExplanation:
    """The body of :func:`explain_cell`."""
    sch = get_scheme(settings.scheme)
    storage = np.dtype(settings.dtype)
    x = as_float_array(logits)
    with np.errstate(over="ignore"):
        x = x.astype(storage)
    n, c = x.shape
    i, j = int(cell[0]), int(cell[1])
    if not (0 <= i < n and 0 <= j < c):
        raise ValueError(f"cell {cell} is outside the grid of shape {x.shape}")
    terms = loss_terms(x.shape, labels, **settings.loss_kwargs)  # type: ignore[arg-type]
    d = terms.denom if terms.reduction == "mean" else 1.0
    h = settings.eps
    # The same evaluation that fills the numeric map: one prepared row.
    rows = slice(i, i + 1)
    block = RowBlock(x[rows], terms, rows)
    p = float(block.e[0, j] / block.s[0, 0])
    big_a = float(block.big_a[0, 0])
    a_ij = float(terms.coefficients(rows)[0, j])
    analytic = (big_a * p - a_ij) / d if d else 0.0
    quotient = float(block.quotient(sch, h).astype(storage)[0, j])
    points: list[complex] = []
    losses: list[float] = []
    if sch.is_complex:
        points.append(complex(x[i, j].astype(complex_dtype(storage)) + 1j * h))
        losses.append(quotient * h)  # Im l(x + ih) / D
        weights: tuple[float, ...] = (1.0,)
    else:
        for o in sch.offsets:
            lp = block.l0[0, 0] if o == 0.0 else block.losses(o * h)[0, j]
            points.append(complex(round_to(np.asarray(block.xw[0, j] + o * h), storage)))
            losses.append(float(lp) / d if d else 0.0)
        weights = tuple(w / sch.divisor for _, w in sch.stencil)
    label = int(np.asarray(labels)[i]) if np.asarray(labels).ndim == 1 else -1
    return CellExplanation(
        (i, j), float(x[i, j]), label, tuple(points), tuple(losses), weights, quotient, analytic,
        p, big_a, a_ij, float(d), float(h), sch.name,
    )  # fmt: skip
