"""The "noise" verdict: correct gradients pass everywhere, wrong ones fail where a check can tell."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from explorer.core import (
    NOISE_MULTIPLE,
    SCHEME_NAMES,
    CheckSettings,
    check_gradient,
    compare,
    estimate_noise,
    expected_error,
    noise_tolerance,
    numeric_grad,
)
from explorer.usercode.gallery import MUTANTS

#: The gallery's NumPy entries: ``loss`` and ``grad`` functions this test can call in-process (the PyTorch
#: and JAX entries differentiate with the framework's autodiff; the user-code path checks those).
NUMPY_MUTANTS = [name for name, m in MUTANTS.items() if getattr(m, "framework", "numpy") == "numpy"]

DTYPES = ("float16", "bfloat16", "float32", "float64")
SIZES = ((3, 10), (64, 512), (128, 1000), (16, 100))
COMBOS = list(itertools.product(DTYPES, ("sum", "mean"), ("row", "loss"), SCHEME_NAMES))


def _random_problem(seed: int, n: int, c: int) -> tuple[np.ndarray, np.ndarray, dict]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, c)) * rng.choice([0.1, 1.0, 3.0, 10.0])
    y = rng.integers(0, c, n)
    extra: dict = {}
    if rng.random() < 0.25:
        extra["label_smoothing"] = 0.1
    if rng.random() < 0.25:
        extra["weight"] = tuple(rng.random(c) + 0.1)
    if rng.random() < 0.25 and n > 2:
        y[:2] = -100
    return x, y, extra


PROBLEMS = [(k, rep, combo) for k, combo in enumerate(COMBOS) for rep in range(3)]  # 240 problems


@pytest.mark.parametrize("chunk", range(4))
def test_correct_gradients_pass_in_every_setting(chunk: int) -> None:
    """240 problems (every dtype, reduction, evaluate mode and scheme at its default eps; up to 128 x 1000)."""
    mine = PROBLEMS[chunk::4]
    for k, rep, (dtype, reduction, evaluate, scheme) in mine:
        n, c = SIZES[(k + rep) % len(SIZES)]
        x, y, extra = _random_problem(100 * k + rep, n, c)
        settings = CheckSettings.with_default_eps(scheme, dtype, reduction=reduction, evaluate=evaluate, **extra)
        report = check_gradient(x, y, settings)
        assert report.tolerance_mode == "noise"
        assert report.ok, (settings, report.comparison.n_failed, report.worst)
        # The model is a bound: no element even reaches the expected error itself.
        assert np.all(report.abs_err <= report.expected_error), settings
    assert len(mine) == 60


def _mean_64_by_512(dtype: str) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(5)
    return rng.normal(size=(64, 512)).astype(dtype), rng.integers(0, 512, 64)


@pytest.mark.parametrize("scheme", ["central", "central4", "complex"])
@pytest.mark.parametrize("evaluate", ["row", "loss"])
@pytest.mark.parametrize(("dtype", "factor"), [("float32", 1.02), ("float64", 1 + 1e-6)])
def test_a_slightly_scaled_gradient_fails(dtype: str, factor: float, evaluate: str, scheme: str) -> None:
    x, y = _mean_64_by_512(dtype)
    report = check_gradient(x, y, CheckSettings.with_default_eps(scheme, dtype, reduction="mean", evaluate=evaluate))
    assert report.ok
    wrong = report.grad_analytic.astype(np.float64) * factor
    verdict = compare(report.grad_numeric, wrong, tolerance=report.tolerance_map)
    assert not verdict.ok


def test_the_fixed_verdicts_two_complaints_are_gone() -> None:
    rng = np.random.default_rng(3)
    # float16, sum, 64 x 512, eps 1e-2: the fixed tolerance fails a correct gradient, the noise verdict passes it.
    x, y = rng.normal(size=(64, 512)), rng.integers(0, 512, 64)
    fixed = check_gradient(x, y, CheckSettings(eps=1e-2, dtype="float16", tolerance="fixed"))
    noise = check_gradient(x, y, CheckSettings(eps=1e-2, dtype="float16"))
    assert not fixed.ok and noise.ok
    # float32, mean, 128 x 1000: off-label gradients ~1e-5 under atol 1e-3, so making them 1.5 times too large passes.
    x, y = rng.normal(size=(128, 1000)), rng.integers(0, 1000, 128)
    for tolerance, should_pass in (("fixed", True), ("noise", False)):
        settings = CheckSettings.with_default_eps("central", "float32", reduction="mean", tolerance=tolerance)
        report = check_gradient(x, y, settings)
        wrong = report.grad_analytic * 1.5
        wrong[np.arange(128), y] = report.grad_analytic[np.arange(128), y]
        verdict = compare(report.grad_numeric, wrong, tolerance=report.tolerance_map)
        assert report.ok and verdict.ok is should_pass, tolerance


def test_given_tolerances_make_the_verdict_fixed() -> None:
    x, y = np.array([[1.0, 2.0, 3.0]]), np.array([0])
    report = check_gradient(x, y, CheckSettings(atol=1e-3, rtol=0.5))
    assert report.settings.tolerance == "fixed" and report.tolerance_mode == "fixed"
    np.testing.assert_array_equal(report.tolerance_map, 1e-3 + 0.5 * np.abs(report.grad_analytic))
    noise = check_gradient(x, y)
    expected = expected_error(x, y, "central", 1e-5, reduction="sum")
    np.testing.assert_array_equal(noise.expected_error, expected)
    np.testing.assert_array_equal(noise.tolerance_map, noise_tolerance(expected, "float64"))
    assert noise_tolerance(1.0, "float64") == pytest.approx(NOISE_MULTIPLE)


def test_exact_zeros_pass_on_the_floor() -> None:
    x, y = np.zeros((2, 3)), np.array([-100, -100])  # every row ignored: both gradients are exactly 0
    report = check_gradient(x, y, CheckSettings(reduction="mean"))
    assert report.ok and np.all(report.expected_error == 0) and np.all(report.tolerance_map > 0)


# --------------------------------------------------------------------------- the gallery's bugs

_CORE_SETTINGS = {
    "mean_without_1_over_n": {"reduction": "mean"},
    "weighted_mean_denominator": {"reduction": "mean"},
    "smoothing_c_minus_1": {"label_smoothing": 0.1},
}


def _gallery_problem(name: str, dtype: str) -> tuple[np.ndarray, np.ndarray, dict]:
    rng = np.random.default_rng(11)
    n, c = 16, 10
    x, y = rng.normal(size=(n, c)) * 3, rng.integers(0, c, n)
    if name == "ignored_rows_not_zeroed":
        y[[2, 7]] = -100
    if name == "log_of_underflowed_softmax":
        x[:, 0] += 2000 if dtype == "float64" else 300  # gaps beyond exp's range in the dtype
    kw: dict = {"reduction": "sum", **_CORE_SETTINGS.get(name, {})}
    if name == "weighted_mean_denominator":
        kw["weight"] = tuple(np.linspace(0.5, 2.0, c))
    return x.astype(dtype), y, kw


def _load(name: str) -> dict:
    namespace: dict = {}
    exec(MUTANTS[name].source, namespace)  # the gallery's own source, run in-process
    return namespace


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", NUMPY_MUTANTS)
def test_gallery_through_the_core(name: str, dtype: str) -> None:
    """Each bug's gradient against the core's numeric gradient of the loss it claims to differentiate."""
    code = _load(name)
    x, y, kw = _gallery_problem(name, dtype)
    report = check_gradient(x, y, CheckSettings.with_default_eps("central", dtype, **kw))
    assert report.ok
    grad = np.asarray(code["grad"](x, y), dtype=np.float64)
    verdict = compare(report.grad_numeric, grad, tolerance=report.tolerance_map)
    # The last bug is in the loss, not the gradient: the core's loss is right, so only the black box sees it.
    assert verdict.ok is (name in ("correct", "log_of_underflowed_softmax"))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", NUMPY_MUTANTS)
def test_gallery_through_the_black_box_estimate(name: str, dtype: str) -> None:
    """The user-code path: finite differences of *their* loss at two steps, the noise estimated from them."""
    code = _load(name)
    x, y, _ = _gallery_problem(name, dtype)
    h = CheckSettings.with_default_eps("central", dtype).eps

    def loss(v: np.ndarray) -> object:
        return code["loss"](v, y)

    with np.errstate(all="ignore"):  # the underflow bug's loss is inf
        g_h, g_2h = numeric_grad(loss, x, h), numeric_grad(loss, x, 2 * h)
        loss_abs = abs(float(loss(x)))
        grad = np.asarray(code["grad"](x, y), dtype=np.float64)
    tol = noise_tolerance(estimate_noise(g_h, g_2h, h, loss_abs, "central", dtype), dtype)
    assert compare(g_h, grad, tolerance=tol).ok is (name == "correct")


@pytest.mark.parametrize("scheme", ["forward", "central", "central4"])
def test_black_box_estimate_covers_truncation_at_a_large_step(scheme: str) -> None:
    rng = np.random.default_rng(2)
    x, y = rng.normal(size=(4, 5)), rng.integers(0, 5, 4)
    settings = CheckSettings(eps=0.05, scheme=scheme)
    report = check_gradient(x, y, settings)
    g_2h = check_gradient(x, y, settings.replace(eps=0.1)).grad_numeric
    est = estimate_noise(report.grad_numeric, g_2h, 0.05, abs(report.loss), scheme)
    assert np.all(report.abs_err <= NOISE_MULTIPLE * est)
    assert np.median(est) < 10 * np.median(report.expected_error)  # not absurdly loose either


def test_estimate_noise_refuses_equal_steps() -> None:
    with pytest.raises(ValueError, match="two different"):
        estimate_noise(np.zeros(2), np.zeros(2), 1e-3, 1.0, eps_2=1e-3)
