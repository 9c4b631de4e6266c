"""Checking a user's own gradient code: the origin question verbatim, every mutant caught, and every
way user code can fail explained (in the core runner and on the command line)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from explorer.core import compare
from explorer.usercode.gallery import MUTANTS
from explorer.usercode.runner import UserCode, UserCodeError, run_user_check

ROOT = Path(__file__).resolve().parent.parent
LIMIT_S = 120.0  # generous: the suite shares two cores with other jobs; only the time-out cases use a short limit
ORIGIN_QUESTION_CODE = (ROOT / "tests" / "data" / "origin_question.py").read_text()


def test_origin_question_code_pasted_verbatim() -> None:
    rng = np.random.default_rng(0)
    x = rng.integers(1, 100, (3, 10)).astype(float)
    y = rng.integers(0, 10, 3)
    code = UserCode(ORIGIN_QUESTION_CODE, "softmax_crossentropy", "grad_softmax_crossentropy")
    result = run_user_check(code, x, y, 1e-5, "central", timeout_s=LIMIT_S)
    assert result.labels_shape == "(N, 1)"  # their code indexes y[:, 0]
    assert compare(result.grad_numeric, result.grad_user, atol=1e-7, rtol=1e-5).ok
    assert abs(result.whole_matrix_quotient) < 1e-6  # the question's mistake: about 0


def _grid(seed: int, mutant: str) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    n, c = int(rng.integers(3, 6)), int(rng.integers(3, 7))
    x = rng.normal(size=(n, c)) * rng.choice([0.5, 2.0, 4.0])
    y = rng.integers(0, c, n)
    if mutant == "ignored_rows_not_zeroed":
        y[0] = -100
    if mutant == "log_of_underflowed_softmax":
        x[0, 0] = 900.0  # a huge logit gap
    return x, y


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("mutant", sorted(name for name, m in MUTANTS.items() if m.framework == "numpy"))
def test_every_mutant_is_caught_and_the_correct_gradient_passes(mutant: str, seed: int) -> None:
    x, y = _grid(seed, mutant)
    result = run_user_check(UserCode(MUTANTS[mutant].source), x, y, 1e-5, "central", timeout_s=LIMIT_S)
    verdict = compare(result.grad_numeric, result.grad_user, atol=1e-7, rtol=1e-5)
    assert verdict.ok == (mutant == "correct"), (mutant, verdict.max_abs_err)


FAILURES = {
    "exception": ("def loss(x, y):\n    return len(x) / 0\ndef grad(x, y): return x", "ZeroDivision"),
    "timeout": ("def loss(x, y):\n    while True:\n        pass\ndef grad(x, y): return x", "did not finish"),
    "crash": ("import os\ndef loss(x, y): os._exit(7)\ndef grad(x, y): return x", "ended unexpectedly"),
    "shape": ("def loss(x, y): return x.sum()\ndef grad(x, y): return x.T", "shape"),
    "nan": ("import numpy as np\ndef loss(x, y): return x.sum()\ndef grad(x, y): return x / 0.0 * 0", "nan"),
    "missing": ("def loss(x, y): return x.sum()", "no function named 'grad'; it defines loss"),
}  # fmt: skip


@pytest.mark.parametrize("kind", sorted(FAILURES))
def test_failing_user_code_is_explained(kind: str) -> None:
    source, fragment = FAILURES[kind]
    x = np.arange(6.0).reshape(2, 3)
    with pytest.raises(UserCodeError, match=fragment) as info:
        run_user_check(UserCode(source), x, np.array([0, 2]), 1e-5, timeout_s=2.0 if kind == "timeout" else LIMIT_S)
    assert info.value.kind == kind
    if kind == "exception":
        assert "Traceback" in info.value.details and "<your code>" in info.value.details


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "explorer", *args], capture_output=True, text=True, env=env, cwd=cwd)


def test_command_line_check_of_user_code(tmp_path: Path) -> None:
    (tmp_path / "mine.py").write_text(ORIGIN_QUESTION_CODE)
    ok = _cli("check", "--loss", "mine.py:softmax_crossentropy", "--grad", "mine.py:grad_softmax_crossentropy",
              cwd=tmp_path)  # fmt: skip
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "your code" in ok.stdout and "PASS" in ok.stdout
    (tmp_path / "flip.py").write_text(MUTANTS["sign_flip"].source)
    bad = _cli("check", "--loss", "flip.py:loss", "--grad", "flip.py:grad", cwd=tmp_path)
    assert bad.returncode == 1 and "FAIL" in bad.stdout
    for kind in ("timeout", "crash", "exception"):
        source, fragment = FAILURES[kind]
        (tmp_path / "broken.py").write_text(source)
        limit = "2" if kind == "timeout" else str(LIMIT_S)
        out = _cli("check", "--loss", "broken.py:loss", "--grad", "broken.py:grad", "--timeout", limit, cwd=tmp_path)
        assert out.returncode == 2, out.stderr
        assert fragment in out.stderr and 'Traceback (most recent call last):\n  File "/' not in out.stderr
    missing = _cli("check", "--loss", "nope.py:loss", "--grad", "nope.py:grad", cwd=tmp_path)
    assert missing.returncode == 2 and missing.stderr.startswith("gradient-explorer: error:")


@pytest.mark.parametrize("scheme", ["forward", "backward", "central", "central4", "complex"])
def test_the_users_cell_sweep_passes_through_the_maps_value_at_the_current_eps(scheme: str) -> None:
    x, y = _grid(1, "no_onehot")
    eps, cell = 3.7e-6, (1, 2)  # not on the default grid
    result = run_user_check(UserCode(MUTANTS["no_onehot"].source), x, y, eps, scheme, LIMIT_S, sweep_cell=cell)
    assert result.sweep_eps is not None and result.sweep_errors is not None
    k = int(np.flatnonzero(result.sweep_eps == eps)[0])
    assert result.sweep_errors[scheme][k] == abs(result.grad_numeric[cell] - result.grad_user[cell])  # bit for bit
