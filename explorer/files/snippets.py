"""*Copy as code*: a runnable NumPy script that reproduces the current check."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from explorer.core import CheckSettings

__all__ = ["code_snippet"]


#: Most logits a reproducing script writes out as text (beyond this it would be megabytes of digits).
SNIPPET_MAX_CELLS = 1 << 16


def code_snippet(logits: ArrayLike, labels: ArrayLike, settings: CheckSettings) -> str:
    """A short runnable script that reproduces the check with the core (and without it, in plain NumPy).

    Examples
    --------
    >>> "cross_entropy_numeric_grad" in code_snippet([[0.0, 1.0]], [1], CheckSettings())
    True
    """
    x = np.asarray(logits, dtype=np.float64)
    y = np.asarray(labels, dtype=np.int64)
    if x.size > SNIPPET_MAX_CELLS:
        raise ValueError(
            f"a script holds grids of at most {SNIPPET_MAX_CELLS:,} logits as text; this one has {x.size:,}: "
            "save the session (.gradexp.npz) or export the data (.npz) and load that instead"
        )
    weight = "None" if settings.weight is None else f"np.array({list(settings.weight)!r})"
    rows = ",\n    ".join("[" + ", ".join(repr(float(v)) for v in row) + "]" for row in x)
    loss_kw = (
        f"weight=weight, ignore_index={settings.ignore_index}, reduction={settings.reduction!r}, "
        f"label_smoothing={settings.label_smoothing!r}"
    )
    what = f"{x.shape[0]} x {x.shape[1]}, {settings.scheme}, eps={settings.eps!r}"
    return f"""# Reproduces a Gradient Explorer check ({what}).
import numpy as np
from explorer.core import cross_entropy, cross_entropy_grad, cross_entropy_numeric_grad, compare

logits = np.array([
    {rows},
], dtype="{settings.dtype}")
labels = np.array({y.tolist()!r})
weight = {weight}
loss = cross_entropy(logits, labels, {loss_kw})
grad_analytic = cross_entropy_grad(logits, labels, {loss_kw})
grad_numeric = cross_entropy_numeric_grad(
    logits, labels, {settings.eps!r}, {settings.scheme!r}, {settings.perturb!r}, {loss_kw}
)
result = compare(grad_numeric, grad_analytic, atol={settings.tolerances[0]!r}, rtol={settings.tolerances[1]!r})
print("loss", float(loss), "max abs error", result.max_abs_err, "worst cell", result.worst, "ok", result.ok)
"""
