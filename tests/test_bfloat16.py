"""bfloat16 wherever a dtype is chosen, with PyTorch's CPU semantics (rounded logits, float32 arithmetic)."""

from __future__ import annotations

import numpy as np
import pytest

from explorer.core import (
    DTYPE_NAMES,
    DTYPE_SEMANTICS,
    CheckSettings,
    check_gradient,
    cross_entropy,
    cross_entropy_grad,
    default_eps,
    dtype_max,
    eps_sweep,
    explain_cell,
    resolve_dtype,
    ulp,
)

ml_dtypes = pytest.importorskip("ml_dtypes")
BF16 = np.dtype(ml_dtypes.bfloat16)


def test_bfloat16_is_offered_and_named() -> None:
    assert "bfloat16" in DTYPE_NAMES and set(DTYPE_SEMANTICS) == set(DTYPE_NAMES)
    assert resolve_dtype("bfloat16") == BF16
    assert dtype_max("bfloat16") == pytest.approx(3.39e38, rel=1e-2)
    assert default_eps("central", "bfloat16") == 0.1
    assert CheckSettings(dtype="bfloat16").dtype == "bfloat16"


@pytest.mark.parametrize("reduction", ["sum", "mean"])
def test_loss_and_gradient_match_torch_bfloat16(reduction: str) -> None:
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(4)
    x = rng.normal(size=(32, 10)) * 3
    t = rng.integers(0, 10, 32)
    xt = torch.tensor(x).to(torch.bfloat16).requires_grad_(True)
    ref = torch.nn.functional.cross_entropy(xt, torch.tensor(t), reduction=reduction)
    ref.backward()
    report = check_gradient(x, t, CheckSettings.with_default_eps("central", "bfloat16", reduction=reduction))
    # The logits are rounded as torch rounds them, and every result comes back in bfloat16.
    np.testing.assert_array_equal(report.logits.astype(np.float32), xt.detach().float().numpy())
    assert report.logits.dtype == BF16 and report.grad_analytic.dtype == BF16 and report.grad_numeric.dtype == BF16
    loss = cross_entropy(report.logits, t, reduction=reduction)
    assert loss.dtype == BF16
    ref_loss = float(ref.detach().float())
    assert abs(float(loss) - ref_loss) <= float(ulp(ref_loss, "bfloat16"))
    # torch rounds log_softmax to bfloat16 before its backward (p = exp(bf16(log p))), which costs it a few
    # ulp per element; the gradients agree within one ulp of the largest.
    grad = cross_entropy_grad(report.logits, t, reduction=reduction).astype(np.float64)
    ref_grad = xt.grad.float().numpy().astype(np.float64)
    assert np.max(np.abs(grad - ref_grad)) <= float(ulp(np.max(np.abs(ref_grad)), "bfloat16"))
    assert report.ok and report.tolerance_mode == "noise"


def test_bfloat16_rounds_what_float32_computes() -> None:
    rng = np.random.default_rng(1)
    x = rng.normal(size=(5, 7)).astype(BF16)
    t = rng.integers(0, 7, 5)
    in32 = cross_entropy_grad(x.astype(np.float32), t)
    np.testing.assert_array_equal(cross_entropy_grad(x, t), in32.astype(BF16))


def test_bfloat16_inspector_sweep_and_maps_agree() -> None:
    rng = np.random.default_rng(2)
    x, t = rng.normal(size=(6, 5)), rng.integers(0, 5, 6)
    for evaluate in ("row", "loss"):
        settings = CheckSettings.with_default_eps("central", "bfloat16", evaluate=evaluate)
        report = check_gradient(x, t, settings)
        e = explain_cell(x, t, (2, 3), settings)
        assert e.numeric == report.grad_numeric[2, 3] and e.tolerance == report.tolerance_map[2, 3]
        sweep = eps_sweep(report.logits, t, (2, 3), include_eps=settings.eps, evaluate=evaluate, **settings.loss_kwargs)
        k = sweep.index_of(settings.eps)
        assert sweep.dtype == "bfloat16" and sweep.numeric["central"][k] == report.grad_numeric[2, 3]
        assert sweep.models["central"].best_eps > 1e-3  # bfloat16's u = 2**-8 wants a large step


def test_bfloat16_has_a_coarser_noise_than_float16() -> None:
    rng = np.random.default_rng(3)
    x, t = rng.normal(size=(8, 10)), rng.integers(0, 10, 8)
    e = {
        dt: np.median(check_gradient(x, t, CheckSettings(eps=0.1, dtype=dt)).expected_error)
        for dt in ("float16", "bfloat16")
    }
    assert e["bfloat16"] > 4 * e["float16"]  # 3 fewer significand bits
