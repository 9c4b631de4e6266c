"""Finite-difference schemes: the one place where scheme names and stencils live.

A real scheme approximates ``f'(x)`` by a weighted sum of ``f`` at points
``x + offset * h`` divided by ``h``. The complex step evaluates ``f`` once at
``x + i h`` and takes ``Im f / h``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["EVALUATE_MODES", "PERTURB_MODES", "SCHEMES", "SCHEME_NAMES", "Scheme", "get_scheme"]


@dataclass(frozen=True)
class Scheme:
    """A difference scheme and the constants of its textbook error model.

    Attributes
    ----------
    name : str
        The core's name for the scheme (``"central"``, ...).
    label : str
        A short human-readable label.
    offsets, weights : tuple of float
        The stencil, in its textbook form with integer weights over a common
        divisor: ``f'(x) ~ sum(w * f(x + o * h)) / (divisor * h)``, for example
        ``(-f(x+2h) + 8 f(x+h) - 8 f(x-h) + f(x-2h)) / (12 h)``. Empty for the
        complex step.
    divisor : float
    order : int
        Order of accuracy ``p``: the truncation error is ``~ h**p``.
    truncation_coef : float
        ``c_t`` in the leading truncation error ``c_t * h**p * |f^(p+1)(x)|``.
    rounding_coef : float
        ``c_r`` in the rounding error ``c_r * u * |f| / h`` (``sum |w|``, the
        worst case of each evaluation rounded by ``u``). For the complex step
        there is no cancellation and the rounding error is ``c_r * u * |f'|``.
    """

    name: str
    label: str
    offsets: tuple[float, ...]
    weights: tuple[float, ...]
    divisor: float
    order: int
    truncation_coef: float
    rounding_coef: float

    @property
    def stencil(self) -> tuple[tuple[float, float], ...]:
        """``(offset, weight)`` pairs."""
        return tuple(zip(self.offsets, self.weights, strict=True))

    @property
    def expected_rounding_coef(self) -> float:
        """``c_r`` for the *expected* rounding error: each evaluated value off by a uniform
        error of standard deviation ``u |f| / sqrt(3)``, combined in quadrature
        (``sqrt(sum w**2) / (divisor sqrt(3))``), instead of the worst case ``sum |w| / divisor``."""
        if self.is_complex:
            return 1 / math.sqrt(3)
        return math.sqrt(sum(w * w for w in self.weights)) / (self.divisor * math.sqrt(3))

    @property
    def is_complex(self) -> bool:
        """True for the complex-step scheme."""
        return not self.offsets


SCHEMES: dict[str, Scheme] = {
    s.name: s
    for s in (
        Scheme("forward", "Forward", (1.0, 0.0), (1.0, -1.0), 1.0, 1, 1 / 2, 2.0),
        Scheme("backward", "Backward", (0.0, -1.0), (1.0, -1.0), 1.0, 1, 1 / 2, 2.0),
        Scheme("central", "Central", (1.0, -1.0), (1.0, -1.0), 2.0, 2, 1 / 6, 1.0),
        Scheme(
            "central4",
            "Central, 4th order (5-point)",
            (2.0, 1.0, -1.0, -2.0),
            (-1.0, 8.0, -8.0, 1.0),
            12.0,
            4,
            1 / 30,
            18 / 12,
        ),
        # No cancellation between evaluations; the few roundings that form Im f / h
        # (argument, product, difference) stay relative to the gradient's scale.
        Scheme("complex", "Complex step", (), (), 1.0, 2, 1 / 6, 3.0),
    )
}
SCHEME_NAMES: tuple[str, ...] = tuple(SCHEMES)

#: How a finite difference perturbs the input: one element at a time (correct),
#: a whole row at once, or the whole matrix at once (the origin question's mistake).
PERTURB_MODES: tuple[str, ...] = ("element", "row", "all")

#: What a finite difference re-evaluates: each row's loss (``"row"``, the origin question's way and
#: the fastest) or the whole reduced loss (``"loss"``, as ``torch.autograd.gradcheck``,
#: ``jax.test_util.check_grads`` and most hand-written checks do), which also carries the rounding
#: of the sum over rows and of the batch mean.
EVALUATE_MODES: tuple[str, ...] = ("row", "loss")


def get_scheme(name: str | Scheme) -> Scheme:
    """Look up a scheme by name.

    Parameters
    ----------
    name : str or Scheme
        One of :data:`SCHEME_NAMES`.

    Returns
    -------
    Scheme

    Raises
    ------
    ValueError
        If the name is unknown; the message names it and lists the valid ones.

    Examples
    --------
    >>> get_scheme("central4").order
    4
    """
    if isinstance(name, Scheme):
        return name
    try:
        return SCHEMES[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown scheme {name!r}; expected one of {', '.join(SCHEME_NAMES)}") from None
