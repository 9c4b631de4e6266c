"""One autosave per window, owned with a lock: a live window's autosave is never offered or deleted."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtWidgets import QMessageBox

from explorer.app.autosave import Autosaver, data_dir, lock_path
from explorer.app.state import ExplorerState
from explorer.files.io import load_session
from explorer.gui import MainWindow

_OWNER = """
import os, sys
from pathlib import Path
import numpy as np
from PySide6.QtCore import QCoreApplication
app = QCoreApplication([])
from explorer.app.autosave import Autosaver
from explorer.app.state import ExplorerState
saver = Autosaver(ExplorerState(np.full((2, 3), 7.0), np.array([0, 2])), Path(sys.argv[1]))
saver.save_now()
print(saver.path, flush=True)
sys.stdin.readline()
if sys.argv[2] == "clean":
    saver.release()
os._exit(0)
"""


class Owner:
    """Another instance of the app (a separate process) with a live autosave."""

    def __init__(self, folder: Path):
        self.proc = subprocess.Popen(
            [sys.executable, "-c", _OWNER, str(folder), "crash"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env={**os.environ, "QT_QPA_PLATFORM": "offscreen"},
        )
        assert self.proc.stdout is not None
        self.path = Path(self.proc.stdout.readline().strip())
        assert self.path.is_file(), "the other instance did not autosave"

    def crash(self) -> None:
        self.proc.kill()
        self.proc.communicate(timeout=30)  # waits and closes the pipes


@pytest.fixture
def owner() -> Iterator[Owner]:
    o = Owner(data_dir())
    yield o
    o.crash()


def _state() -> ExplorerState:
    return ExplorerState(np.zeros((3, 4)), np.zeros(3, dtype=np.int64))


def test_each_window_autosaves_to_its_own_file_and_holds_its_lock(qapp) -> None:
    a, b = Autosaver(_state()), Autosaver(_state())
    assert a.path != b.path and a.path.parent == b.path.parent == data_dir()
    a.save_now()
    b.save_now()
    assert lock_path(a.path).exists() and lock_path(b.path).exists()
    assert a.leftovers() == [] and b.leftovers() == []  # both owners are alive
    a.release()
    b.release()
    assert not a.path.exists() and not lock_path(a.path).exists()


def test_a_second_window_neither_offers_nor_deletes_the_first_ones_autosave(qtbot, dialogs) -> None:
    dialogs.answer = QMessageBox.StandardButton.No
    first = MainWindow()
    qtbot.addWidget(first)
    first.controller.set_logit(0, 0, 42.0)
    first.autosaver.save_now()
    second = MainWindow()
    qtbot.addWidget(second)
    assert not [d for d in dialogs if "Restore" in d[1]]
    assert first.autosaver.path.is_file()
    assert load_session(first.autosaver.path).logits[0, 0] == 42.0
    assert second.state.logits[0, 0] != 42.0
    for w in (first, second):
        w.recomputer.shutdown()


def test_another_live_instance_is_left_alone_and_offered_once_it_is_gone(qapp, owner: Owner) -> None:
    saver = Autosaver(_state())
    # Its lock is older than Qt's default stale time (30 s); the owner is alive, so it is not stale.
    old = time.time() - 3600
    os.utime(lock_path(owner.path), (old, old))
    assert saver.leftovers() == []
    assert saver.leftover() is None
    saver.decline()
    saver.discard()
    assert owner.path.is_file()
    owner.crash()  # killed: the lock file stays behind, stale
    assert lock_path(owner.path).exists()
    assert saver.leftovers() == [owner.path]
    restored: list[object] = []
    assert saver.leftover() == owner.path
    assert saver.restore(restored.append)
    np.testing.assert_array_equal(restored[0].logits, np.full((2, 3), 7.0))  # type: ignore[attr-defined]
    assert not owner.path.exists()
    assert saver.path.is_file()  # the restored work is kept by this window's own autosave
    saver.release()


def test_a_claimed_leftover_is_not_offered_to_a_second_starting_instance(qapp, owner: Owner) -> None:
    owner.crash()
    first, second = Autosaver(_state()), Autosaver(_state())
    assert first.leftover() == owner.path
    assert second.leftovers() == [] and second.leftover() is None  # claimed: its lock is held
    first.decline()
    assert not owner.path.exists()
    assert second.leftover() is None
    first.release()
    second.release()


def test_the_next_start_after_a_crash_offers_the_stale_autosave(qtbot, dialogs, owner: Owner) -> None:
    owner.crash()
    dialogs.answer = QMessageBox.StandardButton.Yes
    w = MainWindow()
    qtbot.addWidget(w)
    assert [d for d in dialogs if "Restore" in d[1]]
    np.testing.assert_array_equal(w.state.logits, np.full((2, 3), 7.0))
    w.recomputer.shutdown()


def test_a_clean_exit_of_another_instance_leaves_nothing_to_offer(qapp) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-c", _OWNER, str(data_dir()), "clean"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "QT_QPA_PLATFORM": "offscreen"},
    )
    path = Path(proc.communicate("\n", timeout=60)[0].strip())
    assert proc.returncode == 0
    assert not path.exists() and not lock_path(path).exists()
    assert Autosaver(_state()).leftovers() == []


def test_stale_locks_without_an_autosave_are_cleaned_up_and_live_ones_kept(qapp, owner: Owner) -> None:
    live = Autosaver(_state())  # holds its lock, has not saved yet
    owner.path.unlink()  # the other instance's lock now guards nothing; it stays while its owner lives
    saver = Autosaver(_state())
    assert saver.leftovers() == []
    assert lock_path(owner.path).exists() and lock_path(live.path).exists()
    owner.crash()
    assert saver.leftovers() == []
    assert not lock_path(owner.path).exists()
    assert lock_path(live.path).exists() and lock_path(saver.path).exists()
    live.release()
    saver.release()
