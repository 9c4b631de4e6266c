"""Plain results shared by the recomputation, the views, the exports and the user-code checker. No Qt."""

from __future__ import annotations

from dataclasses import dataclass

from explorer.core import Sweep

__all__ = ["SweepResult"]


@dataclass(frozen=True)
class SweepResult:
    """Error-versus-eps curves for the window.

    Attributes
    ----------
    mode : str
        "cell" or "grid".
    cell : (i, j) or None
    sweeps : dict of str to Sweep
        Keyed by dtype name: the current dtype (all schemes), plus the other
        dtypes (current scheme only) when ``overlay`` is on.
    dtype, scheme : str
        The current dtype and scheme.
    eps : float
        The current step.
    overlay : bool
    user : bool
        The curves come from the user's own loss and gradient (see :mod:`explorer.usercode`).
    """

    mode: str
    cell: tuple[int, int] | None
    sweeps: dict[str, Sweep]
    dtype: str
    scheme: str
    eps: float
    overlay: bool
    user: bool = False
