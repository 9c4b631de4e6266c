"""Item models over the state: Qt's model tester, both directions, refusals."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import Qt

from explorer.app.edits import EditController
from explorer.app.state import ExplorerState
from explorer.gui.table_models import LabelsModel, LogitsModel

EDIT = Qt.ItemDataRole.EditRole


@pytest.fixture
def controller(qapp):  # type: ignore[no-untyped-def]
    x = np.arange(12.0).reshape(3, 4)
    return EditController(ExplorerState(x, np.array([0, 1, 3])))


def test_models_pass_qt_model_tester(qtmodeltester, controller: EditController) -> None:
    for model in (LogitsModel(controller), LabelsModel(controller)):
        qtmodeltester.check(model, force_py=True)


def test_model_follows_state_changes(qtbot, controller: EditController) -> None:
    model = LogitsModel(controller)
    with qtbot.waitSignal(model.dataChanged) as blocker:
        controller.state.set_logit(1, 2, -7.25)
    top_left, bottom_right = blocker.args[:2]
    assert (top_left.row(), top_left.column(), bottom_right.row(), bottom_right.column()) == (1, 2, 1, 2)
    assert model.data(model.index(1, 2), EDIT) == -7.25
    assert model.data(model.index(1, 2)) == "-7.25"
    with qtbot.waitSignal(model.modelReset):
        controller.resize(5, 6)
    assert (model.rowCount(), model.columnCount()) == (5, 6)


def test_edits_reach_the_state_and_the_undo_stack(controller: EditController) -> None:
    model = LogitsModel(controller)
    assert model.setData(model.index(0, 1), " -1.5e3 ")
    assert controller.state.logits[0, 1] == -1500.0
    labels = LabelsModel(controller)
    assert labels.setData(labels.index(2, 0), "2")
    assert controller.state.labels[2] == 2
    assert controller.stack.count() == 2
    controller.stack.undo()
    controller.stack.undo()
    np.testing.assert_array_equal(controller.state.logits, np.arange(12.0).reshape(3, 4))
    np.testing.assert_array_equal(controller.state.labels, [0, 1, 3])


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("abc", "not a number"),
        ("", "empty"),
        ("1,5", "dot"),
        ("nan", "NaN"),
        ("1e400", "overflows"),
        ("inf", "overflows"),
    ],
)
def test_bad_cell_text_is_refused_with_a_message(qtbot, controller: EditController, text: str, fragment: str) -> None:
    model = LogitsModel(controller)
    before = controller.state.logits.copy()
    with qtbot.waitSignal(model.rejected) as blocker:
        assert model.setData(model.index(0, 0), text) is False
    assert fragment in blocker.args[0]
    np.testing.assert_array_equal(controller.state.logits, before)
    assert controller.stack.count() == 0


def test_value_beyond_the_dtype_is_refused(qtbot, controller: EditController) -> None:
    controller.state.set_settings(dtype="float16")
    model = LogitsModel(controller)
    with qtbot.waitSignal(model.rejected) as blocker:
        assert not model.setData(model.index(0, 0), "70000")
    assert "65504" in blocker.args[0]
    assert model.setData(model.index(0, 0), "65000")


@pytest.mark.parametrize("text", ["10", "-3", "1.5", "x"])
def test_bad_labels_are_refused(qtbot, controller: EditController, text: str) -> None:
    model = LabelsModel(controller)
    with qtbot.waitSignal(model.rejected):
        assert not model.setData(model.index(0, 0), text)
    assert controller.state.labels[0] == 0


def test_label_cell_is_marked(controller: EditController) -> None:
    model = LogitsModel(controller)
    assert model.data(model.index(1, 1), Qt.ItemDataRole.BackgroundRole) is not None
    assert model.data(model.index(1, 0), Qt.ItemDataRole.BackgroundRole) is None
    assert model.data(model.index(1, 1), Qt.ItemDataRole.FontRole).bold()
