"""Bad input raises ValueError naming the bad value; nothing else leaks out."""

from __future__ import annotations

import numpy as np
import pytest

from explorer.core import (
    CheckSettings,
    compare,
    cross_entropy,
    cross_entropy_grad,
    cross_entropy_numeric_grad,
    default_eps,
    eps_sweep,
    get_scheme,
    numeric_grad,
    resolve_dtype,
)

X = np.zeros((2, 3))
Y = np.array([0, 2])


@pytest.mark.parametrize("scheme", ["centre", "", None, "CENTRAL"])
def test_unknown_scheme(scheme: object) -> None:
    with pytest.raises(ValueError, match=repr(scheme).replace("(", r"\(")):
        cross_entropy_numeric_grad(X, Y, 1e-5, scheme)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="unknown scheme"):
        numeric_grad(np.sum, X, 1e-5, scheme)  # type: ignore[arg-type]


@pytest.mark.parametrize("eps", [0.0, -1e-5, float("nan"), float("inf"), "abc", None])
def test_bad_eps(eps: object) -> None:
    with pytest.raises(ValueError, match="eps must"):
        cross_entropy_numeric_grad(X, Y, eps)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="eps must"):
        CheckSettings(eps=eps)  # type: ignore[arg-type]


@pytest.mark.parametrize("labels", [np.array([0, 3]), np.array([-1, 0]), np.array([0, 7])])
def test_label_out_of_range(labels: np.ndarray) -> None:
    bad = int(labels[(labels < 0) | (labels >= 3)][0])
    for fn in (cross_entropy, cross_entropy_grad):
        with pytest.raises(ValueError, match=f"label {bad} in row"):
            fn(X, labels)


@pytest.mark.parametrize(
    ("x", "y"),
    [(np.zeros((2, 3)), np.array([0, 1, 2])), (np.zeros(3), np.array([0])), (np.zeros((2, 3)), np.zeros((2, 4)))],
)
def test_mismatched_shapes(x: np.ndarray, y: np.ndarray) -> None:
    with pytest.raises(ValueError, match=r"shape|labels"):
        cross_entropy(x, y)


@pytest.mark.parametrize("s", [-0.1, 1.5, float("nan")])
def test_label_smoothing_outside_unit_interval(s: float) -> None:
    with pytest.raises(ValueError, match="label_smoothing"):
        cross_entropy(X, Y, label_smoothing=s)


def test_other_bad_options() -> None:
    with pytest.raises(ValueError, match="reduction 'avg'"):
        cross_entropy(X, Y, reduction="avg")
    with pytest.raises(ValueError, match="weight must have shape"):
        cross_entropy(X, Y, weight=np.ones(4))
    with pytest.raises(ValueError, match="integers"):
        cross_entropy(X, np.array([0.5, 1.0]))
    with pytest.raises(ValueError, match="dtype 'float8'"):
        resolve_dtype("float8")
    with pytest.raises(ValueError, match="perturb mode"):
        cross_entropy_numeric_grad(X, Y, 1e-5, perturb="columns")
    with pytest.raises(ValueError, match="outside the grid"):
        eps_sweep(X, Y, cell=(5, 0))
    with pytest.raises(ValueError, match="tolerances"):
        compare(X, X, atol=-1.0)
    with pytest.raises(ValueError, match="unknown scheme"):
        default_eps("sideways")


def test_get_scheme_lists_the_valid_names() -> None:
    with pytest.raises(ValueError, match="forward, backward, central, central4, complex"):
        get_scheme("nope")


def test_extreme_logits_float64_no_warnings() -> None:
    x = np.array([[1000.0, -1000.0, 0.0], [-1000.0, 1000.0, 999.0]])
    y = np.array([1, 0])
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        loss = cross_entropy(x, y, reduction="none")
        grad = cross_entropy_grad(x, y)
        num = cross_entropy_numeric_grad(x, y, 1e-5)
    np.testing.assert_allclose(loss, [2000.0, 2000.0 + np.log1p(np.exp(-1.0))])
    assert np.all(np.isfinite(grad)) and np.all(np.isfinite(num))
