""".safetensors logits and labels: written by the safetensors package, read with the bounded-read rules."""

from __future__ import annotations

import contextlib
import json
import os
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from explorer.files.errors import FileFormatError, FileTooLargeError
from explorer.files.limits import GridLimits
from explorer.files.loaders import LOGITS_SUFFIXES, load_logits, logits_file_dtype
from explorer.files.tensors import MAX_SAFETENSORS_HEADER_BYTES, open_safetensors

safetensors_numpy = pytest.importorskip("safetensors.numpy")
ROOT = Path(__file__).resolve().parent.parent


def _raw(path: Path, header: object, data: bytes = b"", length: int | None = None) -> Path:
    text = json.dumps(header).encode() if not isinstance(header, bytes) else header
    path.write_bytes(struct.pack("<Q", len(text) if length is None else length) + text + data)
    return path


@pytest.mark.parametrize("dtype", ["float16", "float32", "float64"])
def test_package_written_file_round_trips(tmp_path: Path, dtype: str) -> None:
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(5, 7)).astype(dtype)
    labels = rng.integers(0, 7, 5)
    p = tmp_path / "batch.safetensors"
    safetensors_numpy.save_file({"logits": logits, "labels": labels, "extra": np.zeros(3)}, str(p))
    x, y = load_logits(p)
    np.testing.assert_array_equal(x, logits.astype(np.float64))
    np.testing.assert_array_equal(y, labels)
    assert logits_file_dtype(p) == dtype
    assert ".safetensors" in LOGITS_SUFFIXES


def test_bfloat16_tensors_from_torch(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    safetensors_torch = pytest.importorskip("safetensors.torch")
    logits = torch.randn(6, 10, generator=torch.Generator().manual_seed(1)).to(torch.bfloat16)
    labels = torch.arange(6) % 10
    p = tmp_path / "model_out.safetensors"
    safetensors_torch.save_file({"logits": logits, "labels": labels}, str(p))
    x, y = load_logits(p)
    np.testing.assert_array_equal(x, logits.float().numpy().astype(np.float64))  # exact
    np.testing.assert_array_equal(y, labels.numpy())
    assert logits_file_dtype(p) == "bfloat16"
    with open_safetensors(p) as st:
        assert st.read("logits").dtype.name == "bfloat16"


def test_named_and_single_entries(tmp_path: Path) -> None:
    p = tmp_path / "one.safetensors"
    safetensors_numpy.save_file({"scores": np.eye(3, dtype=np.float32)}, str(p))
    x, y = load_logits(p)
    assert x.shape == (3, 3) and y is None
    q = tmp_path / "two.safetensors"
    safetensors_numpy.save_file({"a": np.eye(2), "b": np.ones((2, 4))}, str(q))
    assert load_logits(q, logits_key="b")[0].shape == (2, 4)
    with pytest.raises(FileFormatError, match=r"no 'logits' tensor .*a, b"):
        load_logits(q)


def test_labels_from_a_second_safetensors_file(tmp_path: Path) -> None:
    lp = tmp_path / "labels.safetensors"
    safetensors_numpy.save_file({"labels": np.array([[2], [0]], dtype=np.int32)}, str(lp))
    xp = tmp_path / "x.npy"
    np.save(xp, np.zeros((2, 3)))
    assert load_logits(xp, labels_path=lp)[1].tolist() == [2, 0]


def test_grid_limits_are_checked_before_values_are_read(tmp_path: Path) -> None:
    p = tmp_path / "big.safetensors"
    safetensors_numpy.save_file({"logits": np.zeros((4, 5), dtype=np.float32)}, str(p))
    with pytest.raises(FileTooLargeError, match="over the limit"):
        load_logits(p, limits=GridLimits(3, 10, 100))


HOSTILE = {
    "header length beyond the cap": ({}, b"", MAX_SAFETENSORS_HEADER_BYTES + 1, "refused"),
    "header length of 2**63": ({}, b"", 2**63, "refused"),
    "header longer than the file": ({}, b"", 5000, "longer than the file"),
    "not JSON": (b"{nope", b"", None, "not JSON"),
    "not an object": ([1, 2], b"", None, "not a JSON object"),
    "not UTF-8": (b'{"\xff": 1}', b"", None, "not JSON"),
    "duplicate keys": (b'{"a": {}, "a": {}}', b"", None, "duplicate"),
    "object dtype": ({"logits": {"dtype": "O", "shape": [1], "data_offsets": [0, 8]}}, b"\0" * 8, None, "only"),
    "complex dtype": ({"logits": {"dtype": "C64", "shape": [1], "data_offsets": [0, 8]}}, b"\0" * 8, None, "only"),
    "negative shape": ({"logits": {"dtype": "F32", "shape": [-1], "data_offsets": [0, 4]}}, b"\0" * 4, None, "shape"),
    "float shape": ({"logits": {"dtype": "F32", "shape": [1.5], "data_offsets": [0, 4]}}, b"\0" * 4, None, "shape"),
    "size mismatch": ({"logits": {"dtype": "F32", "shape": [3], "data_offsets": [0, 4]}}, b"\0" * 4, None, "declares"),
    "beyond the end": (
        {"logits": {"dtype": "F32", "shape": [2**30, 2**30], "data_offsets": [0, 2**62]}},
        b"",
        None,
        "beyond the end",
    ),
    "truncated": ({"logits": {"dtype": "F64", "shape": [4], "data_offsets": [0, 32]}}, b"\0" * 16, None, "truncated"),
    "bad metadata": ({"__metadata__": {"a": 1}}, b"", None, "__metadata__"),
    "offsets not a pair": ({"logits": {"dtype": "F32", "shape": [1], "data_offsets": [0]}}, b"\0" * 4, None, "offsets"),
    "short file": (None, b"", None, "shorter"),
}


@pytest.mark.parametrize("case", list(HOSTILE))
def test_hostile_files_are_one_message(tmp_path: Path, case: str) -> None:
    header, data, length, message = HOSTILE[case]
    p = tmp_path / "bad.safetensors"
    if header is None:
        p.write_bytes(b"\x01\x02")
    else:
        _raw(p, header, data, length)
    with pytest.raises(FileFormatError, match=message):
        load_logits(p)


def test_a_fifo_is_refused(tmp_path: Path) -> None:
    p = tmp_path / "pipe.safetensors"
    os.mkfifo(p)
    with pytest.raises(FileFormatError, match="pipe"):
        load_logits(p)


def test_random_bytes_never_escape_as_another_error(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    good = tmp_path / "good.safetensors"
    safetensors_numpy.save_file({"logits": np.ones((2, 3)), "labels": np.array([0, 1])}, str(good))
    blob = bytearray(good.read_bytes())
    for k in range(200):
        mutated = bytearray(blob)
        for _ in range(int(rng.integers(1, 6))):
            mutated[int(rng.integers(0, len(mutated)))] = int(rng.integers(0, 256))
        p = tmp_path / f"m{k}.safetensors"
        p.write_bytes(bytes(mutated[: int(rng.integers(0, len(mutated) + 1))] if k % 3 == 0 else mutated))
        with contextlib.suppress(FileFormatError):  # anything else escaping fails the test
            load_logits(p)


@pytest.mark.parametrize("dtype", ["bfloat16", "float32"])
def test_cli_checks_a_safetensors_file(tmp_path: Path, dtype: str) -> None:
    rng = np.random.default_rng(3)
    p = tmp_path / "batch.safetensors"
    safetensors_numpy.save_file(
        {"logits": rng.normal(size=(8, 5)).astype(np.float32), "labels": rng.integers(0, 5, 8)}, str(p)
    )
    run = subprocess.run(
        [sys.executable, "-m", "explorer", "check", "--logits", str(p), "--dtype", dtype],
        capture_output=True, text=True, cwd=ROOT, timeout=120, check=False,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    bad = tmp_path / "bad.safetensors"
    _raw(bad, {"logits": {"dtype": "F32", "shape": [3], "data_offsets": [0, 4]}}, b"\0" * 4)
    run = subprocess.run(
        [sys.executable, "-m", "explorer", "check", "--logits", str(bad)],
        capture_output=True, text=True, cwd=ROOT, timeout=120, check=False,
    )  # fmt: skip
    assert run.returncode == 2 and len(run.stderr.strip().splitlines()) == 1
