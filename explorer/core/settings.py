"""The one settings object: every field of a check validated once, in one place.

The window's state, its controls, sessions, the command line and the exports all
build a :class:`CheckSettings` and pass it on; nothing else re-validates fields.
The loss options travel inside it as a typed :class:`LossOptions`.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypedDict

import numpy as np
from numpy.typing import NDArray

from ._dtypes import DTYPE_NAMES, resolve_dtype
from .errors import TOLERANCE_MODES, default_tolerances
from .losses import REDUCTIONS
from .schemes import EVALUATE_MODES, PERTURB_MODES, SCHEME_NAMES

__all__ = ["IGNORE_INDEX_RANGE", "CheckSettings", "LossKwargs", "LossOptions", "SettingsError"]

#: ``ignore_index`` must fit in an int64 label array.
IGNORE_INDEX_RANGE = (-(2**63), 2**63 - 1)


class SettingsError(ValueError):
    """A settings field has the wrong type or value; the message names the field and the value."""


class LossKwargs(TypedDict):
    """Keyword arguments of :func:`~explorer.core.cross_entropy` and friends, typed."""

    weight: NDArray | None
    ignore_index: int
    reduction: str
    label_smoothing: float


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _as_float(name: str, value: object, *, minimum: float | None = None, maximum: float | None = None) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise SettingsError(f"{name} must be a number, got {_short(value)}")
    try:
        v = float(value)
    except OverflowError:
        raise SettingsError(f"{name} is too large: {_short(value)}") from None
    if not math.isfinite(v):
        raise SettingsError(f"{name} must be a finite number, got {_short(value)}")
    if minimum is not None and v < minimum:
        raise SettingsError(f"{name} must be >= {minimum:g}, got {_short(value)}")
    if maximum is not None and v > maximum:
        raise SettingsError(f"{name} must be <= {maximum:g}, got {_short(value)}")
    return v


def _as_int(name: str, value: object) -> int:
    if isinstance(value, bool):
        raise SettingsError(f"{name} must be an integer, got {_short(value)}")
    whole_float = isinstance(value, float) and math.isfinite(value) and value.is_integer()
    if isinstance(value, numbers.Integral) or whole_float:
        v = int(value)  # type: ignore[call-overload]
    else:
        raise SettingsError(f"{name} must be an integer, got {_short(value)}")
    lo, hi = IGNORE_INDEX_RANGE
    if not lo <= v <= hi:
        raise SettingsError(f"{name} is out of range: {_short(value)}")
    return v


def _choice(name: str, value: object, allowed: tuple[str, ...]) -> str:
    if not isinstance(value, str) or value not in allowed:
        raise SettingsError(f"unknown {name} {_short(value)}; expected one of {', '.join(allowed)}")
    return str(value)


@dataclass(frozen=True)
class LossOptions:
    """The options of ``torch.nn.functional.cross_entropy``, validated.

    Attributes
    ----------
    reduction : str
        "mean", "sum" or "none" (the reductions live in :data:`explorer.core.REDUCTIONS`).
    label_smoothing : float
        In [0, 1].
    weight : tuple of float or None
        One finite weight >= 0 per class; its length is checked against the grid by
        :meth:`check_classes`.
    ignore_index : int
    """

    reduction: str = "sum"
    label_smoothing: float = 0.0
    weight: tuple[float, ...] | None = None
    ignore_index: int = -100

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        set_(self, "reduction", _choice("reduction", self.reduction, REDUCTIONS))
        set_(self, "label_smoothing", _as_float("label_smoothing", self.label_smoothing, minimum=0.0, maximum=1.0))
        set_(self, "ignore_index", _as_int("ignore_index", self.ignore_index))
        if self.weight is not None:
            w = self.weight
            if isinstance(w, str | bytes | Mapping) or not hasattr(w, "__iter__"):
                raise SettingsError(f"weight must be a list of numbers, got {_short(w)}")
            values = list(w)  # type: ignore[arg-type]
            if len(values) == 0:
                raise SettingsError("weight must hold one value per class, got an empty list")
            set_(self, "weight", tuple(_as_float("class weight", v, minimum=0.0) for v in values))

    def check_classes(self, n_classes: int) -> None:
        """Raise :class:`SettingsError` when the class weights do not fit ``n_classes`` classes."""
        if self.weight is not None and len(self.weight) != n_classes:
            raise SettingsError(f"class weights need {n_classes} values (one per class), got {len(self.weight)}")

    def kwargs(self) -> LossKwargs:
        """Keyword arguments for :func:`~explorer.core.cross_entropy` and the other loss functions."""
        weight = None if self.weight is None else np.asarray(self.weight, dtype=np.float64)
        return LossKwargs(
            weight=weight,
            ignore_index=self.ignore_index,
            reduction=self.reduction,
            label_smoothing=self.label_smoothing,
        )


_LOSS_FIELDS = ("reduction", "label_smoothing", "weight", "ignore_index")


@dataclass(frozen=True)
class CheckSettings:
    """Everything besides the logits and labels that a check depends on, validated on construction.

    Attributes
    ----------
    eps : float
        The step, finite and > 0.
    scheme : str
        One of :data:`explorer.core.SCHEME_NAMES`.
    dtype : str
        The canonical name of the storage dtype the logits are rounded to
        (``"float16"``, ``"bfloat16"``, ``"float32"``, ``"float64"``); aliases such as
        ``"f2"`` are refused so the tolerances are never looked up for the wrong dtype.
    perturb : str
        "element" (correct), or the pitfall modes "row" and "all".
    evaluate : str
        What each finite difference re-evaluates (see :data:`~explorer.core.EVALUATE_MODES`):
        "row" (each row's loss, the origin question's way; the default) or "loss" (the whole
        reduced loss, as ``torch.autograd.gradcheck`` does: the rounding of the sum over rows
        and of the batch mean enters every quotient). Applies to ``perturb="element"``.
    tolerance : str
        How the verdict decides (see :data:`~explorer.core.TOLERANCE_MODES`): "noise" (the
        default) passes an element when ``|num - ana|`` is within
        :data:`~explorer.core.NOISE_MULTIPLE` times the expected error of the numeric estimate
        at this eps, dtype, scheme and evaluate mode; "fixed" uses ``atol + rtol |ana|``.
        Giving ``atol`` or ``rtol`` makes it "fixed".
    reduction, label_smoothing, weight, ignore_index
        The loss options; :attr:`loss` holds them as one typed :class:`LossOptions`.
    atol, rtol : float or None
        Fixed verdict tolerances (finite, >= 0); None takes :func:`~explorer.core.default_tolerances`
        when ``tolerance="fixed"``.

    Raises
    ------
    SettingsError
        (a ``ValueError``) naming the first bad field.

    Examples
    --------
    >>> CheckSettings(eps=1e-4, scheme="forward").loss.reduction
    'sum'
    >>> CheckSettings(atol=1e-6).tolerance  # a tolerance the user gives decides
    'fixed'
    >>> CheckSettings(dtype="f2")
    Traceback (most recent call last):
    ...
    explorer.core.settings.SettingsError: unknown dtype 'f2'; expected one of float16, bfloat16, float32, float64
    """

    eps: float = 1e-5
    scheme: str = "central"
    dtype: str = "float64"
    perturb: str = "element"
    reduction: str = "sum"
    label_smoothing: float = 0.0
    weight: tuple[float, ...] | None = None
    ignore_index: int = -100
    atol: float | None = None
    rtol: float | None = None
    evaluate: str = "row"
    tolerance: str = "noise"

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        eps = _as_float("eps", self.eps)
        if eps <= 0.0:
            raise SettingsError(f"eps must be finite and > 0, got {_short(self.eps)}")
        set_(self, "eps", eps)
        set_(self, "scheme", _choice("scheme", self.scheme, SCHEME_NAMES))
        set_(self, "dtype", _choice("dtype", self.dtype, ALL_DTYPE_NAMES))
        if self.dtype == "bfloat16":
            try:
                resolve_dtype("bfloat16")
            except ValueError as exc:
                raise SettingsError(str(exc)) from None
        set_(self, "perturb", _choice("perturb mode", self.perturb, PERTURB_MODES))
        loss = LossOptions(self.reduction, self.label_smoothing, self.weight, self.ignore_index)
        for name in _LOSS_FIELDS:
            set_(self, name, getattr(loss, name))
        for name in ("atol", "rtol"):
            value = getattr(self, name)
            if value is not None:
                set_(self, name, _as_float(name, value, minimum=0.0))
        set_(self, "evaluate", _choice("evaluate mode", self.evaluate, EVALUATE_MODES))
        set_(self, "tolerance", _choice("tolerance", self.tolerance, TOLERANCE_MODES))
        if self.atol is not None or self.rtol is not None:
            set_(self, "tolerance", "fixed")  # tolerances the user gives are the ones used

    # ------------------------------------------------------------------ views
    @property
    def loss(self) -> LossOptions:
        """The loss options as one typed object."""
        return LossOptions(self.reduction, self.label_smoothing, self.weight, self.ignore_index)

    @property
    def loss_kwargs(self) -> LossKwargs:
        """Keyword arguments for the core's loss functions."""
        return self.loss.kwargs()

    @property
    def tolerances(self) -> tuple[float, float]:
        """The ``(atol, rtol)`` of the fixed verdict (in force when :attr:`tolerance` is "fixed")."""
        atol, rtol = default_tolerances(self.dtype)
        return (atol if self.atol is None else self.atol, rtol if self.rtol is None else self.rtol)

    # ----------------------------------------------------------- construction
    def replace(self, **changes: Any) -> CheckSettings:
        """A copy with some fields changed, validated again (all or nothing)."""
        unknown = sorted(set(changes) - FIELD_NAMES)
        if unknown:
            raise SettingsError(f"unknown setting {unknown[0]!r}")
        return dataclasses.replace(self, **changes)

    def check_classes(self, n_classes: int) -> None:
        """Raise :class:`SettingsError` when these settings do not fit a grid of ``n_classes`` classes."""
        self.loss.check_classes(n_classes)

    @classmethod
    def from_mapping(cls, fields: Mapping[str, object], base: CheckSettings | None = None) -> CheckSettings:
        """Settings from a mapping (a session's JSON, parsed CLI options): unknown keys are refused."""
        if not isinstance(fields, Mapping):
            raise SettingsError(f"settings must be a mapping of names to values, got {type(fields).__name__}")
        bad = sorted(str(k) for k in fields if k not in FIELD_NAMES)
        if bad:
            raise SettingsError(f"unknown setting {bad[0]!r}")
        return (base or cls()).replace(**{str(k): v for k, v in fields.items()})

    def to_mapping(self) -> dict[str, object]:
        """The fields as plain JSON-ready values (the inverse of :meth:`from_mapping`)."""
        out: dict[str, object] = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        if self.weight is not None:
            out["weight"] = list(self.weight)
        return out

    @classmethod
    def with_default_eps(cls, scheme: str = "central", dtype: str = "float64", **fields: Any) -> CheckSettings:
        """Settings whose ``eps`` is :func:`~explorer.core.default_eps` for the scheme and dtype."""
        from .sweep import default_eps

        _choice("scheme", scheme, SCHEME_NAMES)
        _choice("dtype", dtype, ALL_DTYPE_NAMES)
        return cls(eps=default_eps(scheme, dtype), scheme=scheme, dtype=dtype, **fields)


#: Every dtype a check may name; the window offers :data:`DTYPE_NAMES` (bfloat16 needs ml_dtypes).
ALL_DTYPE_NAMES: tuple[str, ...] = tuple(dict.fromkeys(("float16", "bfloat16", *DTYPE_NAMES)))
FIELD_NAMES: frozenset[str] = frozenset(f.name for f in dataclasses.fields(CheckSettings))
