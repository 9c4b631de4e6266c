"""evaluate="row" and evaluate="loss" against plain re-evaluations: what a user's own check will see."""

from __future__ import annotations

import numpy as np
import pytest

from explorer.core import (
    EVALUATE_MODES,
    CheckSettings,
    SettingsError,
    check_gradient,
    cross_entropy,
    cross_entropy_grad,
    cross_entropy_numeric_grad,
    eps_sweep,
    explain_cell,
    get_scheme,
)
from explorer.core.sweep import cell_error_model

#: Rounding-dominated steps (central differences) per dtype.
ROUNDING_EPS = {"float64": 1e-7, "float32": 1e-3}


def _problem(n: int, c: int, dtype: str, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, c)).astype(dtype), rng.integers(0, c, n)


def _plain(x: np.ndarray, y: np.ndarray, cells: list[tuple[int, int]], h: float, reduction: str, whole: bool):
    """Central differences by re-evaluating the loss from scratch for each perturbed point (no shortcuts).

    ``whole``: the reduced loss of the whole batch, as gradcheck does; else row i's loss alone
    (divided by N for the mean).
    """
    sch = get_scheme("central")
    work = np.float64 if x.dtype == np.float64 else np.float32
    out = []
    for i, j in cells:
        acc = 0.0
        for o, w in sch.stencil:
            xp = x.copy()
            xp[i, j] = (work(x[i, j]) + o * h).astype(x.dtype)
            if whole:
                v = float(cross_entropy(xp, y, reduction=reduction))
            else:
                v = float(cross_entropy(xp[i : i + 1], y[i : i + 1], reduction="sum"))
                v = v / x.shape[0] if reduction == "mean" else v
            acc += w * v
        out.append(acc / (sch.divisor * h))
    return np.array(out)


def _medians(n: int, c: int, dtype: str, reduction: str, evaluate: str, cells: int = 60) -> tuple[float, float]:
    x, y = _problem(n, c, dtype)
    h = ROUNDING_EPS[dtype]
    rng = np.random.default_rng(1)
    picked = [divmod(int(k), c) for k in rng.choice(n * c, cells, replace=False)]
    idx = tuple(np.array(picked).T)
    exact = cross_entropy_grad(x, y, reduction=reduction).astype(np.float64)[idx]
    ours = cross_entropy_numeric_grad(x, y, h, reduction=reduction, evaluate=evaluate).astype(np.float64)[idx]
    plain = _plain(x, y, picked, h, reduction, whole=evaluate == "loss")
    return float(np.median(np.abs(ours - exact))), float(np.median(np.abs(plain - exact)))


@pytest.mark.parametrize("evaluate", EVALUATE_MODES)
@pytest.mark.parametrize("reduction", ["sum", "mean"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("n", [32, 1024])
def test_median_error_within_3x_of_a_plain_re_evaluation(n: int, dtype: str, reduction: str, evaluate: str) -> None:
    ours, plain = _medians(n, 16, dtype, reduction, evaluate)
    assert plain / 3 <= ours <= 3 * plain, (ours, plain)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_whole_loss_noise_grows_with_the_batch_and_row_noise_does_not(dtype: str) -> None:
    row, _ = _medians(1024, 16, dtype, "sum", "row", cells=40)
    loss, _ = _medians(1024, 16, dtype, "sum", "loss", cells=40)
    assert loss > 30 * row  # the sum of 1024 row losses is rounded at ~1024 times a row loss's size


def test_the_issue_example_32_by_100() -> None:
    """32 x 100, float64, sum, central, eps 1e-7: the whole loss is far noisier than a row's."""
    x, y = _problem(32, 100, "float64")
    g = cross_entropy_grad(x, y, reduction="sum")
    errs = {
        ev: float(np.median(np.abs(cross_entropy_numeric_grad(x, y, 1e-7, reduction="sum", evaluate=ev) - g)))
        for ev in EVALUATE_MODES
    }
    assert errs["loss"] > 10 * errs["row"]


def test_predicted_best_eps_moves_with_n_only_for_the_whole_loss() -> None:
    best = {}
    for n in (8, 1024):
        x, y = _problem(n, 10, "float64")
        for ev in EVALUATE_MODES:
            best[n, ev] = cell_error_model(x, y, (0, 1), "central", evaluate=ev, reduction="sum").best_eps
    assert best[1024, "loss"] > 3 * best[8, "loss"]  # (N)^(1/3) grows by 5 from 8 to 1024 rows
    assert best[1024, "row"] == pytest.approx(best[8, "row"], rel=0.5)
    sweep = eps_sweep(*_problem(1024, 10, "float64"), (0, 1), schemes=["central"], evaluate="loss", reduction="sum")
    assert sweep.evaluate == "loss" and sweep.models["central"].best_eps == pytest.approx(best[1024, "loss"])


@pytest.mark.parametrize("scheme", ["forward", "central4"])
def test_loss_mode_inspector_shows_whole_loss_values(scheme: str) -> None:
    x, y = _problem(6, 4, "float64")
    settings = CheckSettings(eps=1e-4, scheme=scheme, evaluate="loss", reduction="mean")
    report = check_gradient(x, y, settings)
    e = explain_cell(x, y, (2, 3), settings)
    assert e.numeric == report.grad_numeric[2, 3]
    loss = float(cross_entropy(x, y, reduction="mean"))
    assert all(abs(v - loss) < 1e-3 for v in e.losses)  # the reduced loss, not row 2's loss / D
    assert sum(w * v for w, v in zip(e.weights, e.losses, strict=True)) / 1e-4 == pytest.approx(e.numeric, rel=1e-6)


def test_complex_step_is_the_same_in_both_modes() -> None:
    x, y = _problem(20, 5, "float32")
    a, b = (cross_entropy_numeric_grad(x, y, 1e-10, "complex", evaluate=ev) for ev in EVALUATE_MODES)
    np.testing.assert_array_equal(a, b)


def test_settings_validate_the_new_fields() -> None:
    assert CheckSettings().evaluate == "row" and CheckSettings().tolerance == "noise"
    with pytest.raises(SettingsError, match="evaluate mode"):
        CheckSettings(evaluate="batch")
    with pytest.raises(SettingsError, match="tolerance"):
        CheckSettings(tolerance="loose")
    assert CheckSettings(rtol=1e-3).tolerance == "fixed"
    s = CheckSettings.from_mapping({"evaluate": "loss", "tolerance": "fixed"})
    assert CheckSettings.from_mapping(s.to_mapping()) == s
    with pytest.raises(ValueError, match="evaluate mode"):
        cross_entropy_numeric_grad(np.zeros((1, 2)), np.array([0]), 1e-5, evaluate="whole")
