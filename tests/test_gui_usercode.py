"""The "Your code" panel: the origin question's code, a mutant from the gallery, and code that misbehaves
while the window stays responsive."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from explorer.app.display import Source
from explorer.app.jobs import report_matches_state
from explorer.gui import MainWindow
from explorer.usercode.gallery import MUTANTS

ORIGIN = (Path(__file__).resolve().parent / "data" / "origin_question.py").read_text()


def _run(qtbot, w: MainWindow, source: str, loss: str = "loss", grad: str = "grad", timeout: float = 10.0) -> None:  # type: ignore[no-untyped-def]
    panel = w.user_panel
    panel.editor.setPlainText(source)
    panel.loss_name.setText(loss)
    panel.grad_name.setText(grad)
    panel.timeout.setValue(timeout)
    with qtbot.waitSignal(w.user_job.finished, timeout=30000):
        panel.run_button.click()


def test_origin_code_passes_and_the_maps_show_it(qtbot, window: MainWindow) -> None:
    assert "your own user rights" in window.user_panel.warning.text()
    _run(qtbot, window, ORIGIN, "softmax_crossentropy", "grad_softmax_crossentropy")
    text = window.user_panel.output.toPlainText()
    assert "PASS" in text and "(N, 1)" in text
    assert window.display.source is Source.USER
    assert "your code" in window.summary.toPlainText()
    assert window.heatmaps.analytic.title == "Your gradient"
    # The maps show the user's gradient (equal to the built-in one here, to rounding).
    np.testing.assert_allclose(window.heatmaps.analytic.image_item.image, window.report.grad_analytic, atol=1e-15)
    window.user_panel.builtin_button.click()
    assert window.display.source is Source.BUILTIN
    assert window.heatmaps.analytic.title == "Analytic gradient"


def test_a_mutant_from_the_gallery_fails_with_its_signature(qtbot, window: MainWindow) -> None:
    gallery = window.user_panel.gallery
    gallery.setCurrentIndex(gallery.findData("sign_flip"))
    window.user_panel.load_example("sign_flip")
    assert "one_hot(labels, logits.shape[1]) - softmax(logits)" in window.user_panel.editor.toPlainText()
    assert MUTANTS["sign_flip"].title in window.user_panel.output.toPlainText()
    with qtbot.waitSignal(window.user_job.finished, timeout=30000):
        window.user_panel.run_button.click()
    assert "FAIL" in window.user_panel.output.toPlainText()
    # Sign flip: the relative error is 2 wherever the gradient is not tiny.
    assert np.max(window.heatmaps.error.image_item.image) > 0.5


def test_misbehaving_code_is_explained_and_the_window_stays_responsive(qtbot, window: MainWindow) -> None:
    panel = window.user_panel
    panel.editor.setPlainText("def loss(x, y):\n    while True:\n        pass\n\ndef grad(x, y):\n    return x\n")
    panel.timeout.setValue(2.0)
    panel.run_button.click()
    assert window.user_job.busy and not panel.run_button.isEnabled()
    # While the user's code spins, editing still works and the maps follow.
    with qtbot.waitSignal(window.recomputer.reportReady, timeout=5000):
        window.grid.logits_model.setData(window.grid.logits_model.index(0, 0), "11")
    assert report_matches_state(window.report, window.state)
    qtbot.waitUntil(lambda: not window.user_job.busy, timeout=20000)
    assert "did not finish within 2 s" in panel.output.toPlainText()
    assert window.state.logits[0, 0] == 11.0  # the user's edits are never lost
    _run(qtbot, window, "def loss(x, y):\n    return undefined_name\n\ndef grad(x, y):\n    return x\n")
    text = panel.output.toPlainText()
    assert "NameError" in text and "Traceback" in text and "<your code>" in text
    _run(qtbot, window, "import os\ndef loss(x, y):\n    os.abort()\ndef grad(x, y):\n    return x\n")
    assert "ended unexpectedly" in panel.output.toPlainText()
    _run(qtbot, window, "def loss(x, y):\n    return x.sum()\n\ndef grad(x, y):\n    return x[:1]\n")
    assert "shape" in panel.output.toPlainText()


def test_exports_follow_the_users_results(qtbot, window: MainWindow, tmp_path: Path) -> None:
    from explorer.files.io import read_csv_export

    _run(qtbot, window, MUTANTS["sign_flip"].source)
    assert window.export_data(str(tmp_path / "mine.csv"))
    _, arrays = read_csv_export(tmp_path / "mine.csv")
    np.testing.assert_array_equal(arrays["analytic"], window.display.report.grad_analytic)
    assert not np.allclose(arrays["analytic"], window.report.grad_analytic)
    assert window.export_plot("dashboard", str(tmp_path / "mine.png"))


def test_the_sweep_shows_the_users_own_loss(qtbot, window: MainWindow) -> None:
    window.grid.select_cell(1, 4)
    _run(qtbot, window, MUTANTS["no_onehot"].source)
    result = window.sweep_panel.result
    assert result.user and result.cell == (1, 4)
    errors = result.sweeps["float64"].errors
    assert set(errors) == {"forward", "backward", "central", "central4", "complex"}
    # Cell (1, 4) is not row 1's label: the bug does not touch it, so the complex step is exact there.
    assert errors["complex"].min() < 1e-12
    assert "your code" in window.sweep_panel.caption.text()
    window.user_panel.builtin_button.click()
    assert not window.sweep_panel.result.user


def test_the_origin_code_pasted_checks_first_time_with_the_names_it_defines(qtbot, window: MainWindow) -> None:
    panel = window.user_panel
    panel.editor.setPlainText(ORIGIN)  # the name fields still say loss and grad
    with qtbot.waitSignal(window.user_job.finished, timeout=30000):
        panel.run_button.click()
    assert (panel.loss_name.text(), panel.grad_name.text()) == ("softmax_crossentropy", "grad_softmax_crossentropy")
    assert "PASS" in panel.output.toPlainText()
    assert panel.function_names.stringList() == ["softmax", "softmax_crossentropy", "grad_softmax_crossentropy"]


def test_a_missing_name_lists_the_functions_found_and_runs_nothing(qtbot, window: MainWindow) -> None:
    panel = window.user_panel
    panel.editor.setPlainText("def f(x, y):\n    return x.sum()\n\ndef g(x, y):\n    return x\n")
    panel.run_button.click()
    assert not window.user_job.busy
    text = panel.output.toPlainText()
    assert "no loss function named 'loss'" in text and "it defines f, g" in text


def test_loading_an_example_asks_first_and_is_undoable(qtbot, window: MainWindow, dialogs) -> None:  # type: ignore[no-untyped-def]
    from PySide6.QtWidgets import QMessageBox

    panel = window.user_panel
    panel.editor.setPlainText("# my own code\n")
    dialogs.answer = QMessageBox.StandardButton.Cancel
    assert not panel.load_example("sign_flip")
    assert panel.editor.toPlainText() == "# my own code\n" and dialogs[-1][0] == "question"
    dialogs.answer = QMessageBox.StandardButton.Discard
    assert panel.load_example("sign_flip")
    assert panel.editor.toPlainText() == MUTANTS["sign_flip"].source
    panel.editor.undo()
    assert panel.editor.toPlainText() == "# my own code\n"
    asked = len(dialogs)
    panel.editor.setPlainText("")
    assert panel.load_example("correct") and len(dialogs) == asked  # an empty editor is not asked about


def test_the_editor_has_line_numbers_and_does_not_wrap(qtbot, window: MainWindow) -> None:
    from PySide6.QtWidgets import QPlainTextEdit

    editor = window.user_panel.editor
    window.user_panel.show()
    editor.setPlainText("x = 1\n" * 12 + "y = '" + "long " * 200 + "'\n")
    assert editor.lineWrapMode() == QPlainTextEdit.LineWrapMode.NoWrap
    assert editor.document().lineCount() == editor.blockCount() == 14  # the long line stays one line
    assert editor.viewportMargins().left() == editor.gutter_width() > 0
    editor.resize(400, 300)
    image = editor.gutter.grab().toImage()
    background = image.pixelColor(1, 1)
    drawn = sum(image.pixelColor(x, y) != background for x in range(image.width()) for y in range(0, image.height(), 2))
    assert drawn > 20  # the numbers are painted


def test_printed_output_and_the_gradient_checked_are_shown(qtbot, window: MainWindow) -> None:
    source = MUTANTS["correct"].source.replace("def grad(logits, labels):", "def grad(logits, labels):\n    "
                                               "print('hello from your code')")  # fmt: skip
    _run(qtbot, window, source)
    text = window.user_panel.output.toPlainText()
    assert "hello from your code" in text and "Gradient checked: your function grad (NumPy)" in text


def test_a_torch_backward_bug_through_the_window(qtbot, window: MainWindow) -> None:
    import pytest

    pytest.importorskip("torch")
    panel = window.user_panel
    panel.editor.setPlainText("")
    panel.load_example("torch_saved_modified_in_place")
    assert panel.grad_name.text() == ""
    panel.timeout.setValue(120.0)  # generous: the suite shares two cores
    with qtbot.waitSignal(window.user_job.finished, timeout=120000):
        panel.run_button.click()
    text = panel.output.toPlainText()
    assert "FAIL" in text and "torch.autograd.grad of loss" in text, text
    assert window.heatmaps.analytic.title == "Your gradient"
    assert "your code (loss, gradient by autodiff)" in window.summary.toPlainText()


def test_a_stopped_run_shows_how_far_it_got_and_offers_a_limit_that_would_do(qtbot, window: MainWindow) -> None:  # type: ignore[no-untyped-def]
    panel = window.user_panel
    slow = "def loss(logits, labels):\n    __import__('time').sleep(0.05)\n"
    source = MUTANTS["correct"].source.replace("def loss(logits, labels):\n", slow)
    assert not panel.retry_button.isVisibleTo(panel)
    _run(qtbot, window, source, timeout=2.0)
    text = panel.output.toPlainText()
    assert "did not finish within 2 s and was stopped: " in text and "calls of your loss that the finite" in text
    assert "set the time limit to" in text
    assert panel.retry_button.isVisibleTo(panel)
    limit = float(panel.retry_button.text().removeprefix("Check again with a ").removesuffix(" s time limit"))
    assert limit > 2.0 and f"set the time limit to {limit:g} s or more" in text
    panel.retry_button.click()  # the same check again, with that limit
    assert window.user_job.busy and panel.timeout.value() == limit
    assert not panel.retry_button.isVisibleTo(panel)
    with qtbot.waitSignal(window.user_job.finished, timeout=5000):
        window.user_job.cancel()


def test_a_long_run_shows_its_progress_in_calls_of_the_loss(qtbot, window: MainWindow) -> None:  # type: ignore[no-untyped-def]
    panel = window.user_panel
    slow = "def loss(logits, labels):\n    __import__('time').sleep(0.03)\n"
    source = MUTANTS["correct"].source.replace("def loss(logits, labels):\n", slow)
    seen: list[tuple[int, int]] = []
    window.user_job.callsDone.connect(lambda done, planned: seen.append((done, planned)))
    panel.editor.setPlainText(source)
    panel.timeout.setValue(60.0)
    panel.run_button.click()
    qtbot.waitUntil(lambda: bool(seen) and seen[-1][0] > 0, timeout=20_000)
    text = panel.output.toPlainText()
    done, planned = seen[-1]
    assert 0 < done < planned and f"{done:,} of {planned:,} calls of your loss" in text
    with qtbot.waitSignal(window.user_job.finished, timeout=10_000):
        window.user_job.cancel()


def test_the_panel_and_status_bar_give_the_full_verdict_not_every_element_passed(qtbot, window: MainWindow) -> None:  # type: ignore[no-untyped-def]
    """At eps 1e-30 every element "passes" because the tolerance swallows the gradient: the summary says
    CANNOT TELL, and so must the panel and the status bar (they used to say PASS)."""
    window.controller.set_settings(eps=1e-30)
    _run(qtbot, window, MUTANTS["correct"].source)
    report = window.display.report
    assert report is not None and report.comparison.ok  # every element within its tolerance...
    assert "CANNOT TELL" in window.summary.toPlainText()  # ...yet the check cannot tell
    panel_text = window.user_panel.output.toPlainText()
    assert "CANNOT TELL" in panel_text and "PASS" not in panel_text
    assert "CANNOT TELL" in window.statusBar().currentMessage()
