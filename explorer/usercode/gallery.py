"""A gallery of common softmax cross-entropy gradient bugs, each as runnable source beside the correct one.

Each entry defines ``loss(logits, labels)`` (correct) and ``grad(logits, labels)`` (with one bug),
so checking it through :mod:`explorer.usercode.runner` shows the bug's error signature on the heatmaps.
Labels have shape (N,); -100 marks an ignored row where the entry says so.
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


@dataclass(frozen=True)
class Mutant:
    """A gradient bug: a title, a paragraph on what goes wrong and what it looks like, and the source."""

    name: str
    title: str
    explanation: str
    body: str

    @property
    def source(self) -> str:
        return _PRELUDE + "\n\n" + self.body.strip() + "\n"


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
    )
}
