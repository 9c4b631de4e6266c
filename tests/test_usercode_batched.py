"""Differencing a per-row user loss by columns: the numeric gradient is bit for bit the element path's, for
every scheme and dtype, in NumPy and PyTorch; a loss that is not honestly per row falls back to the element path,
and the result says which path was taken and how many times the loss was called."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from explorer.core import SCHEME_NAMES, numeric_grad, resolve_dtype
from explorer.usercode import child
from explorer.usercode.gallery import MUTANTS
from explorer.usercode.runner import (
    NUMERIC_PATHS,
    NUMERIC_REASONS,
    UserCode,
    UserCodeError,
    _Interfered,
    _parse_result,
    run_user_check,
)

ROOT = Path(__file__).resolve().parent.parent
LIMIT_S = 120.0  # generous: the suite shares two cores with other jobs
ORIGIN = (ROOT / "tests" / "data" / "origin_question.py").read_text()  # classes = 10, labels indexed y[:, 0]
NUMPY_MUTANTS = sorted(name for name, m in MUTANTS.items() if m.framework == "numpy")
EPS = {"float64": 1e-5, "float32": 1e-2, "bfloat16": 1e-1}

# Each NumPy gallery entry's loss, one value per row: the entry's own loss of that row alone (row-separable by
# construction, whatever the entry's reduction).
PER_ROW_OF_GALLERY = """

def loss_rows(logits, labels):
    return np.array([loss(logits[i : i + 1], labels[i : i + 1]) for i in range(len(logits))])
"""

TORCH_PER_ROW = """import torch
import torch.nn.functional as F


class RowCrossEntropy(torch.autograd.Function):
    @staticmethod
    def forward(ctx, logits, labels):
        log_p = torch.log_softmax(logits, dim=1)
        ctx.save_for_backward(log_p.exp(), labels)
        return -log_p[torch.arange(len(labels)), labels]

    @staticmethod
    def backward(ctx, grad_output):
        p, labels = ctx.saved_tensors
        return grad_output[:, None] * (p - F.one_hot(labels, p.shape[1]).to(p.dtype)), None


def loss(logits, labels):
    return RowCrossEntropy.apply(logits, labels)


def loss_builtin(logits, labels):
    return F.cross_entropy(logits, labels, reduction="none")
"""


def _problem(n: int, c: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, c)) * 2.0, rng.integers(0, c, n)


def _element_path(source: str, name: str, x: np.ndarray, y: np.ndarray, eps: float, scheme: str,
                  dtype: str) -> np.ndarray:  # fmt: skip
    """The element path in this process: core's numeric_grad of the loss as the child evaluates it."""
    namespace: dict = {"classes": x.shape[1]}
    exec(compile(source, "<test>", "exec"), namespace)
    fn = namespace[name]
    xd = x.astype(resolve_dtype(dtype))
    with np.errstate(all="ignore"):
        return numeric_grad(lambda v: child._scalar(fn(v.copy(), y), name), xd, eps, scheme).astype(np.float64)


def _same_bits(a: np.ndarray | None, b: np.ndarray | None) -> bool:
    assert a is not None and b is not None
    return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("scheme", SCHEME_NAMES)
def test_origin_question_by_columns_is_bit_identical_to_element_by_element(scheme: str, dtype: str) -> None:
    x, y = _problem(12, 10, 1)  # the question's code fixes classes = 10
    eps = EPS[dtype]
    result = run_user_check(UserCode(ORIGIN, "softmax_crossentropy", "grad_softmax_crossentropy"), x, y, eps, scheme,
                            LIMIT_S, dtype=dtype, noise=True)  # fmt: skip
    assert (result.numeric_path, result.numeric_reason) == ("columns", "per_row")
    assert result.numeric_method.startswith("differenced by columns (the loss is per row)")
    for step, numeric in ((eps, result.grad_numeric), (2 * eps, result.grad_numeric_2h)):
        assert _same_bits(numeric, _element_path(ORIGIN, "softmax_crossentropy", x, y[:, None], step, scheme, dtype))


def test_the_runners_two_paths_agree_bit_for_bit_and_the_columns_one_calls_the_loss_far_less() -> None:
    x, y = _problem(24, 10, 2)
    code = UserCode(ORIGIN, "softmax_crossentropy", "grad_softmax_crossentropy")
    by_columns = run_user_check(code, x, y, 1e-5, "central4", LIMIT_S, noise=True)
    by_elements = run_user_check(code, x, y, 1e-5, "central4", LIMIT_S, noise=True, columns=False)
    assert (by_elements.numeric_path, by_elements.numeric_reason) == ("elements", "off")
    assert _same_bits(by_columns.grad_numeric, by_elements.grad_numeric)
    assert _same_bits(by_columns.grad_numeric_2h, by_elements.grad_numeric_2h)
    assert by_elements.loss_calls == 2 * 24 * 10 * 4  # two steps, N C elements, four stencil points
    assert by_columns.loss_calls < by_elements.loss_calls / 4


@pytest.mark.parametrize("mutant", NUMPY_MUTANTS)
def test_every_numpy_gallery_loss_per_row_by_columns_is_bit_identical(mutant: str) -> None:
    k = NUMPY_MUTANTS.index(mutant)
    scheme, dtype = SCHEME_NAMES[k % len(SCHEME_NAMES)], ("float32", "float64")[k % 2]
    x, y = _problem(10, 8, k)
    if mutant == "ignored_rows_not_zeroed":
        y[0] = -100
    if mutant == "log_of_underflowed_softmax":
        x[0, 0] = 900.0  # a huge logit gap: infinite and NaN values, compared bit for bit too
    source = MUTANTS[mutant].source + PER_ROW_OF_GALLERY
    result = run_user_check(UserCode(source, "loss_rows", "grad"), x, y, EPS[dtype], scheme, LIMIT_S, dtype=dtype)
    assert result.numeric_path == "columns", result.numeric_reason
    assert _same_bits(result.grad_numeric, _element_path(source, "loss_rows", x, y, EPS[dtype], scheme, dtype))


def test_a_vectorised_per_row_loss_in_bfloat16() -> None:
    source = (
        MUTANTS["correct"].source
        + "\n\ndef rows(logits, labels):\n"
        + ("    return -log_softmax(logits)[np.arange(len(labels)), labels]\n")
    )
    x, y = _problem(12, 9, 3)
    result = run_user_check(UserCode(source, "rows", "grad"), x, y, EPS["bfloat16"], "central", LIMIT_S,
                            dtype="bfloat16")  # fmt: skip
    assert result.numeric_path == "columns"
    assert _same_bits(result.grad_numeric, _element_path(source, "rows", x, y, EPS["bfloat16"], "central", "bfloat16"))


@pytest.mark.parametrize(("name", "dtype", "scheme"), [("loss", "float32", "central"), ("loss", "float64", "central4"),
                                                       ("loss_builtin", "float32", "forward"),
                                                       ("loss_builtin", "float64", "central")])  # fmt: skip
def test_torch_per_row_tensor_by_columns_is_bit_identical(name: str, dtype: str, scheme: str) -> None:
    pytest.importorskip("torch")
    x, y = _problem(12, 9, 4)
    code = UserCode(TORCH_PER_ROW, name, "")
    by_columns = run_user_check(code, x, y, EPS[dtype], scheme, LIMIT_S, dtype=dtype, noise=True)
    by_elements = run_user_check(code, x, y, EPS[dtype], scheme, LIMIT_S, dtype=dtype, noise=True, columns=False)
    assert by_columns.framework == "torch" and by_columns.numeric_path == "columns"
    assert _same_bits(by_columns.grad_numeric, by_elements.grad_numeric)
    assert _same_bits(by_columns.grad_numeric_2h, by_elements.grad_numeric_2h)


_CE_ROWS = "-(z - np.log(np.exp(z).sum(axis=1, keepdims=True)))[np.arange(len(y)), y]"
NOT_PER_ROW = {
    # the common "stable" softmax shifted by the batch's maximum, not each row's: every row moves with it
    "global_max": (f"import numpy as np\ndef loss(x, y):\n    z = x - x.max()\n    return {_CE_ROWS}", "coupled"),
    # each row divided by a batch statistic
    "batch_normalised": (f"import numpy as np\ndef loss(x, y):\n    z = x / x.std()\n    return {_CE_ROWS}", "coupled"),
    # every row depends on one element of row 0 only
    "one_element": (
        f"import numpy as np\ndef loss(x, y):\n    z = x\n    return {_CE_ROWS} + 1e-3 * x[0, 0]",
        "coupled",
    ),
    # a different value at every call
    "noisy": (
        f"import numpy as np\nrng = np.random.default_rng()\ndef loss(x, y):\n    z = x\n"
        f"    return {_CE_ROWS} * (1 + 1e-9 * rng.random())",
        "coupled",
    ),
    "scalar": (f"import numpy as np\ndef loss(x, y):\n    z = x\n    return ({_CE_ROWS}).sum()", "scalar"),
    "column_vector": (f"import numpy as np\ndef loss(x, y):\n    z = x\n    return ({_CE_ROWS})[:, None]", "shape"),
}


@pytest.mark.parametrize("kind", sorted(NOT_PER_ROW))
def test_a_loss_that_is_not_per_row_is_differenced_element_by_element(kind: str) -> None:
    source, reason = NOT_PER_ROW[kind]
    source += "\ndef grad(x, y):\n    return np.zeros_like(x)\n"
    x, y = _problem(10, 8, 5)
    result = run_user_check(UserCode(source), x, y, 1e-5, "central", LIMIT_S)
    assert (result.numeric_path, result.numeric_reason) == ("elements", reason)
    assert NUMERIC_REASONS[reason] in result.numeric_method
    if kind != "noisy":
        assert _same_bits(result.grad_numeric, _element_path(source, "loss", x, y, 1e-5, "central", "float64"))


def test_the_check_catches_a_coupling_between_rows_it_never_perturbs_alone() -> None:
    """Two rows that no sampled column perturbs one at a time: the coupling is caught by perturbing a random half
    of each sampled column at once (the rows left alone must keep their values, the others take the batched ones)."""
    x, y = _problem(40, 8, 6)
    plan = child.ColumnDifferences(lambda v: v, x, 1e-5, "central").plan
    alone = set().union(*plan.values())
    k, m = [i for i in range(40) if i not in alone][:2]
    source = (f"import numpy as np\ndef loss(x, y):\n    z = x\n    out = {_CE_ROWS}\n"
              f"    out[{k}] += 1e-3 * x[{m}].sum()\n    return out\n"
              "def grad(x, y):\n    return np.zeros_like(x)\n")  # fmt: skip
    result = run_user_check(UserCode(source), x, y, 1e-5, "central", LIMIT_S)
    assert (result.numeric_path, result.numeric_reason) == ("elements", "coupled")


def test_a_loss_failing_on_a_whole_column_falls_back_and_a_tiny_batch_keeps_the_element_path() -> None:
    source = (f"import numpy as np\ndef loss(x, y):\n    z = x\n"
              "    moved = x != X0\n"
              "    if moved.sum() > 1 and moved.any(axis=0).sum() == 1:  # a whole column, not the whole matrix\n"
              "        raise ValueError('one at a time')\n"
              f"    return {_CE_ROWS}\ndef grad(x, y):\n    return np.zeros_like(x)\n")  # fmt: skip
    x, y = _problem(10, 8, 7)
    source = f"import numpy as np\nX0 = np.array({x.tolist()!r})\n" + source
    result = run_user_check(UserCode(source), x, y, 1e-5, "central", LIMIT_S)
    assert (result.numeric_path, result.numeric_reason) == ("elements", "raised")
    small = run_user_check(UserCode(ORIGIN, "softmax_crossentropy", "grad_softmax_crossentropy"), *_problem(3, 10),
                           1e-5, "central", LIMIT_S)  # fmt: skip
    assert (small.numeric_path, small.numeric_reason) == ("elements", "small")


def test_the_time_limit_still_stops_a_per_row_loss_that_hangs_on_its_columns() -> None:
    source = (f"import numpy as np\nCALLS = []\ndef loss(x, y):\n    z = x\n    CALLS.append(1)\n"
              "    while len(CALLS) > 3:\n        pass\n"
              f"    return {_CE_ROWS}\ndef grad(x, y):\n    return np.zeros_like(x)\n")  # fmt: skip
    x, y = _problem(10, 8, 8)
    with pytest.raises(UserCodeError) as info:
        run_user_check(UserCode(source), x, y, 1e-5, "central", 2.0)
    assert info.value.kind == "timeout"


def _result_arrays(**changes: np.ndarray) -> dict[str, np.ndarray]:
    arrays = {"grad": np.zeros((2, 3)), "numeric": np.zeros((2, 3)), "loss": np.float64(0.0),
              "pitfall": np.float64(0.0), "labels_shape": np.array("(N,)"), "framework": np.array("numpy"),
              "numeric_path": np.array("columns"), "numeric_reason": np.array("per_row"),
              "loss_calls": np.float64(7.0)}  # fmt: skip
    arrays.update(changes)
    return {k: np.asarray(v) for k, v in arrays.items()}


@pytest.mark.parametrize("changes", [{"numeric_path": np.array("rows")}, {"numeric_reason": np.array("because")},
                                     {"loss_calls": np.float64(-1.0)}, {"loss_calls": np.float64(np.nan)},
                                     {"loss_calls": np.float64(2.5)}])  # fmt: skip
def test_a_garbled_path_or_call_count_is_interference(changes: dict) -> None:
    assert _parse_result(_result_arrays(), (2, 3), 0)["loss_calls"] == 7
    with pytest.raises(_Interfered):
        _parse_result(_result_arrays(**changes), (2, 3), 0)


def test_every_path_and_reason_has_words() -> None:
    assert set(NUMERIC_PATHS) == {"columns", "elements", "mixed"}
    assert {"per_row", "scalar", "shape", "coupled", "raised", "small", "off"} == set(NUMERIC_REASONS)
