"""Issue 15: grid limits (N <= 8192, C <= 262,144, N x C <= 2**25) and logits stored in the check's dtype."""

from __future__ import annotations

import numpy as np
import pytest

from explorer.app.edits import EditController
from explorer.app.state import MAX_CLASSES, MAX_ELEMENTS, MAX_SAMPLES, ExplorerState, grid_refusal
from explorer.files.limits import GRID_LIMITS


@pytest.fixture
def controller(qapp) -> EditController:  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(0)
    return EditController(ExplorerState(rng.normal(size=(3, 10)) * 3, np.array([0, 4, 9])))


def test_the_limits_are_those_of_a_language_model_vocabulary() -> None:
    assert (MAX_SAMPLES, MAX_CLASSES, MAX_ELEMENTS) == (8192, 262_144, 2**25)
    assert grid_refusal(32, 262_144) is None
    assert grid_refusal(128, 262_144) is None  # exactly 2**25
    assert grid_refusal(8192, 4096) is None
    assert GRID_LIMITS.refusal((32, 262_144)) is None


@pytest.mark.parametrize(
    ("n", "c", "fragment"),
    [
        (8193, 2, "8193 x 2 grid"),
        (1, 262_145, "1 x 262145 grid"),
        (129, 262_144, "33816576 values"),
        (8192, 8192, "67108864 values"),
        (0, 5, "empty"),
    ],
)
def test_a_grid_past_the_limits_is_refused_with_one_message_and_nothing_changes(
    controller: EditController, n: int, c: int, fragment: str
) -> None:
    st = controller.state
    before = st.logits.copy()
    changes: list[object] = []
    st.changed.connect(changes.append)
    with pytest.raises(ValueError, match=r"over the limit of 8192 x 262144 .33554432 values.|empty") as info:
        controller.resize(n, c)
    assert fragment in str(info.value)
    huge = np.broadcast_to(np.float32(0), (n, c))  # no memory behind it: refused before the values are read
    with pytest.raises(ValueError, match=r"over the limit|empty"):
        controller.replace(huge, np.zeros(n, dtype=np.int64))
    assert changes == [] and controller.stack.count() == 0
    np.testing.assert_array_equal(st.logits, before)


def test_the_largest_wide_grid_is_held_in_float32_not_float64(controller: EditController) -> None:
    controller.set_settings(dtype="float32")
    controller.resize(32, 262_144)
    st = controller.state
    assert st.logits.dtype == np.float32 and st.logits.nbytes == 32 * 262_144 * 4
    x, _y, _s = st.snapshot()
    assert x.dtype == np.float32


@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float32"])
def test_logits_are_stored_in_the_chosen_dtype_and_undo_restores_the_exact_previous_values(
    controller: EditController, dtype: str
) -> None:
    st = controller.state
    rng = np.random.default_rng(3)
    x64 = rng.normal(size=(3, 10)) * np.pi
    controller.replace(x64, [1, 2, 3])
    assert st.logits.dtype == np.float64
    np.testing.assert_array_equal(st.logits, x64)
    controller.set_settings(dtype=dtype)
    assert st.logits.dtype.name == dtype
    np.testing.assert_array_equal(st.logits, x64.astype(st.logits.dtype))  # converted, i.e. rounded
    controller.set_settings(dtype="float64")
    assert st.logits.dtype == np.float64
    assert not np.array_equal(st.logits, x64)  # float64 -> dtype -> float64 lost digits ...
    controller.stack.undo()
    controller.stack.undo()
    assert st.logits.dtype == np.float64
    assert st.logits.view(np.uint64).tolist() == x64.view(np.uint64).tolist()  # ... which undo brings back exactly
    controller.stack.redo()
    assert st.logits.dtype.name == dtype
    np.testing.assert_array_equal(st.logits, x64.astype(st.logits.dtype))


def test_typed_and_pasted_values_are_rounded_to_the_dtype_and_undone_exactly(controller: EditController) -> None:
    st = controller.state
    controller.set_settings(dtype="float32")
    before = st.logits.copy()
    controller.set_logit(0, 0, 0.1)
    assert st.logits[0, 0] == np.float32(0.1) and st.logits.dtype == np.float32
    controller.set_block(1, 1, [[1 / 3, -0.0]])
    assert st.logits[1, 1] == np.float32(1 / 3) and np.signbit(st.logits[1, 2])
    controller.stack.undo()
    controller.stack.undo()
    assert st.logits.view(np.uint32).tolist() == before.view(np.uint32).tolist()


def test_values_and_dtype_changes_that_overflow_are_refused_and_change_nothing(controller: EditController) -> None:
    st = controller.state
    controller.set_logit(0, 0, 70000.0)  # fine in float64
    before, settings = st.logits.copy(), st.settings
    with pytest.raises(ValueError, match=r"would overflow float16.*70000 at row 0, class 0"):
        controller.set_settings(dtype="float16")
    assert st.settings == settings and st.logits.dtype == np.float64
    np.testing.assert_array_equal(st.logits, before)
    controller.set_logit(0, 0, 1.0)
    controller.set_settings(dtype="float16")
    with pytest.raises(ValueError, match="overflows float16"):
        controller.set_logit(0, 1, 1e5)
    with pytest.raises(ValueError, match="overflows float16"):
        controller.set_block(0, 0, [[1.0, 7e4]])
    with pytest.raises(ValueError, match="overflows float16"):
        controller.replace(np.full((2, 2), 1e6), [0, 1])
    assert st.logits.dtype == np.float16 and st.shape == (3, 10)


def test_undo_of_a_dtype_change_is_charged_to_the_undo_budget(controller: EditController) -> None:
    controller.resize(64, 1000)
    controller.set_block(0, 0, np.random.default_rng(0).normal(size=(64, 1000)))
    before = controller.undo_bytes
    controller.set_settings(dtype="float32")
    assert controller.undo_bytes - before >= 64 * 1000 * 8


def test_a_refusal_names_the_bound_that_is_broken() -> None:
    """"9000 x 4 (36000 values) is over the limit of 8192 x 262144 (33554432 values)" did not say it was the rows."""
    from explorer.files.limits import GRID_LIMITS

    assert "(36000 values; 9,000 rows, more than 8,192) is over" in GRID_LIMITS.refusal((9000, 4))  # type: ignore[operator]
    assert "; 262,145 classes, more than 262,144) is over" in GRID_LIMITS.refusal((2, 262_145))  # type: ignore[operator]
    assert "; 67,108,864 values, more than 33,554,432) is over" in GRID_LIMITS.refusal((8192, 8192))  # type: ignore[operator]
    assert GRID_LIMITS.refusal((8192, 4096)) is None
