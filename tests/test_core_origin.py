"""The origin question (../shared/origin/question.txt), reproduced and answered by the core."""

from __future__ import annotations

import numpy as np
import pytest

from explorer.core import check_gradient, cross_entropy, cross_entropy_grad, cross_entropy_numeric_grad, numeric_grad
from explorer.core.report import CheckSettings

BATCH, CLASSES, EPS = 3, 10, 1e-5


# The question's own functions, kept as written (a global `classes`, integer logits).
classes = CLASSES


def softmax(a):
    epowa = np.exp(a - np.max(a, axis=1, keepdims=True))
    return epowa / np.sum(epowa, axis=1, keepdims=True)


def softmax_crossentropy(a, y):
    y_one_hot = np.eye(classes)[y[:, 0]]
    return -np.sum(y_one_hot * np.log(softmax(a)), axis=1)


def grad_softmax_crossentropy(a, y):
    y_one_hot = np.eye(classes)[y[:, 0]]
    return softmax(a) - y_one_hot


@pytest.fixture(params=range(20))
def origin_case(request: pytest.FixtureRequest) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(request.param)
    a = rng.integers(1, 100, (BATCH, CLASSES))
    y = rng.integers(0, CLASSES, (BATCH, 1))
    return a, y


def test_the_questions_mistake_gives_zeros(origin_case: tuple) -> None:
    a, y = origin_case
    shifted_all = (softmax_crossentropy(a + EPS, y) - softmax_crossentropy(a, y)) / EPS
    assert np.all(np.abs(shifted_all) < 1e-6)
    # The core reproduces it: perturbing the whole matrix (or a whole row) at once.
    for mode in ("all", "row"):
        q = cross_entropy_numeric_grad(a, y[:, 0], EPS, "central", mode, reduction="sum")
        assert np.all(np.abs(q) < 1e-6), mode


def test_per_element_central_differences_match_the_analytic_gradient(origin_case: tuple) -> None:
    a, y = origin_case
    labels = y[:, 0]
    analytic = cross_entropy_grad(a, labels, reduction="sum")
    np.testing.assert_allclose(analytic, grad_softmax_crossentropy(a.astype(float), y), atol=1e-15)
    numeric = cross_entropy_numeric_grad(a, labels, EPS, "central", reduction="sum")
    assert numeric.dtype == np.float64  # integer logits are never truncated
    np.testing.assert_allclose(numeric, analytic, rtol=1e-7, atol=1e-7)
    # The black box on the question's own (per-sample vector) loss agrees too.
    theirs = numeric_grad(lambda v: softmax_crossentropy(v, y), a, EPS, "central")
    np.testing.assert_allclose(theirs, analytic, rtol=1e-7, atol=1e-7)
    assert check_gradient(a, labels, CheckSettings(eps=EPS, reduction="sum")).ok


def test_integer_logits_are_not_truncated() -> None:
    a = np.array([[1, 2, 3]])
    g = numeric_grad(lambda v: cross_entropy(v, np.array([0]), reduction="sum"), a, 1e-5)
    assert g.dtype == np.float64
    assert np.all(g != 0)
