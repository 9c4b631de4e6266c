"""User code in JAX (issue 16). JAX is an optional extra: without it, the one-sentence "not installed"
message is tested; with it (``pip install "gradient-explorer[jax]"``), the custom_vjp gallery."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from explorer.core import CheckSettings
from explorer.usercode.gallery import MUTANTS
from explorer.usercode.runner import UserCode, UserCodeError, check_user_code, run_user_check

LIMIT_S = 300.0
JAX = sorted(name for name, m in MUTANTS.items() if m.framework == "jax")
HAVE_JAX = importlib.util.find_spec("jax") is not None


def _problem(n: int = 5, c: int = 7) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(1)
    return rng.normal(size=(n, c)) * 2.0, rng.integers(0, c, n)


def test_a_framework_that_is_not_installed_is_one_sentence(tmp_path: Path) -> None:
    # A jax that cannot be imported, first on the child's path (the user's folder), whether or not JAX is here.
    (tmp_path / "jax.py").write_text("raise ModuleNotFoundError(\"No module named 'jax'\", name='jax')\n")
    code = UserCode("import jax\n\ndef loss(x, y):\n    return x.sum()\n", "loss", "", folder=str(tmp_path))
    with pytest.raises(UserCodeError) as info:
        run_user_check(code, np.ones((2, 3)), np.array([0, 1]), 1e-6, timeout_s=LIMIT_S)
    assert info.value.kind == "framework"
    assert "\n" not in info.value.message and ". " not in info.value.message  # one sentence
    assert "JAX is not installed" in info.value.message and 'pip install "gradient-explorer[jax]"' in info.value.message


@pytest.mark.skipif(HAVE_JAX, reason="JAX is installed here")
def test_the_jax_gallery_says_jax_is_missing() -> None:
    m = MUTANTS["jax_correct"]
    with pytest.raises(UserCodeError, match="JAX is not installed"):
        run_user_check(UserCode(m.source, "loss", m.grad_name), *_problem(), 1e-6, timeout_s=LIMIT_S)


@pytest.mark.skipif(not HAVE_JAX, reason="needs JAX (pip install 'gradient-explorer[jax]')")
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", JAX)
def test_the_custom_vjp_passes_and_every_bug_fails(name: str, dtype: str) -> None:
    m = MUTANTS[name]
    settings = CheckSettings.with_default_eps("central", dtype)
    checked = check_user_code(UserCode(m.source, "loss", m.grad_name), *_problem(), settings, LIMIT_S)
    assert checked.result.framework == "jax" and checked.result.gradient.startswith("jax.grad of loss")
    assert checked.report.ok == (name == "jax_correct"), (name, checked.report.comparison.max_abs_err)


@pytest.mark.skipif(not HAVE_JAX, reason="needs JAX")
@pytest.mark.parametrize("dtype", ["bfloat16", "float32", "float64"])
def test_the_checks_dtype_reaches_the_code_as_a_jax_dtype(dtype: str) -> None:
    source = "import jax.numpy as jnp\n\ndef loss(x, y):\n    print('got', x.dtype)\n    return jnp.sum(x * x)\n"
    result = run_user_check(UserCode(source, "loss", ""), np.ones((2, 3)), np.array([0, 1]), 1e-2,
                            timeout_s=LIMIT_S, dtype=dtype)  # fmt: skip
    assert f"got {dtype}" in result.stdout
