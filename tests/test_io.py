"""Sessions, data exports and logits files: round trips, and every bad file refused with one clear sentence."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from explorer.core import CheckSettings, check_gradient
from explorer.files.io import (
    FileFormatError,
    atomic_write,
    code_snippet,
    export_csv,
    export_npz,
    load_logits,
    load_session,
    read_csv_export,
    save_session,
    session_to_json,
)

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def problem() -> tuple[np.ndarray, np.ndarray, CheckSettings]:
    rng = np.random.default_rng(4)
    x = rng.normal(size=(4, 5)) * 3
    y = np.array([0, 4, -100, 2])
    s = CheckSettings(eps=3e-6, scheme="central4", dtype="float32", reduction="mean", label_smoothing=0.1,
                      weight=(1.0, 0.5, 2.0, 1.5, 0.25), atol=1e-3)  # fmt: skip
    return x, y, s


def test_session_round_trip_is_exact(tmp_path: Path, problem: tuple) -> None:
    x, y, s = problem
    path = tmp_path / "s.gradexp.json"
    save_session(path, x, y, s)
    back = load_session(path)
    np.testing.assert_array_equal(back.logits, x)
    np.testing.assert_array_equal(back.labels, y)
    assert back.settings == s


def test_csv_and_npz_round_trip_exactly(tmp_path: Path, problem: tuple) -> None:
    x, y, s = problem
    report = check_gradient(x, y, s)
    export_csv(tmp_path / "r.csv", report)
    meta, arrays = read_csv_export(tmp_path / "r.csv")
    assert meta["scheme"] == "central4" and meta["eps"] == 3e-6 and meta["loss"] == report.loss
    np.testing.assert_array_equal(arrays["logit"], report.logits.astype(np.float64))
    np.testing.assert_array_equal(arrays["analytic"], report.grad_analytic.astype(np.float64))
    np.testing.assert_array_equal(arrays["numeric"], report.grad_numeric.astype(np.float64))
    np.testing.assert_array_equal(arrays["abs_err"], report.abs_err)
    np.testing.assert_array_equal(arrays["labels"], y)
    export_npz(tmp_path / "r.npz", report)
    with np.load(tmp_path / "r.npz", allow_pickle=False) as z:
        np.testing.assert_array_equal(z["grad_numeric"], report.grad_numeric)
        assert z["grad_numeric"].dtype == np.float32
        np.testing.assert_array_equal(z["labels"], y)
        assert json.loads(str(z["settings"]))["weight"] == [1.0, 0.5, 2.0, 1.5, 0.25]


def _session_text(**changes: object) -> str:
    doc = json.loads(session_to_json([[1.0, 2.0], [3.0, 4.0]], [0, 1], CheckSettings()))
    doc.update(changes)
    return json.dumps(doc)


BAD_SESSIONS = {
    "truncated": (_session_text()[:-40], "not valid JSON"),
    "ragged": (_session_text(logits=[[1.0, 2.0], [3.0]]), "rectangular"),
    "label out of range": (_session_text(labels=[0, 7]), "label 7 in row 1"),
    "text for numbers": (_session_text(logits=[["a", "b"], [1, 2]]), "rectangular table of numbers"),
    "newer version": (_session_text(version=99), "newer Gradient Explorer"),
    "not a session": (json.dumps({"hello": 1}), "not a Gradient Explorer session"),
    "bad setting": (_session_text(settings={"eps": -1}), "bad settings"),
    "unknown setting": (_session_text(settings={"speed": 3}), "unknown setting"),
    "wrong label count": (_session_text(labels=[0]), "2 integer labels"),
    "binary": ("\x00\xff garbage", "not valid JSON"),
}


@pytest.mark.parametrize("case", sorted(BAD_SESSIONS))
def test_bad_session_files_are_refused_with_a_message(tmp_path: Path, case: str) -> None:
    text, fragment = BAD_SESSIONS[case]
    path = tmp_path / "bad.json"
    path.write_text(text, encoding="utf-8", errors="surrogateescape")
    with pytest.raises(FileFormatError, match=fragment):
        load_session(path)


def test_missing_and_oversized_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(FileFormatError, match="does not exist"):
        load_session(tmp_path / "nope.json")
    big = tmp_path / "big.csv"
    big.write_text("1,2\n" * 100)
    with pytest.raises(FileFormatError, match="refused"):
        load_logits(big, max_bytes=100)


def test_load_logits_formats(tmp_path: Path) -> None:
    x = np.arange(6.0).reshape(2, 3) - 2.5
    np.save(tmp_path / "a.npy", x)
    np.testing.assert_array_equal(load_logits(tmp_path / "a.npy")[0], x)
    np.savez(tmp_path / "a.npz", logits=x, labels=np.array([2, 0]))
    got, labels = load_logits(tmp_path / "a.npz")
    np.testing.assert_array_equal(got, x)
    np.testing.assert_array_equal(labels, [2, 0])
    (tmp_path / "a.csv").write_text("c0,c1,c2,target\n-2.5,-1.5,-0.5,1\n0.5,1.5,2.5,0\n")
    got, labels = load_logits(tmp_path / "a.csv", labels_column="target")
    np.testing.assert_array_equal(got, x)
    np.testing.assert_array_equal(labels, [1, 0])
    (tmp_path / "a.tsv").write_text("-2.5\t-1.5\t-0.5\n0.5\t1.5\t2.5\n")
    (tmp_path / "y.txt").write_text("2\n1\n")
    got, labels = load_logits(tmp_path / "a.tsv", labels_path=tmp_path / "y.txt")
    np.testing.assert_array_equal(got, x)
    np.testing.assert_array_equal(labels, [2, 1])
    (tmp_path / "a.txt").write_text("# printed\n-2.5 -1.5 -0.5\n0.5 1.5 2.5\n")
    np.testing.assert_array_equal(load_logits(tmp_path / "a.txt")[0], x)


@pytest.mark.parametrize(
    ("name", "content", "fragment"),
    [
        ("ragged.csv", "1,2,3\n4,5\n", "different numbers of values"),
        ("letters.csv", "1,2\nx,4\n", "not a number"),
        ("empty.txt", "\n\n", "no numbers"),
        ("bad.npz", "not a zip", "not a valid .npz"),
        ("bad.npy", "not numpy", "not a valid .npy"),
        ("x.json", "{}", "unknown file type"),
    ],
)
def test_bad_logits_files(tmp_path: Path, name: str, content: str, fragment: str) -> None:
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(FileFormatError, match=fragment):
        load_logits(path)


def test_pickled_arrays_are_never_loaded(tmp_path: Path) -> None:
    np.save(tmp_path / "obj.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(FileFormatError, match="pickled data"):
        load_logits(tmp_path / "obj.npy")


def test_atomic_write_keeps_the_old_file_when_the_write_fails(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "s.json"
    path.write_text("old")

    def fail(*_args: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", fail)
    with pytest.raises(OSError, match="disk full"):
        atomic_write(path, b"new")
    assert path.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["s.json"]


def test_code_snippet_runs_and_reproduces_the_check(tmp_path: Path, problem: tuple) -> None:
    x, y, s = problem
    script = tmp_path / "snippet.py"
    script.write_text(code_snippet(x, y, s))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, env=env, check=True)
    report = check_gradient(x, y, s)
    assert f"ok {report.ok}" in out.stdout
    assert f"max abs error {report.comparison.max_abs_err}" in out.stdout


def test_session_keeps_evaluate_tolerance_and_bfloat16(tmp_path: Path) -> None:
    x, y = np.array([[1.0, 2.0, 3.0]]), np.array([1])
    s = CheckSettings(eps=0.1, dtype="bfloat16", evaluate="loss", tolerance="noise", reduction="mean")
    path = tmp_path / "s.gradexp.json"
    save_session(path, x, y, s)
    assert json.loads(path.read_text())["version"] == 2
    assert load_session(path).settings == s


def test_a_format_1_session_keeps_the_fixed_verdict_it_was_saved_under(tmp_path: Path) -> None:
    doc = {"format": "gradient-explorer-session", "version": 1, "logits": [[1.0, 2.0]], "labels": [0],
           "settings": {"eps": 1e-5, "dtype": "float32"}}  # fmt: skip
    path = tmp_path / "old.gradexp.json"
    path.write_text(json.dumps(doc))
    settings = load_session(path).settings
    assert settings.tolerance == "fixed" and settings.evaluate == "row"
    doc["version"] = 2
    path.write_text(json.dumps(doc))
    assert load_session(path).settings.tolerance == "noise"


def test_npz_export_of_a_bfloat16_check_reads_back_in_plain_numpy(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """bfloat16 arrays were saved as raw void bytes that plain NumPy cannot compare or compute with."""
    from explorer.core import CheckSettings, check_gradient
    from explorer.files.data_export import export_npz

    report = check_gradient(np.array([[1.0, 2.5, -3.0], [0.5, 0.0, 8.0]]), np.array([0, 2]),
                            CheckSettings(dtype="bfloat16", eps=1e-1))  # fmt: skip
    export_npz(tmp_path / "bf16.npz", report)
    with np.load(tmp_path / "bf16.npz", allow_pickle=False) as data:
        for key in ("logits", "grad_analytic", "grad_numeric"):
            assert data[key].dtype == np.float32
            np.testing.assert_array_equal(data[key], getattr(report, key).astype(np.float32))
