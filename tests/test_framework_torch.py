"""User code in PyTorch (issue 16): the framework found from the imports, the check's dtype at the boundary,
the autodiff of a custom autograd.Function checked when no grad is named, every gallery bug caught, the
command line, and torch never imported into the app's process."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from explorer.core import CheckSettings
from explorer.usercode.gallery import MUTANTS
from explorer.usercode.runner import UserCode, UserCodeError, check_user_code, run_user_check

pytest.importorskip("torch")

ROOT = Path(__file__).resolve().parent.parent
LIMIT_S = 300.0  # generous: the suite shares two cores; torch takes a second or two to import
TORCH = sorted(name for name, m in MUTANTS.items() if m.framework == "torch")


def _problem(n: int = 6, c: int = 9, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, c)) * 2.0, rng.integers(0, c, n)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", TORCH)
def test_the_custom_function_passes_and_every_backward_bug_fails(name: str, dtype: str) -> None:
    x, y = _problem()
    m = MUTANTS[name]
    settings = CheckSettings.with_default_eps("central", dtype)
    checked = check_user_code(UserCode(m.source, "loss", m.grad_name), x, y, settings, LIMIT_S)
    assert checked.result.framework == "torch"
    assert checked.result.gradient.startswith("torch.autograd.grad of loss")
    assert checked.report.comparison.mode == "noise"  # the noise-aware verdict, from two steps
    assert checked.report.ok == (name == "torch_correct"), (name, checked.report.comparison.max_abs_err)


SHOW_DTYPE = """import torch

def loss(logits, labels):
    print("got", logits.dtype, labels.dtype, type(logits).__name__)
    return torch.nn.functional.cross_entropy(logits.float(), labels, reduction="sum").to(logits.dtype)
"""


@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float32", "float64"])
def test_the_checks_dtype_reaches_the_code_as_a_torch_dtype(dtype: str) -> None:
    x, y = _problem(2, 3)
    result = run_user_check(UserCode(SHOW_DTYPE, "loss", ""), x, y, 1e-2, "central", LIMIT_S, dtype=dtype)
    assert f"got torch.{dtype} torch.int64 Tensor" in result.stdout
    assert result.dtype == dtype and result.framework == "torch"


def test_a_grad_function_in_torch_is_checked_as_given() -> None:
    source = MUTANTS["torch_correct"].source + "\n\ndef grad(logits, labels):\n    return -logits\n"
    x, y = _problem()
    result = run_user_check(UserCode(source, "loss", "grad"), x, y, 1e-6, "central", LIMIT_S)
    assert result.gradient == "your function grad (PyTorch)"
    np.testing.assert_array_equal(result.grad_user, -x)


def test_a_loss_autograd_cannot_differentiate_is_one_sentence() -> None:
    source = "import torch\n\ndef loss(logits, labels):\n    return float(logits.sum())\n"
    x, y = _problem(2, 3)
    with pytest.raises(UserCodeError, match="autograd cannot differentiate") as info:
        run_user_check(UserCode(source, "loss", ""), x, y, 1e-6, "central", LIMIT_S)
    assert info.value.kind == "exception"


def test_a_loss_that_is_nan_is_named_as_the_cause_of_its_nan_autodiff_gradient() -> None:
    source = "import torch\n\ndef loss(logits, labels):\n    return logits.sum() * float('nan')\n"
    x, y = _problem(2, 3)
    with pytest.raises(UserCodeError, match=r"the autodiff gradient of loss is nan .* \(loss itself returned nan\)"):
        run_user_check(UserCode(source, "loss", ""), x, y, 1e-6, "central", LIMIT_S)


def test_numpy_code_without_grad_is_told_it_has_no_autodiff() -> None:
    x, y = _problem(2, 3)
    with pytest.raises(UserCodeError, match="NumPy code, which has no autodiff") as info:
        run_user_check(UserCode(MUTANTS["correct"].source, "loss", ""), x, y, 1e-6, "central", LIMIT_S)
    assert info.value.kind == "missing"


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "explorer", *args], capture_output=True, text=True, env=env, cwd=cwd)


def test_command_line_checks_the_autodiff_of_torch_code(tmp_path: Path) -> None:
    (tmp_path / "good.py").write_text(MUTANTS["torch_correct"].source)
    (tmp_path / "bad.py").write_text(MUTANTS["torch_saved_modified_in_place"].source)
    ok = _cli("check", "--loss", "good.py:loss", "--dtype", "float32", "--timeout", str(LIMIT_S), cwd=tmp_path)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "gradient checked: torch.autograd.grad of loss" in ok.stdout and "torch (float32)" in ok.stdout
    bad = _cli("check", "--loss", "bad.py:loss", "--timeout", str(LIMIT_S), cwd=tmp_path)
    assert bad.returncode == 1 and "FAIL" in bad.stdout, bad.stdout + bad.stderr
    lonely = _cli("check", "--grad", "good.py:loss", cwd=tmp_path)
    assert lonely.returncode == 2 and "--grad needs --loss" in lonely.stderr


def test_torch_is_imported_only_in_the_child() -> None:
    script = (
        "import sys, numpy as np\n"
        "from explorer.usercode.gallery import MUTANTS\n"
        "from explorer.usercode.runner import UserCode, run_user_check\n"
        "import explorer.gui\n"
        "m = MUTANTS['torch_correct']\n"
        "r = run_user_check(UserCode(m.source, 'loss', ''), np.ones((2, 3)), np.array([0, 1]), 1e-6, timeout_s=300)\n"
        "assert r.framework == 'torch'\n"
        "print('torch' in sys.modules, 'jax' in sys.modules)\n"
    )
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, check=True)
    assert out.stdout.strip() == "False False"
