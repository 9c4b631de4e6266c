"""Pure-NumPy core of Gradient Explorer: losses, gradients, finite differences, error analysis.

Nothing here imports Qt; a test enforces it.
"""

from __future__ import annotations

from ._dtypes import DTYPE_NAMES, DTYPE_SEMANTICS, dtype_max, resolve_dtype, unit_roundoff
from .diagnose import CellFlags, cell_flags, diagnose, min_surviving_eps
from .errors import DEFAULT_TOLERANCES, TOLERANCE_MODES, Comparison, compare, default_tolerances, worst_cells
from .explain import CellExplanation, explain_cell
from .losses import (
    REDUCTIONS,
    cross_entropy,
    cross_entropy_grad,
    log_softmax,
    loss_terms,
    reduction_denominator,
    softmax,
)
from .noise import NOISE_MULTIPLE, NoiseParts, estimate_noise, expected_error, noise_floor, noise_tolerance, ulp
from .numeric import check_eps, cross_entropy_numeric_grad, numeric_grad
from .overview import OVERVIEW_KINDS, OverviewImage, Pyramid, extreme_of
from .partial import RowPatch, RowSummary, compute_rows, prepare, row_local_refusal, update_rows
from .report import Report, check_gradient
from .schemes import EVALUATE_MODES, PERTURB_MODES, SCHEME_NAMES, SCHEMES, Scheme, get_scheme
from .settings import CheckSettings, LossOptions, SettingsError
from .sweep import EPS_MAX, EPS_MIN, ErrorModel, Sweep, default_eps, eps_grid, eps_sweep, error_model

__all__ = [
    "DEFAULT_TOLERANCES",
    "DTYPE_NAMES",
    "DTYPE_SEMANTICS",
    "EPS_MAX",
    "EPS_MIN",
    "EVALUATE_MODES",
    "NOISE_MULTIPLE",
    "OVERVIEW_KINDS",
    "PERTURB_MODES",
    "REDUCTIONS",
    "SCHEMES",
    "SCHEME_NAMES",
    "TOLERANCE_MODES",
    "CellExplanation",
    "CellFlags",
    "CheckSettings",
    "Comparison",
    "ErrorModel",
    "LossOptions",
    "NoiseParts",
    "OverviewImage",
    "Pyramid",
    "Report",
    "RowPatch",
    "RowSummary",
    "Scheme",
    "SettingsError",
    "Sweep",
    "cell_flags",
    "check_eps",
    "check_gradient",
    "compare",
    "compute_rows",
    "cross_entropy",
    "cross_entropy_grad",
    "cross_entropy_numeric_grad",
    "default_eps",
    "default_tolerances",
    "diagnose",
    "dtype_max",
    "eps_grid",
    "eps_sweep",
    "error_model",
    "estimate_noise",
    "expected_error",
    "explain_cell",
    "extreme_of",
    "get_scheme",
    "log_softmax",
    "loss_terms",
    "min_surviving_eps",
    "noise_floor",
    "noise_tolerance",
    "numeric_grad",
    "prepare",
    "reduction_denominator",
    "resolve_dtype",
    "row_local_refusal",
    "softmax",
    "ulp",
    "unit_roundoff",
    "update_rows",
    "worst_cells",
]
