"""Golden comparison with PyTorch's cross_entropy and autograd (skipped only when torch is absent)."""

from __future__ import annotations

import numpy as np
import pytest

from explorer.core import cross_entropy, cross_entropy_grad

torch = pytest.importorskip("torch")
F = torch.nn.functional

REL = 1e-12


def _random_case(rng: np.random.Generator) -> dict:
    n, c = int(rng.integers(1, 9)), int(rng.integers(1, 12))
    x = rng.normal(size=(n, c)) * rng.choice([0.1, 1.0, 10.0, 300.0])
    if rng.random() < 0.3:
        t = rng.random((n, c))
        t /= t.sum(axis=1, keepdims=True)
        ignore = -100
    else:
        ignore = int(rng.choice([-100, 0, 1]))
        t = rng.integers(0, c, n)
        drop = rng.random(n) < 0.25
        t[drop] = ignore
        t = np.where((t >= c) & (t != ignore), 0, t)
    kwargs = {
        "weight": rng.random(c) + 0.05 if rng.random() < 0.5 else None,
        "ignore_index": ignore,
        "reduction": str(rng.choice(["mean", "sum", "none"])),
        "label_smoothing": float(rng.choice([0.0, 0.05, 0.3, 1.0])),
    }
    return {"x": x, "t": t, "kwargs": kwargs}


def _torch_reference(x: np.ndarray, t: np.ndarray, kwargs: dict) -> tuple[np.ndarray, np.ndarray]:
    xt = torch.tensor(x, dtype=torch.float64, requires_grad=True)
    tt = torch.tensor(t)
    w = kwargs["weight"]
    loss = F.cross_entropy(
        xt,
        tt,
        weight=None if w is None else torch.tensor(w, dtype=torch.float64),
        ignore_index=kwargs["ignore_index"],
        reduction=kwargs["reduction"],
        label_smoothing=kwargs["label_smoothing"],
    )
    loss.sum().backward()
    return loss.detach().numpy(), xt.grad.numpy()


@pytest.mark.parametrize("seed", range(400))
def test_loss_and_gradient_match_torch(seed: int) -> None:
    case = _random_case(np.random.default_rng(seed))
    ref_loss, ref_grad = _torch_reference(case["x"], case["t"], case["kwargs"])
    loss = cross_entropy(case["x"], case["t"], **case["kwargs"])
    grad = cross_entropy_grad(case["x"], case["t"], **case["kwargs"])
    np.testing.assert_allclose(loss, ref_loss, rtol=REL, atol=1e-13, equal_nan=True)
    np.testing.assert_allclose(grad, ref_grad, rtol=REL, atol=1e-15)


def test_every_row_ignored_matches_torch() -> None:
    x = np.arange(12.0).reshape(3, 4)
    t = np.array([-100, -100, -100])
    for kwargs in ({}, {"label_smoothing": 0.2}, {"weight": np.array([1.0, 2.0, 3.0, 4.0])}):
        full = {"weight": None, "ignore_index": -100, "reduction": "mean", "label_smoothing": 0.0, **kwargs}
        ref_loss, ref_grad = _torch_reference(x, t, full)
        assert np.isnan(cross_entropy(x, t, **kwargs)) and np.isnan(ref_loss)
        np.testing.assert_array_equal(cross_entropy_grad(x, t, **kwargs), ref_grad)


@pytest.mark.parametrize("dtype", ["float32", "float16"])
def test_low_precision_loss_close_to_torch(dtype: str) -> None:
    rng = np.random.default_rng(7)
    x = (rng.normal(size=(16, 10)) * 4).astype(dtype)
    t = rng.integers(0, 10, 16)
    xt = torch.tensor(x, requires_grad=True)
    ref = F.cross_entropy(xt, torch.tensor(t), reduction="sum")
    ref.backward()
    u = float(np.finfo(dtype).eps)
    loss = cross_entropy(x, t, reduction="sum")
    grad = cross_entropy_grad(x, t, reduction="sum")
    assert loss.dtype == np.dtype(dtype) and grad.dtype == np.dtype(dtype)
    np.testing.assert_allclose(loss.astype(float), ref.detach().float().numpy(), rtol=4 * u)
    np.testing.assert_allclose(grad.astype(float), xt.grad.float().numpy(), rtol=0, atol=4 * u)
