"""Hostile and broken files never hurt: the CLI exits 2 with one line, the window shows one message and changes nothing.

The corpus (``tests/hostile``) is generated at test time: a symlink to /dev/zero, FIFOs,
a 2 MB ``.npz`` that inflates to 2 GiB, ``.npy`` headers claiming 74.5 GiB, encrypted,
unknown-method, corrupt and non-``.npy`` archive members, BOM and typo CSVs, sessions
with bad values. Each CLI run has a 2 GB address-space limit and a 20 s timeout, so a
loader that trusted a size or a header would fail here instead of thrashing.
"""

from __future__ import annotations

import json
import os
import resource
import stat
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from hostile import CASES, SESSION_CASES, Case

from explorer.core import CheckSettings
from explorer.files.io import (
    FileFormatError,
    FileTooLargeError,
    GridLimits,
    atomic_write,
    load_logits,
    read_text_capped,
    save_session,
    session_from_json,
    session_to_json,
)
from explorer.files.numbers import parse_block, parse_number

pytestmark = pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="FIFOs and rlimits are POSIX")

#: The address-space limit of every CLI run: far below what trusting the corpus would take (19.4 GB, 74.5 GiB).
CLI_MEMORY_LIMIT = 2 * 2**30
CLI_TIMEOUT_S = 20


def _limit_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (CLI_MEMORY_LIMIT, CLI_MEMORY_LIMIT))


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "PYTHONWARNINGS": "error"}
    return subprocess.run(
        [sys.executable, "-m", "explorer", "check", *args],
        cwd=cwd, capture_output=True, text=True, timeout=CLI_TIMEOUT_S, preexec_fn=_limit_memory, env=env,
    )  # fmt: skip


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("hostile")
    return {case.name: case.make(folder) for case in CASES + SESSION_CASES}


@pytest.fixture(scope="module")
def cli_runs(corpus: dict[str, Path]) -> dict[str, subprocess.CompletedProcess[str]]:
    """Every case through its own ``python -m explorer check`` process, a few at a time."""
    flags = {**{c.name: "--logits" for c in CASES}, **{c.name: "--session" for c in SESSION_CASES}}

    def run(name: str) -> tuple[str, subprocess.CompletedProcess[str]]:
        path = corpus[name]
        return name, _cli(flags[name], path.name, cwd=path.parent)

    with ThreadPoolExecutor(max_workers=4) as pool:
        return dict(pool.map(run, flags))


def _assert_one_line_refusal(out: subprocess.CompletedProcess[str], case: Case) -> None:
    lines = out.stderr.strip().splitlines()
    assert out.returncode == 2, (case.name, out.returncode, out.stderr[-2000:])
    assert "Traceback" not in out.stderr, out.stderr[-2000:]
    assert len(lines) == 1, out.stderr[-2000:]
    assert case.fragment in lines[0], (case.fragment, lines[0])


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_cli_refuses_hostile_logits_files(cli_runs: dict[str, subprocess.CompletedProcess[str]], case: Case) -> None:
    _assert_one_line_refusal(cli_runs[case.name], case)


@pytest.mark.parametrize("case", SESSION_CASES, ids=[c.name for c in SESSION_CASES])
def test_cli_refuses_hostile_sessions(cli_runs: dict[str, subprocess.CompletedProcess[str]], case: Case) -> None:
    _assert_one_line_refusal(cli_runs[case.name], case)


def test_cli_reads_bom_files_whole(tmp_path: Path) -> None:
    """A byte-order mark used to turn the first row into a header: a 3 x 3 problem was checked as 2 x 3."""
    (tmp_path / "x.csv").write_bytes("\ufeff1,2,3\n4,5,6\n7,8,9\n".encode())
    (tmp_path / "y.txt").write_bytes("\ufeff2\n0\n1\n".encode())
    out = _cli("--logits", "x.csv", "--labels", "y.txt", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("3 x 3,"), out.stdout


def _snapshot(window) -> tuple:  # type: ignore[no-untyped-def]
    logits, labels, settings = window.state.snapshot()
    return (logits.copy(), labels.copy(), settings, window.windowTitle(), window.document.path,
            window.controller.stack.count(), window.document.modified)  # fmt: skip


def test_window_refuses_every_hostile_file_and_changes_nothing(qtbot, window, dialogs, corpus: dict[str, Path]) -> None:  # type: ignore[no-untyped-def]
    """Through the File > Open path: one message each, and state, title, file name and undo stack unchanged (a
    large file is read in a worker: its message comes when it has been read)."""
    ok = tmp_session = corpus["session atol text"].parent / "ok.gradexp.json"
    save_session(tmp_session, [[0.5, 1.5], [2.0, -1.0]], [1, 0], CheckSettings(scheme="forward"))
    assert window.open_path(str(ok))  # a named, unmodified document: a refusal must keep its name too
    window.state.set_logit(0, 0, 3.25)  # and a modified one
    before = _snapshot(window)
    failures = []
    for case in CASES + SESSION_CASES:
        dialogs.clear()
        opened = window.open_path(str(corpus[case.name]))
        if window.files.reading:
            qtbot.waitUntil(lambda: not window.files.reading, timeout=60_000)
            opened = not dialogs
        after = _snapshot(window)
        same = all(
            np.array_equal(a, b) if isinstance(a, np.ndarray) else a == b for a, b in zip(before, after, strict=True)
        )
        messages = [d for d in dialogs if d[0] == "warning"]
        if opened or not same or len(dialogs) != 1 or len(messages) != 1:
            failures.append(f"{case.name}: opened={opened} unchanged={same} dialogs={dialogs}")
        elif case.fragment not in messages[0][2]:
            failures.append(f"{case.name}: {messages[0][2]!r} lacks {case.fragment!r}")
    assert failures == []


def test_window_refuses_a_session_over_its_grid_before_reading_values(window, dialogs, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "wide.gradexp.json"
    path.write_text(session_to_json(np.zeros((9000, 2)), [0, 1], CheckSettings()))
    title = window.windowTitle()
    assert not window.open_path(str(path))
    assert "over the limit of 8192 x 262144" in dialogs[-1][2] and window.windowTitle() == title


# ------------------------------------------------------------------ units
def test_numbers_are_ascii_c_locale_only() -> None:
    for text in ("1_000", "\u0661", "\u0967", "1,5", "2.O", "0x10", "\u00a01", "1e", ".", "--1", "nan", "infinity"):
        with pytest.raises(ValueError, match=r"not a number|NaN|finite"):
            parse_number(text)
    for text in ("1_000", "\u0661", "\u0967", "2.O", "0x10", "1e", ".", "--1", "nan"):
        with pytest.raises(ValueError, match="line 1"):
            parse_block(f"1\t{text}")
    assert parse_number("-.5e+3") == -500.0
    assert parse_block("1.5\t-2e-3\n3.\t+4").tolist() == [[1.5, -0.002], [3.0, 4.0]]


def test_csv_first_row_is_a_header_only_when_no_field_is_a_number(tmp_path: Path) -> None:
    (tmp_path / "h.csv").write_text("a,b,y\n1,2,0\n3,4,1\n")
    logits, labels = load_logits(tmp_path / "h.csv", labels_column="y")
    assert logits.tolist() == [[1.0, 2.0], [3.0, 4.0]] and labels.tolist() == [0, 1]
    (tmp_path / "d.csv").write_text("1,2\n3,4\n")
    assert load_logits(tmp_path / "d.csv")[0].shape == (2, 2)
    (tmp_path / "q.csv").write_text('"1.5","2"\n3,4\n')
    assert load_logits(tmp_path / "q.csv")[0].tolist() == [[1.5, 2.0], [3.0, 4.0]]


def test_labels_outside_int64_are_refused_not_wrapped(tmp_path: Path) -> None:
    np.save(tmp_path / "x.npy", np.zeros((2, 3)))
    (tmp_path / "y.txt").write_text("1e300\n0\n")
    with pytest.raises(FileFormatError, match="whole numbers"):
        load_logits(tmp_path / "x.npy", labels_path=tmp_path / "y.txt")
    np.save(tmp_path / "y.npy", np.array([2**64 - 1, 0], dtype=np.uint64))
    with pytest.raises(FileFormatError, match="too large"):
        load_logits(tmp_path / "x.npy", labels_path=tmp_path / "y.npy")


def test_limits_are_checked_before_widening(tmp_path: Path) -> None:
    np.save(tmp_path / "b.npy", np.zeros((5, 7), dtype=bool))
    small = GridLimits(4, 8, 32)
    with pytest.raises(FileTooLargeError, match="5 x 7"):
        load_logits(tmp_path / "b.npy", limits=small)
    np.savez(tmp_path / "b.npz", logits=np.zeros((3, 9), dtype=np.int8))
    with pytest.raises(FileTooLargeError, match="3 x 9"):
        load_logits(tmp_path / "b.npz", limits=small)
    (tmp_path / "b.csv").write_text("1,2\n" * 5)
    with pytest.raises(FileTooLargeError, match="more than 4 rows"):
        load_logits(tmp_path / "b.csv", limits=small)


def test_a_session_with_more_values_than_allowed_is_refused_before_parsing() -> None:
    text = session_to_json(np.zeros((4, 4)), [0] * 4, CheckSettings())
    with pytest.raises(FileTooLargeError, match="more than"):
        session_from_json("[" + "0," * 2000 + "0]", limits=GridLimits(4, 4, 16))
    assert session_from_json(text, limits=GridLimits(4, 4, 16)).logits.shape == (4, 4)
    with pytest.raises(FileTooLargeError, match="4 x 4"):
        session_from_json(text, limits=GridLimits(3, 4, 16))


def test_read_text_capped_for_user_code(tmp_path: Path) -> None:
    """What the --loss FILE reader uses: regular files only, a cap, a BOM dropped."""
    src = tmp_path / "code.py"
    src.write_bytes("\ufeffdef loss(x, y):\n    return 0\n".encode())
    assert read_text_capped(src, 1000).startswith("def loss")
    with pytest.raises(FileTooLargeError):
        read_text_capped(src, 10)
    os.mkfifo(tmp_path / "fifo.py")
    with pytest.raises(FileFormatError, match="pipe"):
        read_text_capped(tmp_path / "fifo.py")
    with pytest.raises(FileFormatError, match="folder"):
        read_text_capped(tmp_path)


def test_saved_files_honour_the_umask_and_keep_an_existing_mode(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        atomic_write(tmp_path / "new.json", b"{}")
        assert stat.S_IMODE((tmp_path / "new.json").stat().st_mode) == 0o644
        os.umask(0o077)
        atomic_write(tmp_path / "private.json", b"{}")
        assert stat.S_IMODE((tmp_path / "private.json").stat().st_mode) == 0o600
        os.umask(0o022)
        (tmp_path / "kept.json").write_bytes(b"old")
        os.chmod(tmp_path / "kept.json", 0o640)
        atomic_write(tmp_path / "kept.json", b"new")
        assert stat.S_IMODE((tmp_path / "kept.json").stat().st_mode) == 0o640
    finally:
        os.umask(old)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["kept.json", "new.json", "private.json"]
    assert json.loads((tmp_path / "new.json").read_text()) == {}
