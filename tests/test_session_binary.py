"""Binary sessions (.gradexp.npz): exact in every dtype, refused whole when hostile, autosaved off the GUI thread."""

from __future__ import annotations

import io
import json
import threading
import zipfile
from collections.abc import Callable
from pathlib import Path

import ml_dtypes
import numpy as np
import pytest

from explorer.app import autosave as autosave_module
from explorer.app.autosave import Autosaver, lock_path
from explorer.app.state import ExplorerState
from explorer.core import CheckSettings
from explorer.files.io import (
    JSON_SESSION_MAX_ELEMENTS,
    FileFormatError,
    FileTooLargeError,
    GridLimits,
    load_session,
    save_session,
)

DTYPES = {"float16": np.float16, "float32": np.float32, "float64": np.float64, "bfloat16": ml_dtypes.bfloat16}


def _awkward(dtype: type) -> np.ndarray:
    """Values that lose bits on any detour: extremes, subnormals, signed zeros, random mantissas."""
    info = ml_dtypes.finfo(dtype) if dtype is ml_dtypes.bfloat16 else np.finfo(dtype)
    special = np.array([info.max, -info.max, info.tiny, info.smallest_subnormal, -0.0, 0.0, info.eps], dtype=dtype)
    rng = np.random.default_rng(5)
    rest = rng.standard_normal(5 * 7 - special.size) * 10.0 ** rng.integers(-3, 3, 5 * 7 - special.size)
    return np.concatenate([special, rest.astype(dtype)]).reshape(5, 7)


@pytest.mark.parametrize("name", DTYPES)
def test_round_trip_is_bit_for_bit_in_every_dtype(tmp_path: Path, name: str) -> None:
    x = _awkward(DTYPES[name])
    y = np.array([0, 6, -100, 3, 2])
    s = CheckSettings(eps=1e-2, dtype=name, scheme="forward", reduction="mean", weight=(1, 2, 3, 4, 5, 6, 7))
    path = tmp_path / "s.gradexp.npz"
    save_session(path, x, y, s)
    back = load_session(path)
    assert back.logits.dtype == x.dtype and back.logits.shape == x.shape
    assert back.logits.tobytes() == x.tobytes()  # every bit, the sign of zero included
    np.testing.assert_array_equal(back.labels, y)
    assert back.labels.dtype == np.int64
    assert back.settings == s
    with zipfile.ZipFile(path) as zf:
        meta = json.loads(zf.read("gradexp.json"))
        assert meta["logits_dtype"] == name and meta["version"] == 1 and meta["settings"] == s.to_mapping()
        assert all(i.compress_type == zipfile.ZIP_STORED for i in zf.infolist())


def test_the_form_follows_the_suffix_and_reading_follows_the_content(tmp_path: Path) -> None:
    x, y = np.float32([[1.5, -2.0]]), np.array([1])
    save_session(tmp_path / "a.gradexp.json", x, y, CheckSettings())
    json.loads((tmp_path / "a.gradexp.json").read_text())  # still the readable form
    save_session(tmp_path / "renamed.json", x, y, CheckSettings(), binary=True)
    assert load_session(tmp_path / "renamed.json").logits.dtype == np.float32  # a zip, whatever its name


def test_json_is_refused_for_a_grid_too_large_for_it_and_binary_is_not(tmp_path: Path) -> None:
    x = np.zeros((2, JSON_SESSION_MAX_ELEMENTS // 2 + 1), dtype=np.float32)
    with pytest.raises(ValueError, match=r"\.gradexp\.npz"):
        save_session(tmp_path / "big.gradexp.json", x, [0, 1], CheckSettings())
    assert not (tmp_path / "big.gradexp.json").exists()
    save_session(tmp_path / "big.gradexp.npz", x, [0, 1], CheckSettings())
    assert load_session(tmp_path / "big.gradexp.npz").logits.shape == x.shape


def test_non_finite_logits_are_not_saved_and_the_old_file_stays(tmp_path: Path) -> None:
    path = tmp_path / "s.gradexp.npz"
    save_session(path, np.ones((2, 2)), [0, 1], CheckSettings())
    before = path.read_bytes()
    with pytest.raises(ValueError, match="finite"):
        save_session(path, np.array([[1.0, np.nan], [0.0, 1.0]]), [0, 1], CheckSettings())
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["s.gradexp.npz"]  # no temporary left behind


# ------------------------------------------------------------------------------------------------ hostile files
def _npy(a: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.lib.format.write_array(buf, a, allow_pickle=False)
    return buf.getvalue()


def _meta(**changes: object) -> bytes:
    doc = {"format": "gradient-explorer-binary-session", "version": 1, "logits_dtype": "float32", "shape": [2, 3],
           "settings": CheckSettings(dtype="float32").to_mapping()}  # fmt: skip
    doc.update(changes)
    return json.dumps(doc).encode()


def _huge_header() -> bytes:
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": "<f4", "fortran_order": False, "shape": (2, 10**9)})
    return buf.getvalue() + b"\0" * 24


GOOD_LOGITS = np.arange(6, dtype=np.float32).reshape(2, 3)
GOOD_LABELS = np.array([0, 2])
GOOD = {"gradexp.json": _meta(), "logits.npy": _npy(GOOD_LOGITS), "labels.npy": _npy(GOOD_LABELS)}

HOSTILE: dict[str, tuple[dict[str, bytes | None], str]] = {
    "no meta": ({"gradexp.json": None}, "not a Gradient Explorer session"),
    "no logits": ({"logits.npy": None}, "no 'logits' entry"),
    "no labels": ({"labels.npy": None}, "no 'labels' entry"),
    "meta not JSON": ({"gradexp.json": b"{not json"}, "not valid JSON"),
    "meta not UTF-8": ({"gradexp.json": b"\xff\xfe{}"}, "not valid JSON"),
    "meta a list": ({"gradexp.json": b"[]"}, "not a Gradient Explorer session"),
    "wrong magic": ({"gradexp.json": _meta(format="gradient-explorer-session")}, "not a Gradient Explorer session"),
    "newer version": ({"gradexp.json": _meta(version=9)}, "newer"),
    "no version": ({"gradexp.json": _meta(version="1")}, "no format version"),
    "unknown dtype": ({"gradexp.json": _meta(logits_dtype="object")}, "logits_dtype"),
    "bad shape": ({"gradexp.json": _meta(shape=[2, -3])}, "shape must be"),
    "meta too long": ({"gradexp.json": b" " * 70_000 + _meta()}, "at most"),
    "bad settings": ({"gradexp.json": _meta(settings={"eps": "big"})}, "bad settings"),
    "unknown setting": ({"gradexp.json": _meta(settings={"colour": 1})}, "bad settings"),
    "settings weight vs C": ({"gradexp.json": _meta(settings={"weight": [1.0, 2.0]})}, "bad settings"),
    "logits shape differs": ({"logits.npy": _npy(np.zeros((3, 2), np.float32))}, "declares float32 of shape"),
    "logits 1-D": ({"logits.npy": _npy(np.zeros(6, np.float32))}, "declares float32"),
    "logits dtype differs": ({"logits.npy": _npy(GOOD_LOGITS.astype(np.float64))}, "declares float32"),
    "logits big-endian": ({"logits.npy": _npy(GOOD_LOGITS.astype(">f4"))}, "declares float32"),
    "logits objects": ({"logits.npy": _npy(np.zeros((2, 3))).replace(b"'<f8'", b"'|O' ")}, "objects"),
    "logits NaN": ({"logits.npy": _npy(np.float32([[0, 1, 2], [3, np.nan, 5]]))}, "row 1, class 1"),
    "logits truncated": ({"logits.npy": _npy(GOOD_LOGITS)[:-4]}, "damaged"),
    "huge declared logits": ({"logits.npy": _huge_header()}, "over the limit"),
    "huge declared shape": ({"gradexp.json": _meta(shape=[10**6, 10**6])}, "over the limit"),
    "labels out of range": ({"labels.npy": _npy(np.array([0, 3]))}, "label 3 in row 1 is out of range"),
    "labels negative": ({"labels.npy": _npy(np.array([-1, 0]))}, "label -1 in row 0"),
    "labels float": ({"labels.npy": _npy(np.array([0.0, 1.0]))}, "integer labels"),
    "labels too many": ({"labels.npy": _npy(np.array([0, 1, 2]))}, "over the limit"),
    "labels 2-D": ({"labels.npy": _npy(np.zeros((2, 1), np.int64))}, "dimensions"),
    "labels over int64": ({"labels.npy": _npy(np.array([2**63, 0], np.uint64))}, "64-bit"),
}


def _write_zip(path: Path, members: dict[str, bytes | None]) -> None:
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in {**GOOD, **members}.items():
            if data is not None:
                zf.writestr(name, data)


def test_the_crafted_good_archive_loads(tmp_path: Path) -> None:
    """The hostile cases below differ from this one in one entry only."""
    _write_zip(tmp_path / "good.gradexp.npz", {})
    s = load_session(tmp_path / "good.gradexp.npz")
    np.testing.assert_array_equal(s.logits, GOOD_LOGITS)
    np.testing.assert_array_equal(s.labels, GOOD_LABELS)


@pytest.mark.parametrize("case", HOSTILE, ids=list(HOSTILE))
def test_a_hostile_binary_session_is_one_file_format_error(tmp_path: Path, case: str) -> None:
    members, fragment = HOSTILE[case]
    path = tmp_path / "bad.gradexp.npz"
    _write_zip(path, members)
    with pytest.raises(FileFormatError, match=fragment) as info:
        load_session(path, limits=GridLimits(8192, 262_144, 2**25))
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("cut", [10, 0.5, -30])
def test_a_damaged_archive_is_one_file_format_error(tmp_path: Path, cut: float) -> None:
    good = tmp_path / "good.gradexp.npz"
    save_session(good, GOOD_LOGITS, GOOD_LABELS, CheckSettings(dtype="float32"))
    data = good.read_bytes()
    bad = tmp_path / "bad.gradexp.npz"
    bad.write_bytes(data[: int(cut * len(data)) if isinstance(cut, float) else cut])
    with pytest.raises(FileFormatError):
        load_session(bad)
    flipped = bytearray(data)
    flipped[len(data) // 2] ^= 0xFF  # inside the logits: the checksum fails
    bad.write_bytes(bytes(flipped))
    with pytest.raises(FileFormatError, match="cannot be read"):
        load_session(bad)


def test_a_declared_grid_over_the_windows_limits_is_refused_before_reading(tmp_path: Path) -> None:
    path = tmp_path / "wide.gradexp.npz"
    save_session(path, np.zeros((2, 10), np.float32), [0, 1], CheckSettings())
    with pytest.raises(FileTooLargeError, match="over the limit") as info:
        load_session(path, limits=GridLimits(4, 8, 32))
    assert info.value.shape == (2, 10)


def test_opening_a_hostile_binary_session_in_the_window_changes_nothing(qtbot, window, dialogs, tmp_path: Path) -> None:
    path = tmp_path / "bad.gradexp.npz"
    _write_zip(path, {"labels.npy": _npy(np.array([0, 3]))})
    before = (window.state.logits.copy(), window.state.labels.copy(), window.state.settings, window.windowTitle())
    assert not window.open_path(str(path))
    assert [d for d in dialogs if "Cannot open" in d[1] and "out of range" in d[2]]
    np.testing.assert_array_equal(window.state.logits, before[0])
    np.testing.assert_array_equal(window.state.labels, before[1])
    assert window.state.settings == before[2] and window.windowTitle() == before[3]
    assert not window.document.modified


# ------------------------------------------------------------------------------------------------ the window
def test_the_window_opens_and_saves_binary_sessions(qtbot, window, dialogs, tmp_path: Path) -> None:
    x = (np.random.default_rng(3).standard_normal((5, 7)) * 4).astype(ml_dtypes.bfloat16)
    x[0, :2] = [-0.0, 1e-39]  # a signed zero and a subnormal keep their bits
    path = tmp_path / "mine.gradexp.npz"
    save_session(path, x, [0, 1, 2, 3, 4], CheckSettings(dtype="bfloat16", eps=0.1))
    assert window.open_path(str(path))
    assert window.state.settings.dtype == "bfloat16"
    assert window.state.logits.tobytes() == x.tobytes()
    assert window.save_to(str(tmp_path / "again.gradexp.npz"))
    assert load_session(tmp_path / "again.gradexp.npz").logits.tobytes() == x.tobytes()


def test_saving_a_grid_too_large_for_json_saves_it_in_the_binary_form(qtbot, window, dialogs, tmp_path: Path) -> None:
    x = np.random.default_rng(1).standard_normal((4, JSON_SESSION_MAX_ELEMENTS // 4 + 1)).astype(np.float32)
    window.controller.replace(x, np.zeros(4, dtype=np.int64), dtype="float32")
    assert window.save_to(str(tmp_path / "big.gradexp.json"))
    assert not (tmp_path / "big.gradexp.json").exists()
    assert load_session(tmp_path / "big.gradexp.npz").logits.tobytes() == x.tobytes()
    assert "binary" in window.statusBar().currentMessage()
    assert window.document.path == tmp_path / "big.gradexp.npz" and not window.document.modified


# ------------------------------------------------------------------------------------------------ autosave
class _Gate:
    """Wraps the autosave's finishing step (fsync and rename, in its worker): records the thread of each write
    and holds it until released."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.threads: list[threading.Thread] = []
        self.release = threading.Event()
        self.started = threading.Semaphore(0)
        real: Callable[..., None] = autosave_module._finish

        def gated(*args: object, **kwargs: object) -> None:
            self.threads.append(threading.current_thread())
            self.started.release()
            self.release.wait(timeout=60)
            real(*args, **kwargs)

        monkeypatch.setattr(autosave_module, "_finish", gated)


@pytest.fixture
def big_state() -> ExplorerState:
    x = np.random.default_rng(2).standard_normal((32, 262_144)).astype(np.float32)
    s = ExplorerState(np.zeros((1, 2)), np.zeros(1, dtype=np.int64))
    s.replace(x, np.arange(32, dtype=np.int64), dtype="float32")
    assert s.logits.dtype == np.float32
    return s


def test_autosave_of_a_32_x_262144_grid_is_written_off_the_gui_thread_and_restores(
    qtbot, tmp_path: Path, big_state: ExplorerState, monkeypatch: pytest.MonkeyPatch
) -> None:
    gate = _Gate(monkeypatch)
    saver = Autosaver(big_state, tmp_path, delay_ms=1)
    saver.start()
    big_state.set_logit(31, 262_143, 4.25)
    qtbot.waitUntil(lambda: bool(gate.threads), timeout=5000)
    # The write is held in its thread, yet the GUI thread is back in the event loop: it never waited for it.
    assert gate.threads[0] is not threading.main_thread()
    assert not saver.path.exists()
    with qtbot.waitSignal(saver.saved, timeout=30_000):
        gate.release.set()
    back = load_session(saver.path)
    assert back.logits.dtype == np.float32 and back.logits.tobytes() == big_state.logits.tobytes()
    assert back.settings == big_state.settings
    # It restores in another window after a crash (the lock is stale: released here without discarding).
    saver._lock.unlock()
    other = Autosaver(ExplorerState(np.zeros((2, 2)), np.zeros(2, dtype=np.int64)), tmp_path)
    assert other.leftover() == saver.path
    restored: list[object] = []
    assert other.restore(restored.append)
    assert restored[0].logits.tobytes() == big_state.logits.tobytes()  # type: ignore[attr-defined]
    assert other.path.is_file() and not saver.path.exists()  # kept as the new window's autosave
    other.release()


def test_newest_wins_and_a_discard_drops_the_write_in_flight(
    qtbot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    gate = _Gate(monkeypatch)
    state = ExplorerState(np.zeros((3, 4)), np.zeros(3, dtype=np.int64))
    saver = Autosaver(state, tmp_path, delay_ms=1)
    saver.start()
    state.set_logit(0, 0, 1.0)
    qtbot.waitUntil(lambda: len(gate.threads) == 1, timeout=5000)
    for v in (2.0, 3.0, 4.0):  # while the first write is held: no second write (and no second snapshot) yet
        state.set_logit(0, 0, v)
        qtbot.wait(5)
    assert len(gate.threads) == 1
    gate.release.set()
    qtbot.waitUntil(lambda: saver.path.exists() and load_session(saver.path).logits[0, 0] == 4.0, timeout=10_000)
    assert len(gate.threads) == 2  # the first write, then one for the newest state
    qtbot.waitUntil(lambda: not saver._writing, timeout=10_000)

    gate.release.clear()
    state.set_logit(0, 0, 5.0)
    qtbot.waitUntil(lambda: len(gate.threads) == 3, timeout=5000)
    saver.discard()  # a clean exit while a write is in flight: it must not come back afterwards
    with qtbot.waitSignal(saver._relay.written, timeout=10_000) as blocker:
        gate.release.set()
    assert blocker.args == [False, ""]
    assert not saver.path.exists() and not list(tmp_path.glob(".autosave*"))
    saver.release()
    assert not lock_path(saver.path).exists()


@pytest.mark.parametrize("name", ["autosave-0123abcd.gradexp.json", "autosave.gradexp.json"])
def test_json_autosaves_of_earlier_versions_still_restore(qapp, tmp_path: Path, name: str) -> None:
    x, y = np.arange(8.0).reshape(2, 4), np.array([3, 1])
    save_session(tmp_path / name, x, y, CheckSettings(scheme="forward"))
    saver = Autosaver(ExplorerState(np.zeros((3, 4)), np.zeros(3, dtype=np.int64)), tmp_path)
    assert saver.leftovers() == [tmp_path / name]
    restored: list[object] = []
    assert saver.restore(restored.append)
    np.testing.assert_array_equal(restored[0].logits, x)  # type: ignore[attr-defined]
    assert not (tmp_path / name).exists()
    assert saver.path.name.endswith(".gradexp.npz") and saver.path.is_file()
    saver.release()


@pytest.mark.parametrize("large", [False, True], ids=["small grid", "large grid"])
def test_save_as_offers_both_forms_and_only_the_binary_one_for_a_large_grid(
    qtbot, window, dialogs, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, large: bool
) -> None:
    from PySide6.QtWidgets import QFileDialog

    from explorer.gui.file_commands import BINARY_FILTER, JSON_FILTER

    if large:
        n = 8
        window.controller.replace(np.zeros((n, JSON_SESSION_MAX_ELEMENTS // n + 1)), np.zeros(n, dtype=np.int64))
    asked: list[tuple[str, str, str]] = []

    def ask(_parent: object, _title: str, name: str, filters: str, chosen: str = "") -> tuple[str, str]:
        asked.append((name, filters, chosen))
        return str(tmp_path / "picked"), BINARY_FILTER  # a name without a suffix, the binary form chosen

    monkeypatch.setattr(QFileDialog, "getSaveFileName", staticmethod(ask))
    assert window.files.on_save_as()
    name, filters, chosen = asked[0]
    assert filters.split(";;") == ([BINARY_FILTER] if large else [JSON_FILTER, BINARY_FILTER])
    assert chosen == (BINARY_FILTER if large else JSON_FILTER) and name.endswith(".npz" if large else ".json")
    assert load_session(tmp_path / "picked.gradexp.npz").logits.shape == window.state.shape


def test_the_live_logits_are_written_in_slices_and_a_change_meanwhile_starts_again(
    qtbot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    state = ExplorerState(np.zeros((64, 8)), np.zeros(64, dtype=np.int64))
    monkeypatch.setattr(autosave_module, "COPY_BYTES", 8 * 8 * 4)  # four rows per turn of the event loop
    saver = Autosaver(state, tmp_path, delay_ms=1)
    saver.start()
    saver.save_later()
    assert saver._copy is not None and saver._rows_written == 4  # the rest waits for the event loop
    assert saver._partial.exists() and not saver.path.exists()
    state.set_logit(63, 7, 9.0)  # a row not written yet, and one already written
    state.set_logit(0, 0, -9.0)
    assert saver._copy is None and not saver._partial.exists()  # abandoned: it would have mixed two states
    with qtbot.waitSignal(saver.saved, timeout=10_000):
        pass
    back = load_session(saver.path).logits
    assert back[63, 7] == 9.0 and back[0, 0] == -9.0
    saver.release()


def test_a_large_grid_saved_under_a_json_name_does_not_replace_the_binary_file_unasked(
    qtbot, window, dialogs, tmp_path: Path
) -> None:
    from PySide6.QtWidgets import QMessageBox

    kept = tmp_path / "foo.gradexp.npz"
    save_session(kept, np.zeros((2, 3)), np.zeros(2, dtype=np.int64), CheckSettings())
    window.controller.replace(np.zeros((8, JSON_SESSION_MAX_ELEMENTS // 8 + 1)), np.zeros(8, dtype=np.int64))
    dialogs.answer = QMessageBox.StandardButton.No
    assert not window.save_to(str(tmp_path / "foo.gradexp.json"))
    assert dialogs[-1][0] == "question" and "foo.gradexp.npz" in dialogs[-1][2]
    assert load_session(kept).logits.shape == (2, 3)  # kept
    assert "kept" in window.statusBar().currentMessage()
    dialogs.answer = QMessageBox.StandardButton.Yes
    assert window.save_to(str(tmp_path / "foo.gradexp.json"))
    assert load_session(kept).logits.shape == window.state.shape


def test_an_archive_with_an_entry_twice_is_refused_not_guessed(tmp_path: Path) -> None:
    import io
    import warnings
    import zipfile

    from explorer.files.errors import FileFormatError

    good = tmp_path / "good.gradexp.npz"
    save_session(good, np.zeros((2, 3)), np.zeros(2, dtype=np.int64), CheckSettings())
    bad = tmp_path / "twice.gradexp.npz"
    with zipfile.ZipFile(good) as src, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zipfile warns about the duplicate name it is told to write
        with zipfile.ZipFile(bad, "w") as out:
            for info in src.infolist():
                out.writestr(info.filename, src.read(info))
            buffer = io.BytesIO()
            np.save(buffer, np.ones((2, 3)))
            out.writestr("logits.npy", buffer.getvalue())
    with pytest.raises(FileFormatError, match=r"'logits\.npy' more than once"):
        load_session(bad)
