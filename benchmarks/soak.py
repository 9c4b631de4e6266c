"""Soak test: thousands of random user actions on the real window; reports memory growth.

    python benchmarks/soak.py [--actions 10000] [--seed 0]

Uses the same actions as the stateful test (typing good and bad text, labels, pastes,
resizes, eps, schemes, dtypes, loss options, pitfall, presets, undo/redo, good and bad
files) and waits for each recomputation. Prints the resident memory after warm-up and
at the end, and fails (exit 1) if an action raised.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))


def rss_mib() -> float:
    with open("/proc/self/statm") as f:
        pages = int(f.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--actions", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="soak-"))
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    os.environ["GRADIENT_EXPLORER_SETTINGS"] = str(tmp / "settings.ini")
    os.environ["GRADIENT_EXPLORER_DATA"] = str(tmp / "data")
    from PySide6.QtWidgets import QApplication, QMessageBox

    app = QApplication.instance() or QApplication([])  # noqa: F841 (must exist before the window)
    for kind in ("question", "warning", "critical", "information"):  # no modal dialogs in a soak run
        setattr(QMessageBox, kind, staticmethod(lambda *a, **k: QMessageBox.StandardButton.Discard))
    import test_gui_stateful as st_test

    from explorer.app.jobs import report_matches_state
    from explorer.core import CheckSettings
    from explorer.files.io import save_session

    files = {
        "good.gradexp.json": tmp / "good.gradexp.json",
        "bad.gradexp.json": tmp / "bad.gradexp.json",
        "good.csv": tmp / "good.csv",
        "bad.csv": tmp / "bad.csv",
        "nan.npy": tmp / "nan.npy",
    }
    save_session(files["good.gradexp.json"], [[1.0, 2.0, 3.0], [0.0, -1.0, 5.0]], [2, 0], CheckSettings())
    files["bad.gradexp.json"].write_text("{ not json")
    files["good.csv"].write_text("1,2\n3,4\n5,6\n")
    files["bad.csv"].write_text("1,2\n3\n")
    np.save(files["nan.npy"], np.array([[1.0, np.nan]]))
    st_test.WindowMachine.files = files
    machine = st_test.WindowMachine()
    rng = np.random.default_rng(args.seed)
    pick = lambda seq: seq[int(rng.integers(len(seq)))]  # noqa: E731
    actions = [
        lambda: machine.type_in_a_cell(int(rng.integers(50)), int(rng.integers(50)), pick(st_test.CELL_TEXT)),
        lambda: machine.type_a_label(int(rng.integers(50)), pick(st_test.LABEL_TEXT)),
        lambda: machine.paste(int(rng.integers(50)), int(rng.integers(50)), pick(st_test.PASTE_TEXT)),
        lambda: machine.resize(int(rng.integers(1, 7)), int(rng.integers(1, 9))),
        lambda: machine.type_eps(pick(st_test.EPS_TEXT)),
        lambda: machine.scheme_and_dtype(pick(st_test.SCHEME_NAMES), pick(st_test.DTYPE_NAMES)),
        lambda: machine.loss_options(
            pick(st_test.REDUCTIONS), pick([0.0, 0.1]), pick(["", "1 2", "x"]), pick([-100, 0])
        ),
        lambda: machine.pitfall(pick(["element", "row", "all"])),
        lambda: machine.replace_problem(pick(["randomize", "preset"])),
        lambda: machine.w.controller.stack.undo(),
        lambda: machine.w.controller.stack.redo(),
        lambda: machine.open_file(pick(list(files))),
    ]
    start = time.perf_counter()
    warm = None
    for k in range(args.actions):
        pick(actions)()
        if k % 50 == 0:
            machine.consistent_and_drawn()  # shapes agree and the maps equal the core's result
        else:  # every action's result is computed and drawn before the next one
            st_test.wait_until(lambda: report_matches_state(machine.w.report, machine.w.state))
        if k == min(500, args.actions - 1):
            warm = rss_mib()
    end = rss_mib()
    w = machine.w
    undone = 0
    while w.controller.stack.canUndo():  # the stack keeps the last UNDO_LIMIT commands
        w.controller.stack.undo()
        undone += 1
    machine.consistent_and_drawn()
    w.controller.stack.setClean()
    w.recomputer.shutdown()
    w.sweeper.shutdown()
    w.close()
    print(f"{args.actions} actions in {time.perf_counter() - start:.0f} s; resident memory after 500 actions "
          f"{warm:.0f} MiB, at the end {end:.0f} MiB, growth {end - warm:+.1f} MiB; {undone} undo steps "
          "available at the end (the stack keeps the last 500), all undone, window consistent")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
