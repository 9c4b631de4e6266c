"""The user-code sandbox stops what it starts: forks, grandchildren, pipe holders, SIGTERM-ignorers and endless
loops leave no process behind; cancel works from another thread; code that writes into the runner's result
channel or raises a 2 MB message gets one clear message; the working folder and stdin do not leak in.

Every test has the user's code write its pids to a file and then scans /proc (not the sandbox's own helper)
for any of them, or any member of the child's process group or session, still alive.
"""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import numpy as np
import pytest

from explorer.core import compare
from explorer.usercode.gallery import MUTANTS
from explorer.usercode.runner import MAX_SOURCE_BYTES, UserCode, UserOutcome, read_source_capped, run_user_code
from explorer.usercode.sandbox import MAX_OUTPUT_BYTES, cap_text

pytestmark = pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="the process checks read Linux /proc")

ROOT = Path(__file__).resolve().parent.parent
LOGITS = np.array([[1.0, 2.0, 0.5], [0.0, -1.0, 3.0]])
LABELS = np.array([2, 0])
CORRECT = MUTANTS["correct"].source
# The time limit of the time-out tests: long enough for the code to start its whole tree first on a loaded machine.
TREE_LIMIT_S = 5.0


def _proc_stat(pid: int) -> tuple[str, int, int] | None:
    """(state, pgrp, session) from /proc, or None if there is no such process."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_bytes()
    except OSError:
        return None
    fields = raw[raw.rfind(b")") + 2 :].split()
    return fields[0].decode(), int(fields[2]), int(fields[3])


def _alive(pid: int) -> bool:
    info = _proc_stat(pid)
    return info is not None and info[0] != "Z"  # a zombie has ended; only its exit status waits for a parent


def _group_alive(leader: int) -> list[int]:
    out = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            info = _proc_stat(int(name))
            if info is not None and info[0] != "Z" and leader in (info[1], info[2]):
                out.append(int(name))
    return out


def _pids(path: Path) -> list[int]:
    return [int(v) for v in path.read_text().split()] if path.exists() else []


def _assert_nothing_left(pid_file: Path, expected_at_least: int) -> None:
    pids = _pids(pid_file)
    assert len(pids) >= expected_at_least, pids  # the code really started what it claims
    assert [p for p in pids if _alive(p)] == []
    assert _group_alive(pids[0]) == []  # the child's pid is its group and session id


def _run(source: str, timeout_s: float = 120.0, **kwargs: object) -> UserOutcome:
    return run_user_code(UserCode(source), LOGITS, LABELS, 1e-6, "central", timeout_s, **kwargs)  # type: ignore[arg-type]


def _assert_correct(outcome: UserOutcome) -> None:
    assert outcome.error is None, (outcome.error.kind, outcome.error.message, outcome.error.details)
    assert outcome.result is not None
    assert compare(outcome.result.grad_numeric, outcome.result.grad_user, atol=1e-7, rtol=1e-5).ok


# The user's code (module level) records pids: its own first, then every process it started.
RECORD = """
import os, subprocess, sys, time
PIDS = {pid_file!r}

def record(*pids):
    with open(PIDS, "a") as f:
        f.write(" ".join(str(p) for p in pids) + "\\n")

record(os.getpid())
"""

FORK_TREE = """
# A fork that starts a grandchild and sleeps; the grandchild inherits stdout and stderr, so it holds the
# runner's output pipes open; and a plain subprocess that sleeps, holding them too.
r, w = os.pipe()
pid = os.fork()
if pid == 0:
    os.close(r)
    grandchild = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    os.write(w, str(grandchild.pid).encode())
    os.close(w)
    time.sleep(120)
    os._exit(0)
os.close(w)
grandchild = int(os.read(r, 64))
os.close(r)
sleeper = subprocess.Popen(["sleep", "120"])
record(pid, grandchild, sleeper.pid)
"""


def test_correct_code_that_leaves_forks_and_grandchildren_behind_still_finishes(tmp_path: Path) -> None:
    pid_file = tmp_path / "pids"
    outcome = _run(RECORD.format(pid_file=str(pid_file)) + FORK_TREE + CORRECT)
    _assert_correct(outcome)  # not a time-out, although the grandchildren hold stdout and stderr
    _assert_nothing_left(pid_file, 4)


def test_an_endless_loop_with_a_process_tree_is_stopped_whole(tmp_path: Path) -> None:
    pid_file = tmp_path / "pids"
    source = RECORD.format(pid_file=str(pid_file)) + FORK_TREE + "def loss(x, y):\n    while True:\n        pass\n"
    outcome = _run(source + "def grad(x, y):\n    return x\n", timeout_s=TREE_LIMIT_S)
    assert outcome.error is not None and outcome.error.kind == "timeout"
    assert f"did not finish within {TREE_LIMIT_S:g} s and was stopped" in outcome.error.message
    _assert_nothing_left(pid_file, 4)


def test_processes_that_ignore_sigterm_are_killed(tmp_path: Path) -> None:
    pid_file = tmp_path / "pids"
    source = RECORD.format(pid_file=str(pid_file)) + textwrap.dedent("""
        import signal
        signal.signal(signal.SIGTERM, signal.SIG_IGN)   # inherited by the fork below
        pid = os.fork()
        if pid == 0:
            while True:
                time.sleep(1)
        record(pid)

        def loss(x, y):
            while True:
                time.sleep(0.01)

        def grad(x, y):
            return x
        """)
    outcome = _run(source, timeout_s=TREE_LIMIT_S)
    assert outcome.error is not None and outcome.error.kind == "timeout"
    _assert_nothing_left(pid_file, 2)


def test_a_process_that_changes_its_group_is_stopped_too(tmp_path: Path) -> None:
    pid_file = tmp_path / "pids"
    source = RECORD.format(pid_file=str(pid_file)) + textwrap.dedent("""
        pid = os.fork()
        if pid == 0:
            os.setpgid(0, 0)   # a new process group, still in the child's session
            time.sleep(120)
            os._exit(0)
        record(pid)
        """)
    _assert_correct(_run(source + CORRECT))
    _assert_nothing_left(pid_file, 2)


def test_cancel_from_another_thread_stops_the_tree(tmp_path: Path) -> None:
    """The window calls cancel on close and on Esc: the run ends at once with a message, nothing is left."""
    pid_file, ready, finished = tmp_path / "pids", tmp_path / "ready", tmp_path / "finished"
    os.mkfifo(ready)
    source = (
        RECORD.format(pid_file=str(pid_file))
        + FORK_TREE
        + textwrap.dedent(f"""
        with open({str(ready)!r}, "w") as f:   # tells the test that everything is running
            f.write("go")

        def loss(x, y):
            time.sleep(60)
            open({str(finished)!r}, "w").close()   # never reached: the cancel stops it first

        def grad(x, y):
            return x
        """)
    )
    cancel = threading.Event()

    def canceller() -> None:
        with open(ready) as f:  # blocks until the user's code has started its tree
            f.read()
        cancel.set()

    thread = threading.Thread(target=canceller)
    thread.start()
    outcome = _run(source, timeout_s=300.0, cancel=cancel)
    thread.join()
    assert outcome.error is not None and outcome.error.kind == "cancelled"
    assert "cancelled" in outcome.error.message and "stopped" in outcome.error.message
    assert not finished.exists()
    _assert_nothing_left(pid_file, 4)


def test_writing_the_old_result_file_names_changes_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The runner used to read error.json / result.npz from a folder the code could write to."""
    monkeypatch.chdir(tmp_path)
    source = textwrap.dedent("""
        import json, os, sys
        argv = [a for a in sys.argv if isinstance(a, str)]
        for folder in {os.getcwd(), *(a for a in argv if os.path.isdir(a)), *(os.path.dirname(a) or "." for a in argv)}:
            with open(os.path.join(folder, "error.json"), "w") as f:
                json.dump({"bogus": 1}, f)
            with open(os.path.join(folder, "result.npz"), "wb") as f:
                f.write(b"not a zip")
        """)
    _assert_correct(_run(source + CORRECT))


CLOBBER_PIPES = """
import os, stat
for name in os.listdir("/proc/self/fd"):
    fd = int(name)
    try:
        if fd > 2 and stat.S_ISFIFO(os.fstat(fd).st_mode):
            os.write(fd, {payload})
    except OSError:
        pass
"""


@pytest.mark.parametrize(
    ("payload", "fragment"),
    [
        ("b'garbage' * 1000", "no valid result frame"),
        ("b'GRADEXP-RESULT-1' + b'0' * 32 + b'R' + (9).to_bytes(8, 'little') + b'forged!!!'", "wrong token"),
    ],
    ids=["garbage", "forged-frame"],
)
def test_code_that_writes_into_the_result_pipe_is_reported_not_trusted(payload: str, fragment: str) -> None:
    outcome = _run(CLOBBER_PIPES.format(payload=payload) + CORRECT)
    assert outcome.result is None and outcome.error is not None
    assert outcome.error.kind == "interfered"
    assert "interfered with the runner" in outcome.error.message and fragment in outcome.error.message


def test_code_that_closes_the_result_pipe_gets_a_message() -> None:
    outcome = _run("import os\nos.closerange(3, 4096)\n" + CORRECT)
    assert outcome.error is not None and outcome.error.kind == "crash"
    assert "closed or replaced the result pipe" in outcome.error.stderr


def test_a_2_mb_exception_message_and_output_are_capped() -> None:
    source = "print('o' * 3_000_000)\nimport sys\nprint('e' * 3_000_000, file=sys.stderr)\n"
    source += "def loss(x, y):\n    raise ValueError('x' * 2_000_000 + 'END')\ndef grad(x, y):\n    return x\n"
    outcome = _run(source)
    error = outcome.error
    assert error is not None and error.kind == "exception"
    assert error.message.startswith("loss raised ValueError: xxx") and "characters cut" in error.message
    assert len(error.message) < 5000
    assert "Traceback" in error.details and len(error.details) <= MAX_OUTPUT_BYTES + 100
    for text, letter in ((error.stdout, "o"), (error.stderr, "e")):
        assert text.startswith("[... ") and "bytes cut" in text and text.rstrip().endswith(letter * 100)
        assert len(text) <= MAX_OUTPUT_BYTES + 100


def test_printed_output_comes_back_with_the_result() -> None:
    outcome = _run("import sys\nprint('hello from your code')\nprint('a warning', file=sys.stderr)\n" + CORRECT)
    _assert_correct(outcome)
    assert outcome.result is not None
    assert outcome.result.stdout == "hello from your code\n" and outcome.result.stderr == "a warning\n"


def test_the_working_folder_and_pythonpath_do_not_leak_in(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bad = "raise RuntimeError('the working folder leaked into the child')\n"
    (tmp_path / "numpy.py").write_text(bad)
    (tmp_path / "sitecustomize.py").write_text(bad)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "numpy.py").write_text(bad)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PYTHONPATH", str(elsewhere))
    monkeypatch.setenv("PYTHONSTARTUP", str(elsewhere / "numpy.py"))
    outcome = _run("import sys\nassert '' not in sys.path and '.' not in sys.path, sys.path\n" + CORRECT)
    _assert_correct(outcome)


def test_the_users_own_folder_is_on_the_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "mycode").mkdir()
    (tmp_path / "mycode" / "helpers.py").write_text(CORRECT)
    main = tmp_path / "mycode" / "main.py"
    main.write_text("from helpers import loss, grad\n")
    monkeypatch.chdir(tmp_path)  # the working folder is not the code's folder
    code = UserCode.from_spec(f"{main}:loss", f"{main}:grad")
    outcome = run_user_code(code, LOGITS, LABELS, 1e-6, "central", 20.0)
    _assert_correct(outcome)


def test_reading_stdin_gets_end_of_file_at_once() -> None:
    """Our own stdin is a pipe nobody writes to: a child that inherited it would wait there until its time limit."""
    read_end, write_end = os.pipe()
    saved = os.dup(0)
    os.dup2(read_end, 0)
    try:
        outcome = _run("import sys\nDATA = sys.stdin.read()\nassert DATA == ''\n" + CORRECT, timeout_s=120.0)
    finally:
        os.dup2(saved, 0)
        for fd in (saved, read_end, write_end):
            os.close(fd)
    _assert_correct(outcome)


@pytest.mark.parametrize("bad", ["nan", "0", "-1", "inf"])
def test_a_bad_time_limit_is_a_message(bad: str) -> None:
    outcome = _run(CORRECT, timeout_s=float(bad))
    assert outcome.error is not None and outcome.error.kind == "bad" and "time limit" in outcome.error.message


def test_cap_text_keeps_the_tail_and_says_so() -> None:
    assert cap_text("abc", 3) == "abc"
    capped = cap_text("a" * 10 + "END", 5)
    assert capped.endswith("aaEND") and "8 characters cut" in capped


# --loss/--grad files: only regular files, read with a byte cap.
def test_source_files_must_be_regular_and_small(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo.py"
    os.mkfifo(fifo)  # opening it for reading must not wait for a writer
    zero = tmp_path / "zero.py"
    zero.symlink_to("/dev/zero")
    big = tmp_path / "big.py"
    big.write_bytes(b"#" * (MAX_SOURCE_BYTES + 1))
    latin = tmp_path / "latin.py"
    latin.write_bytes(b"# \xe9\n")
    cases = [(fifo, "not a regular file"), (zero, "not a regular file"), (tmp_path, "not a regular"),
             (big, "larger than"), (latin, "not UTF-8"), (tmp_path / "none.py", "No such file")]  # fmt: skip
    for path, fragment in cases:
        with pytest.raises(ValueError, match=fragment):
            read_source_capped(path)
    ok = tmp_path / "ok.py"
    ok.write_text(CORRECT)
    assert read_source_capped(ok) == CORRECT
    assert stat.S_ISFIFO(fifo.stat().st_mode)


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "explorer", *args], capture_output=True, text=True, env=env,
                          cwd=cwd, timeout=60)  # fmt: skip


def test_command_line_refuses_a_fifo_or_dev_zero_as_code_and_reports_interference(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "fifo.py")
    (tmp_path / "zero.py").symlink_to("/dev/zero")
    for name in ("fifo.py", "zero.py"):
        out = _cli("check", "--loss", f"{name}:loss", "--grad", f"{name}:grad", cwd=tmp_path)
        assert out.returncode == 2 and "not a regular file" in out.stderr
        assert len(out.stderr.strip().splitlines()) == 1
    (tmp_path / "clobber.py").write_text(CLOBBER_PIPES.format(payload="b'x' * 100") + CORRECT)
    out = _cli("check", "--loss", "clobber.py:loss", "--grad", "clobber.py:grad", cwd=tmp_path)
    assert out.returncode == 2 and "interfered with the runner" in out.stderr and "Traceback" not in out.stderr


def test_a_sigkilled_child_is_a_crash_message(tmp_path: Path) -> None:
    outcome = _run(f"import os, signal\nos.kill(os.getpid(), {int(signal.SIGKILL)})\n" + CORRECT)
    assert outcome.error is not None and outcome.error.kind == "crash"
    assert f"signal {int(signal.SIGKILL)}" in outcome.error.message


# The panel: never more than a capped, escaped text, so a 2 MB message cannot freeze the window.
def test_the_panel_shows_a_capped_escaped_tail_of_a_huge_error(qtbot) -> None:  # type: ignore[no-untyped-def]
    from explorer.gui.your_code_panel import MAX_PANEL_CHARS, UserCodePanel

    panel = UserCodePanel()
    qtbot.addWidget(panel)
    huge = "<b>" + "x" * 2_000_000 + "</b>END"
    panel.show_error("ValueError: " + huge, "Traceback (most recent call last):\n" + huge, "Your edits are untouched.")
    text = panel.output.toPlainText()
    assert len(text) <= MAX_PANEL_CHARS
    assert text.startswith("ValueError: <b>xxx") and "characters cut" in text  # escaped: the tags show as text
    assert "</b>END" in text and "Your edits are untouched." in text
    # HTML built elsewhere (the window's own messages) is capped too: its beginning and end, as plain text.
    panel.show_text("<p style='color:red'><b>your code raised</b></p><pre>" + "y" * 2_000_000 + "END</pre>")
    text = panel.output.toPlainText()
    assert len(text) <= MAX_PANEL_CHARS and "your code raised" in text and text.rstrip().endswith("yEND")
    panel.show_text("<p>short <b>and</b> fine</p>")
    assert panel.output.toPlainText() == "short and fine"


def test_a_process_that_cannot_start_is_a_message(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*_args: object, **_kwargs: object) -> None:
        raise OSError(24, "Too many open files")

    monkeypatch.setattr(subprocess, "Popen", refuse)
    outcome = _run(CORRECT)
    assert outcome.error is not None and outcome.error.kind == "crash"
    assert "could not start a process for your code" in outcome.error.message


def test_the_child_stops_when_the_app_is_killed(tmp_path: Path) -> None:
    """Killing the CLI (a CI job cancelled, a terminal closed) left the user's endless loop running for hours:
    the time limit is the parent's to enforce. The child now stops its whole group when its parent is gone."""
    import signal
    import subprocess
    import time

    pid_file = tmp_path / "pid"
    (tmp_path / "loop.py").write_text(
        "import os\n"
        f"def loss(x, y):\n    open({str(pid_file)!r}, 'w').write(str(os.getpid()))\n    while True:\n        pass\n"
        "def grad(x, y):\n    return x\n"
    )
    app = subprocess.Popen([sys.executable, "-m", "explorer", "check", "--loss", "loop.py:loss", "--grad",
                            "loop.py:grad", "--timeout", "120"], cwd=tmp_path,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    deadline = time.monotonic() + 60
    while not (pid_file.exists() and pid_file.read_text()) and time.monotonic() < deadline:
        time.sleep(0.05)
    child = int(pid_file.read_text())
    app.send_signal(signal.SIGKILL)
    app.wait()
    deadline = time.monotonic() + 20
    while _alive(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(child), "the user's code ran on after the app was killed"


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False
