"""The element path without per-call copies (:func:`explorer.usercode.child.element_gradient`): the loss sees the
same inputs in the same order and returns the same values, so the numeric gradient has the same bits as
``numeric_grad`` on a fresh copy per call (the path before), in NumPy and PyTorch, every scheme and dtype, also
when the user's code changes its input in place or keeps it; and a loss of a shape that is neither one number nor
one per row is refused, not summed."""

from __future__ import annotations

import itertools
from collections.abc import Callable

import numpy as np
import pytest

from explorer.core import SCHEME_NAMES, numeric_grad, resolve_dtype
from explorer.usercode import child
from explorer.usercode.gallery import MUTANTS
from explorer.usercode.runner import UserCode, run_user_code

torch = pytest.importorskip("torch")

EPS = {"float64": 1e-5, "float32": 1e-2, "bfloat16": 1e-1}
LIMIT_S = 120.0

# Each loss records what it received (the input's bytes) and is analytic in its input, so the complex step works.
TORCH_LOSSES = {
    "custom_function": MUTANTS["torch_correct"].source,
    "in_place": """import torch

def loss(logits, labels):
    logits.sub_(logits.real.max())  # changes its input in place (torch sees it: a version bump)
    return (logits.exp() * (labels[:, None] + 1)).sum()
""",
    "in_place_through_numpy": """import torch

def loss(logits, labels):
    if logits.dtype in (torch.float32, torch.float64):
        a = logits.numpy()  # the same memory, written behind torch's back (no version bump)
        a *= 0.5
    return (logits.exp() * (labels[:, None] + 1)).sum()
""",
    "keeps_its_input": """import torch

kept = []

def loss(logits, labels):
    kept.append(logits)  # keeps every input; reads the previous one in the next call
    previous = kept[-2] if len(kept) > 1 else logits
    return (logits.exp() * (labels[:, None] + 1)).sum() + 1e-3 * previous.sum()
""",
}
NUMPY_LOSSES = {
    "plain": """import numpy as np

def loss(logits, labels):
    return (np.exp(logits) * (labels[:, None] + 1)).sum()
""",
    "in_place": """import numpy as np

def loss(logits, labels):
    logits -= logits.max()
    logits.shape = (-1,)  # reshapes its input (its own view)
    return (np.exp(logits) * (np.repeat(labels, logits.size // len(labels)) + 1)).sum()
""",
    "keeps_its_input": """import numpy as np

kept = []

def loss(logits, labels):
    kept.append(logits)
    previous = kept[-2] if len(kept) > 1 else logits
    return (np.exp(logits) * (labels[:, None] + 1)).sum() + 1e-3 * previous.sum()
""",
}


def _setup(source: str, framework: child.Framework, n: int) -> tuple[Callable, object]:
    namespace: dict = {"__name__": "user_code"}
    exec(compile(source, "<test>", "exec"), namespace)
    y = framework.labels(np.arange(n) % 3)
    return framework.evaluator(namespace["loss"], y), y


def _both_paths(source: str, framework: child.Framework, dtype: str, scheme: str) -> tuple:
    """(gradient, values) the path before (numeric_grad, a copy per call) and the new one give, each on freshly
    loaded code."""
    n, c = 4, 5
    x = (np.random.default_rng(3).normal(size=(n, c)) * 2).astype(resolve_dtype(dtype))
    quiet = child._quiet(framework)
    results = []
    for new in (False, True):
        evaluate, _ = _setup(source, framework, n)
        values: list[complex] = []

        def value_of(v: np.ndarray, new: bool = new, evaluate: Callable = evaluate, values: list = values) -> complex:
            with quiet():
                out = child._scalar(evaluate(framework.share(v) if new else framework.logits(v)), "loss", n)
            values.append(out)
            return out

        with np.errstate(all="ignore"):
            if new:
                grad = child.element_gradient(value_of, x, EPS[dtype], scheme, shared=True)
            else:
                grad = numeric_grad(value_of, x, EPS[dtype], scheme)
        results.append((grad, values))
    return results


def _same_bits(a: np.ndarray, b: np.ndarray) -> bool:
    return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


def _values_bits(values: list[complex]) -> bytes:
    return np.array(values, dtype=np.complex128).tobytes()


@pytest.mark.parametrize("scheme", SCHEME_NAMES)
@pytest.mark.parametrize("dtype", ["float32", "float64", "bfloat16"])
@pytest.mark.parametrize("name", sorted(TORCH_LOSSES))
def test_torch_element_path_without_copies_gives_the_same_values_and_bits(name: str, dtype: str, scheme: str) -> None:
    if scheme == "complex" and (dtype == "bfloat16" or name == "custom_function"):
        pytest.skip("torch has no complex bfloat16, nor a complex log_softmax")
    (old, old_values), (new, new_values) = _both_paths(TORCH_LOSSES[name], child.TorchFramework(), dtype, scheme)
    assert len(new_values) == len(old_values)
    assert _values_bits(new_values) == _values_bits(old_values)
    assert _same_bits(new, old)


@pytest.mark.parametrize("scheme", SCHEME_NAMES)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", sorted(NUMPY_LOSSES))
def test_numpy_element_path_without_copies_gives_the_same_values_and_bits(name: str, dtype: str, scheme: str) -> None:
    (old, old_values), (new, new_values) = _both_paths(NUMPY_LOSSES[name], child.Framework(), dtype, scheme)
    assert _values_bits(new_values) == _values_bits(old_values)
    assert _same_bits(new, old)


def test_the_buffer_is_reused_while_the_code_neither_keeps_nor_changes_it() -> None:
    """The point of the path: one buffer for every call (no copy of the whole array per call)."""
    fw = child.TorchFramework()
    evaluate, _ = _setup(MUTANTS["torch_correct"].source, fw, 4)
    seen: set[int] = set()

    def value_of(v: np.ndarray) -> complex:
        seen.add(id(v))
        with torch.no_grad():
            return child._scalar(evaluate(fw.share(v)), "loss", 4)

    x = np.random.default_rng(0).normal(size=(4, 5))
    child.element_gradient(value_of, x, 1e-5, "central", shared=True)
    assert len(seen) == 1
    seen.clear()
    evaluate, _ = _setup(TORCH_LOSSES["keeps_its_input"], fw, 4)
    child.element_gradient(value_of, x, 1e-5, "central", shared=True)
    assert len(seen) == 2 * x.size  # central: two calls per element, a new buffer after each


def test_a_matrix_loss_is_refused_in_one_sentence_naming_its_shape() -> None:
    source = "import torch\n\ndef loss(logits, labels):\n    return -torch.log_softmax(logits, dim=1)\n"
    x = np.random.default_rng(0).normal(size=(4, 6))
    outcome = run_user_code(UserCode(source, "loss", ""), x, np.arange(4) % 6, 1e-5, timeout_s=LIMIT_S)
    assert outcome.error is not None and outcome.result is None
    assert outcome.error.kind == "shape"
    assert outcome.error.message == ("loss returned an array of shape (4, 6); a loss must return one number, or one "
                                     "number per row (shape (4,) or (4, 1)), which is summed")  # fmt: skip


@pytest.mark.parametrize("shape", [(), (1,), (4,), (4, 1)])
def test_one_number_or_one_per_row_is_accepted_and_summed(shape: tuple[int, ...]) -> None:
    value = np.arange(1.0, 1.0 + int(np.prod(shape))).reshape(shape)
    assert child._scalar(value, "loss", 4) == complex(value.sum())
    assert child._scalar(torch.from_numpy(value), "loss", 4) == complex(value.sum())


@pytest.mark.parametrize("shape", [(4, 6), (6,), (1, 4), (4, 1, 1), (2, 2)])
def test_other_shapes_are_refused(shape: tuple[int, ...]) -> None:
    with pytest.raises(child._Failure, match=rf"returned an array of shape \({shape[0]},"):
        child._scalar(np.ones(shape), "loss", 4)


def test_code_for_column_labels_is_not_refused_for_what_row_labels_broadcast_to() -> None:
    """The origin question's kind of code indexes labels as a column; given (N,) labels a loss can broadcast
    to an N x N matrix instead of raising. The runner then tries (N, 1) labels before refusing."""
    source = """import numpy as np

def loss(x, y):
    return -x[np.arange(len(x))[:, None], y]  # (N, 1) labels: one value per row; (N,) labels: an N x N matrix

def grad(x, y):
    g = np.zeros_like(x)
    g[np.arange(len(x)), y[:, 0]] = -1.0
    return g
"""
    x = np.random.default_rng(0).normal(size=(3, 4))
    outcome = run_user_code(UserCode(source), x, np.array([0, 2, 1]), 1e-5, timeout_s=LIMIT_S)
    assert outcome.error is None, outcome.error
    assert outcome.result is not None and outcome.result.labels_shape == "(N, 1)"


SLOW_SCALAR = """import time
import numpy as np

def loss(logits, labels):
    time.sleep(0.02)  # a slow loss: 121 calls need more than 2 s
    return (np.exp(logits) * (labels[:, None] + 1)).sum()

def grad(logits, labels):
    return np.exp(logits) * (labels[:, None] + 1)
"""


def test_a_run_stopped_at_its_limit_says_how_far_it_got_and_what_limit_would_do() -> None:
    x = np.random.default_rng(0).normal(size=(6, 10))
    reports: list[tuple[int, int]] = []
    outcome = run_user_code(UserCode(SLOW_SCALAR), x, np.arange(6) % 3, 1e-5, timeout_s=2.0,
                            progress=lambda done, planned: reports.append((done, planned)))  # fmt: skip
    error = outcome.error
    assert error is not None and error.kind == "timeout"
    assert error.progress is not None and error.suggested_timeout_s is not None
    planned = 2 * x.size + 1  # central: two calls per element, and the one that found the loss returns one number
    assert error.progress.planned == planned and 0 < error.progress.done < planned
    assert error.message.startswith(f"your code did not finish within 2 s and was stopped: {error.progress.done:,} "
                                    f"of the {planned:,} calls of your loss that the finite differences need were "
                                    "done (")  # fmt: skip
    assert error.message.endswith(f"set the time limit to {error.suggested_timeout_s:g} s or more")
    assert error.suggested_timeout_s > 2.0
    assert reports and reports[-1][1] == planned  # the live reports, as they came
    assert all(a[0] <= b[0] for a, b in itertools.pairwise(reports))


def test_a_run_stopped_before_the_differences_says_so() -> None:
    source = "import time\n\nwhile True:\n    time.sleep(0.05)\n"
    outcome = run_user_code(UserCode(source), np.zeros((2, 3)), np.zeros(2), 1e-5, timeout_s=1.0)
    assert outcome.error is not None and outcome.error.kind == "timeout"
    assert outcome.error.message == ("your code did not finish within 1 s and was stopped before the finite "
                                     "differences of your loss began (loading your code, its first calls and its "
                                     "gradient took that long)")  # fmt: skip
    assert outcome.error.progress is None and outcome.error.suggested_timeout_s is None


def test_a_run_whose_calls_were_long_done_is_not_told_to_raise_its_limit() -> None:
    """A thread left running keeps the process alive after its calls: a longer limit would not help."""
    from explorer.usercode.runner import Progress, timeout_message

    message, limit = timeout_message(5.0, Progress(60, 120, 0.002, 0.3), 5.0)
    assert limit is None and "thread" in message and "set the time limit" not in message
    message, limit = timeout_message(5.0, Progress(60, 120, 4.0, 4.5), 5.0)  # slow calls: a longer limit helps
    assert limit is not None and "set the time limit" in message
