"""What the finite difference of one element actually evaluated, for the cell inspector."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ._dtypes import as_float_array, complex_dtype, quiet_if_nonfinite, resolve_dtype, round_to, work_dtype
from .diagnose import min_surviving_eps
from .losses import LossTerms, grad_rows, loss_terms
from .noise import NoiseRows, expected_dtype, noise_tolerance
from .numeric import RowBlock, ShiftEvaluator, loss_sum_parts
from .schemes import Scheme, get_scheme
from .settings import CheckSettings

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
        Row i's target (or the ignore index; -1 for probability targets).
    points : tuple of complex
        The perturbed values of :math:`x_{ij}` (rounded to the dtype; complex for the complex
        step). In the pitfall modes every logit of the row (or grid) moves the same way.
    losses : tuple of float
        The value evaluated at each point: row i's loss :math:`\ell_i / D` ("element" with
        ``evaluate="row"``, "row"), or the reduced loss :math:`L` ("element" with
        ``evaluate="loss"``, "all"); the imaginary part for the complex step.
    weights : tuple of float
        Stencil weights; ``numeric = sum(w * loss) / eps`` up to rounding.
    numeric : float
        The numeric derivative: the report's ``grad_numeric[i, j]``, bit for bit.
    analytic : float
        :math:`(A_i p_{ij} - a_{ij}) / D`: the report's ``grad_analytic[i, j]``, bit for bit.
    p, big_a, a, denom : float
        :math:`p_{ij}`, :math:`A_i`, :math:`a_{ij}`, :math:`D`.
    eps : float
    scheme : str
    perturb : str
        "element", or the pitfall modes "row" and "all".
    step_lost, p_underflow, row_overflow, noise_floor : bool
        Why the numeric value may be 0 or NaN (see :class:`~explorer.core.diagnose.CellFlags`).
    min_eps : float
        The smallest step certain to survive rounding at this logit (the spacing of the
        dtype at :math:`|x_{ij}|`).
    expected_error : float
        :math:`E`, the expected error of the numeric value at this eps, dtype, scheme and
        evaluate mode: the report's ``expected_error[i, j]`` bit for bit (computed for either verdict).
    truncation_error, step_error, rounding_error : float
        Its parts: truncation (from the exact higher derivative), the rounding of the
        perturbed point, and the rounding of the values differenced and of the results.
    tolerance : float
        The tolerance the verdict used at this cell (``report.tolerance_map[i, j]`` bit for bit):
        :math:`K E + \text{floor}` for "noise", :math:`\mathrm{atol} + \mathrm{rtol} |g_a|` for "fixed".
    tolerance_mode : str
        "noise" or "fixed".
    evaluate : str
        "row" or "loss": what the quotient differenced.
    """

    cell: tuple[int, int]
    logit: float
    label: int
    points: tuple[complex, ...]
    losses: tuple[float, ...]
    weights: tuple[float, ...]
    numeric: float
    analytic: float
    p: float
    big_a: float
    a: float
    denom: float
    eps: float
    scheme: str
    perturb: str = "element"
    step_lost: bool = False
    p_underflow: bool = False
    row_overflow: bool = False
    noise_floor: bool = False
    min_eps: float = math.nan
    expected_error: float = math.nan
    truncation_error: float = math.nan
    step_error: float = math.nan
    rounding_error: float = math.nan
    tolerance: float = math.nan
    tolerance_mode: str = "noise"
    evaluate: str = "row"

    @property
    def passed(self) -> bool:
        """The verdict at this cell: ``|numeric - analytic| <= tolerance`` (False for NaN)."""
        return bool(self.abs_err <= self.tolerance)

    @property
    def quotient(self) -> float:
        """The numeric derivative (the same as :attr:`numeric`)."""
        return self.numeric

    @property
    def abs_err(self) -> float:
        return abs(self.numeric - self.analytic)

    @property
    def rel_err(self) -> float:
        scale = max(abs(self.numeric), abs(self.analytic))
        return self.abs_err / scale if scale else 0.0


def explain_cell(
    logits: ArrayLike,
    labels: ArrayLike,
    cell: tuple[int, int] | CheckSettings,
    settings: CheckSettings | tuple[int, int],
) -> CellExplanation:
    r"""Recompute one element of the check's numeric and analytic gradients, showing its parts.

    Parameters
    ----------
    logits : array_like, shape (N, C)
        Rounded to ``settings.dtype`` (only row i is read, except for ``perturb="all"``).
    labels : array_like, shape (N,) or (N, C)
    cell : (i, j)
    settings : CheckSettings
        The older order ``(logits, labels, settings, cell)`` is accepted as well.

    Returns
    -------
    CellExplanation
        ``numeric`` and ``analytic`` equal ``check_gradient(logits, labels, settings)``'s
        ``grad_numeric[i, j]`` and ``grad_analytic[i, j]`` bit for bit, for every scheme,
        dtype and perturb mode.

    Notes
    -----
    The same evaluation as the maps: row i is prepared as in
    :func:`~explorer.core.cross_entropy_numeric_grad` and its row loss at a perturbed point is

    .. math:: \ell_i' = A_i \log\Big(S_i + e^{x'_{ij} - m_i} - e^{x_{ij} - m_i}\Big) - U_i'

    Cost: O(C) on the logits plus O(N) on the labels (the mean's denominator) for
    "element" and "row" (a row's shifted loss depends on that row only); O(N C) for
    "all" and for ``evaluate="loss"``, whose quotients are differences of the whole loss. Non-finite logits give NaN
    parts, without floating-point warnings.

    Examples
    --------
    >>> e = explain_cell(np.array([[0.0, 0.0]]), np.array([0]), (0, 1), CheckSettings(eps=1e-3))
    >>> e.points, round(e.numeric, 6), e.analytic
    (((0.001+0j), (-0.001+0j)), 0.5, 0.5)
    """
    if isinstance(cell, CheckSettings) and not isinstance(settings, CheckSettings):
        cell, settings = settings, cell  # the older argument order (logits, labels, settings, cell)
    if not isinstance(settings, CheckSettings):
        raise TypeError(f"settings must be a CheckSettings, got {type(settings).__name__}")
    try:
        i, j = (int(v) for v in cell)  # type: ignore[union-attr]
    except (TypeError, ValueError):
        raise ValueError(f"cell must be a pair of integers (i, j), got {cell!r}") from None
    storage = resolve_dtype(settings.dtype)
    arr = np.asarray(logits)
    if arr.ndim != 2:
        raise ValueError(f"logits must have shape (N, C), got shape {arr.shape}")
    n, c = arr.shape
    if not (0 <= i < n and 0 <= j < c):
        raise ValueError(f"cell {(i, j)} is outside the grid of shape {arr.shape}")
    whole = settings.perturb == "all" or (settings.evaluate == "loss" and settings.perturb == "element")
    x = _in_dtype(arr if whole else arr[i : i + 1], storage)
    with quiet_if_nonfinite(x):
        return _explain(x, i if whole else 0, i, j, labels, (n, c), settings)


def _whole_loss(settings: CheckSettings) -> bool:
    """Whether the element quotients difference the whole loss (which needs every row's loss)."""
    return settings.perturb == "element" and settings.evaluate == "loss" and not get_scheme(settings.scheme).is_complex


def _in_dtype(x: ArrayLike, storage: np.dtype) -> NDArray:
    xf = as_float_array(x, "logits")
    if xf.dtype == storage:
        return xf
    with np.errstate(over="ignore"):  # beyond the dtype's range: inf, as check_gradient does
        return xf.astype(storage)


def _explain(
    x: NDArray, r: int, i: int, j: int, labels: ArrayLike, shape: tuple[int, int], settings: CheckSettings
) -> CellExplanation:
    """The body of :func:`explain_cell`; ``x`` holds row i at index ``r`` (the row alone, or the grid)."""
    sch = get_scheme(settings.scheme)
    storage = x.dtype
    h = settings.eps
    row_terms = loss_terms(shape, labels, rows=slice(i, i + 1), **settings.loss_kwargs)  # type: ignore[misc]
    d = row_terms.denom
    xi = x[r : r + 1]
    rest, whole_sum = None, None
    if _whole_loss(settings) or (settings.evaluate == "loss" and settings.perturb == "element"):
        # The other rows' losses, exactly as the map sums them (the noise model needs their total).
        rest_all, whole_sum = loss_sum_parts(x, loss_terms(shape, labels, **settings.loss_kwargs))  # type: ignore[misc]
        rest = rest_all[r : r + 1] if _whole_loss(settings) else None
    block = RowBlock(xi, row_terms, slice(0, 1), rest)
    analytic = float(grad_rows(xi, row_terms)[0, j])  # the analytic map's operations on this row
    p = float(block.e[0, j] / block.s[0, 0])
    big_a = float(block.big_a[0, 0])
    a_ij = row_terms.coefficient(0, j)
    if settings.perturb == "element":
        numeric, points, losses, weights = _element_parts(block, sch, h, j, d)
    else:
        terms = row_terms if settings.perturb == "row" else loss_terms(shape, labels, **settings.loss_kwargs)  # type: ignore[misc]
        numeric, points, losses, weights = _shift_parts(x, terms, settings.perturb, sch, h, r, j)
    step_lost, p_underflow, row_overflow = _element_flags(block, j, h, sch)
    noise_floor = numeric == 0 and analytic != 0 and not (step_lost or p_underflow or row_overflow)
    min_eps = float(min_surviving_eps(xi[:, j], sch.name)[0])
    target = np.asarray(labels)
    label = int(target[i]) if target.ndim == 1 else -1
    parts = NoiseRows(xi, row_terms, slice(0, 1), sch, h, whole_sum).parts(slice(j, j + 1))  # the map's bits
    kept = parts.total.astype(expected_dtype(storage))  # as the report keeps it
    expected = float(kept[0, 0])
    if settings.tolerance == "noise":
        tolerance = float(noise_tolerance(kept, storage)[0, 0])
    else:
        atol, rtol = settings.tolerances
        tolerance = float(atol + rtol * np.abs(np.float64(analytic)))
    return CellExplanation(
        (i, j), float(xi[0, j]), label, points, losses, weights, numeric, analytic, p, big_a, a_ij, float(d),
        float(h), sch.name, settings.perturb, step_lost, p_underflow, row_overflow, bool(noise_floor), min_eps,
        expected, float(parts.truncation[0, 0]), float(parts.step[0, 0]),
        float(parts.rounding[0, 0] + parts.storage[0, 0]), tolerance, settings.tolerance, settings.evaluate,
    )  # fmt: skip


def _element_flags(block: RowBlock, j: int, h: float, sch: Scheme) -> tuple[bool, bool, bool]:
    """``(step_lost, p_underflow, row_overflow)`` of element j of a one-row block, as :func:`cell_flags` has them.

    The row's reductions are the block's own (the same operations as the flags' map); the
    element-wise tests run on column j only, so one cell costs O(C) (one ``isfinite`` pass).
    """
    storage, work = block.storage, block.work
    xw = block.xw[:, j : j + 1]
    row_overflow = not bool(np.all(np.isfinite(block.xw)))
    if sch.is_complex:
        lost = bool(np.asarray(h, dtype=np.float64).astype(work) == 0)
    else:

        def moved(offset: float) -> NDArray:
            return xw if offset == 0.0 else round_to(xw + offset * h, storage)

        lost = bool((moved(max(sch.offsets)) == moved(min(sch.offsets)))[0, 0])
    step_lost = lost and bool(np.isfinite(xw[0, 0]))
    p = block.e[:, j : j + 1] / block.s
    p_underflow = bool((p.astype(storage) == 0)[0, 0]) and not row_overflow
    return step_lost, p_underflow, row_overflow


def _element_parts(
    block: RowBlock, sch: Scheme, h: float, j: int, d: float
) -> tuple[float, tuple[complex, ...], tuple[float, ...], tuple[float, ...]]:
    storage = block.storage
    col = block.column(0, j, 1)  # element j alone, with the operations the map's row uses (O(1) after the row)
    hs = np.array([h])
    numeric = float(col.quotient(sch, hs).astype(storage)[0, 0])
    if sch.is_complex:
        point = complex(block.xw[0, j].astype(complex_dtype(storage)) + 1j * h)
        return numeric, (point,), (numeric * h,), (1.0,)  # Im l(x + ih) / D
    points, losses = [], []
    whole = block.rest is not None  # the values are whole losses, already divided by D
    for o in sch.offsets:
        lp = block.f0[0, 0] if o == 0.0 else col.losses(o * hs)[0, 0]
        points.append(complex(round_to(np.asarray(block.xw[0, j] + o * h), storage)))
        losses.append(float(lp) if whole else float(lp) / d if d else 0.0)
    return numeric, tuple(points), tuple(losses), tuple(w / sch.divisor for _, w in sch.stencil)


def _shift_parts(
    x: NDArray, terms: LossTerms, perturb: str, sch: Scheme, h: float, r: int, j: int
) -> tuple[float, tuple[complex, ...], tuple[float, ...], tuple[float, ...]]:
    """The pitfall's evaluation at one cell: the same :class:`ShiftEvaluator` the map uses."""
    storage = x.dtype
    ev = ShiftEvaluator(x, terms, perturb)
    hs = np.array([h])
    q = ev.quotients(sch, hs)[0]
    numeric = float(np.asarray(q[r] if perturb == "row" else q).astype(storage))
    # "row" shows the row loss / D (the quotient is divided by D); "all" shows the reduced loss itself.
    d = terms.denom if perturb == "row" and terms.reduction == "mean" else 1.0
    xw = x[r, j].astype(work_dtype(storage))
    if sch.is_complex:
        point = complex(x[r, j].astype(complex_dtype(storage)) + 1j * h)
        return numeric, (point,), (numeric * h,), (1.0,)
    points, losses = [], []
    for o in sch.offsets:
        v = ev.values(o, hs)[0]
        value = float(v[r] if perturb == "row" else v)
        points.append(complex(round_to(np.asarray(xw + o * h), storage)))
        losses.append(value / d if d else 0.0)
    return numeric, tuple(points), tuple(losses), tuple(w / sch.divisor for _, w in sch.stencil)
