"""A gallery of common softmax cross-entropy gradient bugs, each as runnable source beside the correct one.

NumPy entries define ``loss(logits, labels)`` (correct) and ``grad(logits, labels)`` (with one bug), so
checking it through :mod:`explorer.usercode.runner` shows the bug's error signature on the heatmaps.
PyTorch and JAX entries define only ``loss``, through a hand-written backward (a ``torch.autograd.Function``,
a ``jax.custom_vjp``): their gradient is the framework's autodiff (``grad_name`` is empty), which is what the
custom backward feeds. Labels have shape (N,); -100 marks an ignored row where the entry says so.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["MUTANTS", "Mutant"]

_PRELUDE = """import numpy as np


def softmax(logits):
    e = np.exp(logits - logits.max(axis=1, keepdims=True).real)
    return e / e.sum(axis=1, keepdims=True)


def log_softmax(logits):
    z = logits - logits.max(axis=1, keepdims=True).real
    return z - np.log(np.exp(z).sum(axis=1, keepdims=True))


def one_hot(labels, classes):
    out = np.zeros((len(labels), classes))
    out[np.arange(len(labels)), labels] = 1.0
    return out


def summed_cross_entropy(logits, labels):
    return -log_softmax(logits)[np.arange(len(labels)), labels].sum()
"""

_TORCH_PRELUDE = """import torch
import torch.nn.functional as F


def one_hot(labels, like):
    return F.one_hot(labels, like.shape[1]).to(like.dtype)
"""

_JAX_PRELUDE = """import jax
import jax.numpy as jnp


def one_hot(labels, like):
    return jax.nn.one_hot(labels, like.shape[1], dtype=like.dtype)
"""

_PRELUDES = {"numpy": _PRELUDE, "torch": _TORCH_PRELUDE, "jax": _JAX_PRELUDE}

_TORCH_CE = """
class CrossEntropy(torch.autograd.Function):
    @staticmethod
    def forward(ctx, logits, labels):
        log_p = torch.log_softmax(logits, dim=1)
        ctx.save_for_backward(log_p.exp(), labels)
        return -log_p[torch.arange(len(labels)), labels].sum()

    @staticmethod
    def backward(ctx, grad_output):
        p, labels = ctx.saved_tensors
        return grad_output * (p - one_hot(labels, p)), None
"""

_JAX_CE = """
@jax.custom_vjp
def cross_entropy(logits, target):
    return -(target * jax.nn.log_softmax(logits, axis=1)).sum()


def cross_entropy_fwd(logits, target):
    return cross_entropy(logits, target), (jax.nn.softmax(logits, axis=1), target)
"""


@dataclass(frozen=True)
class Mutant:
    """A gradient bug: a title, a paragraph on what goes wrong and what it looks like, and the source."""

    name: str
    title: str
    explanation: str
    body: str
    framework: str = "numpy"

    @property
    def source(self) -> str:
        """The whole runnable source: the framework's prelude and the body."""
        return _PRELUDES[self.framework] + "\n\n" + self.body.strip() + "\n"

    @property
    def grad_name(self) -> str:
        """``"grad"`` for NumPy entries; empty (the framework's autodiff) for PyTorch and JAX ones."""
        return "grad" if self.framework == "numpy" else ""


MUTANTS: dict[str, Mutant] = {
    m.name: m
    for m in (
        Mutant(
            "correct",
            "Correct (summed losses)",
            "The reference: the gradient of the summed cross-entropy is softmax(x) minus the one-hot "
            "target, row by row. Every element passes the check.",
            """
def loss(logits, labels):
    return summed_cross_entropy(logits, labels)


def grad(logits, labels):
    return softmax(logits) - one_hot(labels, logits.shape[1])
""",
        ),
        Mutant(
            "no_onehot",
            "Forgot to subtract the one-hot",
            "Returning softmax(x) alone drops the -1 on each row's label. Signature: the error map lights "
            "up exactly on the label cells, with errors of about 1, and the rows no longer sum to 0.",
            """
def loss(logits, labels):
    return summed_cross_entropy(logits, labels)


def grad(logits, labels):
    return softmax(logits)
""",
        ),
        Mutant(
            "mean_without_1_over_n",
            "Mean reduction without the 1/N",
            "The loss averages over the batch but the gradient is the per-sample one. Signature: the user "
            "gradient is exactly N times the numeric one everywhere; the relative error is (N - 1)/N in "
            "every cell.",
            """
def loss(logits, labels):
    return -log_softmax(logits)[np.arange(len(labels)), labels].mean()


def grad(logits, labels):
    return softmax(logits) - one_hot(labels, logits.shape[1])
""",
        ),
        Mutant(
            "weighted_mean_denominator",
            "Weighted mean divided by N",
            "With class weights, PyTorch's mean divides by the sum of the label classes' weights, not by N. "
            "Signature: every row is off by the same factor, sum(w[y]) / N, so the relative error is uniform.",
            """
def class_weights(classes):
    return np.linspace(0.5, 2.0, classes)


def loss(logits, labels):
    w = class_weights(logits.shape[1])[labels]
    return (w * -log_softmax(logits)[np.arange(len(labels)), labels]).sum() / w.sum()


def grad(logits, labels):
    w = class_weights(logits.shape[1])[labels]
    return w[:, None] * (softmax(logits) - one_hot(labels, logits.shape[1])) / len(labels)
""",
        ),
        Mutant(
            "smoothing_c_minus_1",
            "Label smoothing toward a/(C-1)",
            "PyTorch smooths toward a/C over all C classes (the label included); spreading a/(C-1) over the "
            "others is a different target. Signature: small errors of about a/(C(C-1)) off the label and "
            "about a/C on it, in every row.",
            """
SMOOTHING = 0.1


def loss(logits, labels):
    c = logits.shape[1]
    target = (1 - SMOOTHING) * one_hot(labels, c) + SMOOTHING / c
    return -(target * log_softmax(logits)).sum()


def grad(logits, labels):
    c = logits.shape[1]
    target = (1 - SMOOTHING) * one_hot(labels, c) + SMOOTHING / (c - 1) * (1 - one_hot(labels, c))
    return softmax(logits) - target
""",
        ),
        Mutant(
            "transposed",
            "Transposed gradient (column-major reshape)",
            "The gradient is built per class and flattened in the wrong order, so the numbers land in the "
            "wrong cells. Signature: large, scattered errors with no row structure; the shape still fits.",
            """
def loss(logits, labels):
    return summed_cross_entropy(logits, labels)


def grad(logits, labels):
    g = softmax(logits) - one_hot(labels, logits.shape[1])
    return g.T.reshape(logits.shape)
""",
        ),
        Mutant(
            "sign_flip",
            "Sign flipped",
            "one_hot - softmax is the gradient of the negative loss (the ascent direction). Signature: the "
            "analytic map is the numeric map with its colours swapped; the relative error is 2 everywhere.",
            """
def loss(logits, labels):
    return summed_cross_entropy(logits, labels)


def grad(logits, labels):
    return one_hot(labels, logits.shape[1]) - softmax(logits)
""",
        ),
        Mutant(
            "ignored_rows_not_zeroed",
            "Ignored rows not zeroed",
            "Rows whose label is the ignore index (-100) contribute nothing to the loss, so their gradient "
            "must be 0; this one still returns softmax for them. Signature: whole rows of errors exactly "
            "where the label is -100, and nowhere else.",
            """
IGNORE = -100


def loss(logits, labels):
    keep = labels != IGNORE
    safe = np.where(keep, labels, 0)
    return -(log_softmax(logits)[np.arange(len(labels)), safe] * keep).sum()


def grad(logits, labels):
    safe = np.where(labels != IGNORE, labels, 0)
    return softmax(logits) - one_hot(safe, logits.shape[1]) * (labels != IGNORE)[:, None]
""",
        ),
        Mutant(
            "log_of_underflowed_softmax",
            "Log of a softmax that underflowed",
            "Computing log(softmax(x)) in two steps: for large logit gaps a probability underflows to 0, its "
            "log is -inf, and the loss (and every difference quotient through it) is inf or NaN. Signature: "
            "NaN rows wherever a logit gap exceeds about 745 (float64); fine on mild logits, which is why it "
            "survives small tests. Use a log-softmax computed directly.",
            """
def loss(logits, labels):
    return -np.log(softmax(logits)[np.arange(len(labels)), labels]).sum()


def grad(logits, labels):
    return softmax(logits) - one_hot(labels, logits.shape[1])
""",
        ),
        Mutant(
            "torch_correct",
            "PyTorch: a correct custom autograd.Function",
            "A torch.autograd.Function whose backward returns grad_output times (softmax - one-hot), from the "
            "softmax it saved with ctx.save_for_backward. The check differences loss and compares "
            "torch.autograd.grad, which runs this backward: every element passes.",
            _TORCH_CE
            + """

def loss(logits, labels):
    return CrossEntropy.apply(logits, labels)
""",
            "torch",
        ),
        Mutant(
            "torch_ignores_grad_output",
            "PyTorch: backward ignores grad_output",
            "backward returns (softmax - one-hot) without multiplying by grad_output, the gradient of what "
            "comes after the Function. Alone it passes (grad_output is 1); here the loss divides the Function's "
            "sum by N outside it. Signature: your gradient is exactly N times the numeric one everywhere.",
            """
class CrossEntropy(torch.autograd.Function):
    @staticmethod
    def forward(ctx, logits, labels):
        log_p = torch.log_softmax(logits, dim=1)
        ctx.save_for_backward(log_p.exp(), labels)
        return -log_p[torch.arange(len(labels)), labels].sum()

    @staticmethod
    def backward(ctx, grad_output):
        p, labels = ctx.saved_tensors
        return p - one_hot(labels, p), None


def loss(logits, labels):
    return CrossEntropy.apply(logits, labels) / logits.shape[0]
""",
            "torch",
        ),
        Mutant(
            "torch_mean_without_1_over_n",
            "PyTorch: mean in forward, no 1/N in backward",
            "forward averages over the batch, backward returns the per-sample gradient. Signature: your "
            "gradient is N times the numeric one in every cell (relative error (N - 1)/N).",
            """
class CrossEntropy(torch.autograd.Function):
    @staticmethod
    def forward(ctx, logits, labels):
        log_p = torch.log_softmax(logits, dim=1)
        ctx.save_for_backward(log_p.exp(), labels)
        return -log_p[torch.arange(len(labels)), labels].mean()

    @staticmethod
    def backward(ctx, grad_output):
        p, labels = ctx.saved_tensors
        return grad_output * (p - one_hot(labels, p)), None


def loss(logits, labels):
    return CrossEntropy.apply(logits, labels)
""",
            "torch",
        ),
        Mutant(
            "torch_saved_modified_in_place",
            "PyTorch: a saved tensor modified in place",
            "forward keeps the softmax on ctx (not through ctx.save_for_backward, whose version check would "
            "have raised) and then takes its log in place to save memory, so backward reads log p where it "
            "expects p. Signature: errors in every cell, of size |log p - p|; the gradient's rows no longer sum "
            "to 0.",
            """
class CrossEntropy(torch.autograd.Function):
    @staticmethod
    def forward(ctx, logits, labels):
        p = torch.softmax(logits, dim=1)
        ctx.p, ctx.labels = p, labels
        return -p.log_()[torch.arange(len(labels)), labels].sum()  # overwrites ctx.p

    @staticmethod
    def backward(ctx, grad_output):
        return grad_output * (ctx.p - one_hot(ctx.labels, ctx.p)), None


def loss(logits, labels):
    return CrossEntropy.apply(logits, labels)
""",
            "torch",
        ),
        Mutant(
            "torch_recomputed_target",
            "PyTorch: labels not saved, target recomputed wrongly",
            "forward saves only the logits; backward, lacking the labels, recomputes the target as the "
            "predicted class (argmax). Signature: rows whose prediction is right pass; every other row has "
            "errors of 1 at two cells, its label and its argmax.",
            """
class CrossEntropy(torch.autograd.Function):
    @staticmethod
    def forward(ctx, logits, labels):
        ctx.save_for_backward(logits)
        log_p = torch.log_softmax(logits, dim=1)
        return -log_p[torch.arange(len(labels)), labels].sum()

    @staticmethod
    def backward(ctx, grad_output):
        (logits,) = ctx.saved_tensors
        p = torch.softmax(logits, dim=1)
        return grad_output * (p - one_hot(logits.argmax(dim=1), p)), None


def loss(logits, labels):
    return CrossEntropy.apply(logits, labels)
""",
            "torch",
        ),
        Mutant(
            "jax_correct",
            "JAX: a correct custom_vjp",
            "A jax.custom_vjp whose backward rule returns g times (softmax - target). The check differences "
            "loss and compares jax.grad, which runs this rule: every element passes.",
            _JAX_CE
            + """

def cross_entropy_bwd(saved, g):
    p, target = saved
    return g * (p - target), None


cross_entropy.defvjp(cross_entropy_fwd, cross_entropy_bwd)


def loss(logits, labels):
    return cross_entropy(logits, one_hot(labels, logits))
""",
            "jax",
        ),
        Mutant(
            "jax_transposed_cotangent",
            "JAX: custom_vjp with a transposed cotangent",
            "The backward rule builds the cotangent class by class and returns it transposed (reshaped back so "
            "the shape fits). Signature: large scattered errors with no row structure, as a transposed NumPy "
            "gradient.",
            _JAX_CE
            + """

def cross_entropy_bwd(saved, g):
    p, target = saved
    return (g * (p - target)).T.reshape(p.shape), None


cross_entropy.defvjp(cross_entropy_fwd, cross_entropy_bwd)


def loss(logits, labels):
    return cross_entropy(logits, one_hot(labels, logits))
""",
            "jax",
        ),
        Mutant(
            "jax_ignores_cotangent",
            "JAX: custom_vjp ignores the incoming cotangent",
            "The backward rule drops g, the cotangent of what follows; the loss averages the rule's sum over "
            "the batch. Signature: your gradient is N times the numeric one everywhere.",
            _JAX_CE
            + """

def cross_entropy_bwd(saved, g):
    p, target = saved
    return p - target, None


cross_entropy.defvjp(cross_entropy_fwd, cross_entropy_bwd)


def loss(logits, labels):
    return cross_entropy(logits, one_hot(labels, logits)) / logits.shape[0]
""",
            "jax",
        ),
    )
}
