"""Random and mutated bytes through every loader: the only outcomes are a valid result or the loader's own error."""

from __future__ import annotations

import io
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from explorer.core import CheckSettings, check_gradient
from explorer.files.io import (
    FileFormatError,
    GridLimits,
    export_csv,
    load_logits,
    load_session,
    read_csv_export,
    session_to_json,
)

LIMITS = GridLimits(64, 64, 1024)


def _npy(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, arr)
    return buf.getvalue()


def _npz(compressed: bool) -> bytes:
    buf = io.BytesIO()
    (np.savez_compressed if compressed else np.savez)(buf, logits=np.arange(6.0).reshape(2, 3), labels=np.array([2, 0]))
    return buf.getvalue()


def _csv_export() -> bytes:
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "r.csv"
        export_csv(path, check_gradient(np.array([[1.0, 2.0], [0.0, -1.0]]), np.array([1, 0]), CheckSettings()))
        return path.read_bytes()


#: (suffix, valid bytes, reader) for every loader.
SEEDS: list[tuple[str, bytes, Callable[[Path], object]]] = [
    (".npy", _npy(np.arange(6.0).reshape(2, 3)), lambda p: load_logits(p, limits=LIMITS)),
    (".npy", _npy(np.arange(6, dtype=np.int16)), lambda p: load_logits(p, limits=LIMITS)),
    (".npz", _npz(False), lambda p: load_logits(p, limits=LIMITS)),
    (".npz", _npz(True), lambda p: load_logits(p, limits=LIMITS)),
    (".csv", b"a,b,y\n1.5,-2e-3,1\n3,4,0\n", lambda p: load_logits(p, labels_column="y", limits=LIMITS)),
    (".tsv", b"1\t2\n3\t4\n", lambda p: load_logits(p, limits=LIMITS)),
    (".txt", b"# c\n1 2 3\n4 5 6\n", lambda p: load_logits(p, limits=LIMITS)),
    (
        ".json",
        session_to_json([[1.0, 2.0], [3.0, 4.0]], [0, 1], CheckSettings(weight=(1.0, 2.0))).encode(),
        lambda p: load_session(p, limits=LIMITS),
    ),
    (".csv", _csv_export(), lambda p: read_csv_export(p, limits=LIMITS)),
]


def _check(result: object) -> None:
    """A loader's result is well formed."""
    if isinstance(result, tuple) and len(result) == 2 and isinstance(result[0], np.ndarray):
        logits, labels = result
        assert logits.ndim == 2 and logits.dtype == np.float64 and 0 < logits.size <= LIMITS.max_elements
        assert labels is None or (labels.dtype == np.int64 and labels.shape == (logits.shape[0],))
    elif isinstance(result, tuple):  # read_csv_export
        meta, arrays = result
        assert isinstance(meta, dict) and arrays["logit"].ndim == 2
    else:  # a Session
        logits = result.logits  # type: ignore[attr-defined]
        assert logits.ndim == 2 and np.all(np.isfinite(logits)) and logits.size <= LIMITS.max_elements
        assert result.labels.shape == (logits.shape[0],)  # type: ignore[attr-defined]


def _load(suffix: str, data: bytes, reader: Callable[[Path], object]) -> None:
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / f"f{suffix}"
        path.write_bytes(data)
        try:
            result = reader(path)
        except FileFormatError as exc:
            message = str(exc)
        else:
            _check(result)
            return
    assert message and "\n" not in message  # one sentence for the status bar and the CLI's one line


def test_the_seeds_load() -> None:
    for suffix, data, reader in SEEDS:
        with tempfile.TemporaryDirectory() as d:
            path = Path(d) / f"f{suffix}"
            path.write_bytes(data)
            _check(reader(path))


@given(st.sampled_from(range(len(SEEDS))), st.binary(max_size=600))
def test_random_bytes(seed: int, data: bytes) -> None:
    suffix, _, reader = SEEDS[seed]
    _load(suffix, data, reader)


@given(st.data())
def test_mutated_files(data: st.DataObject) -> None:
    suffix, valid, reader = SEEDS[data.draw(st.sampled_from(range(len(SEEDS))), label="seed")]
    buf = bytearray(valid)
    for _ in range(data.draw(st.integers(1, 6), label="mutations")):
        kind = data.draw(st.sampled_from(["flip", "set", "cut", "insert", "delete"]))
        at = data.draw(st.integers(0, max(len(buf) - 1, 0)))
        if kind == "flip" and buf:
            buf[at] ^= 1 << data.draw(st.integers(0, 7))
        elif kind == "set" and buf:
            buf[at] = data.draw(st.sampled_from([0, 0xFF, 0x7F, 0x80, ord("9"), ord("["), ord(","), ord("e")]))
        elif kind == "cut":
            del buf[at:]
        elif kind == "insert":
            buf[at:at] = data.draw(st.binary(min_size=1, max_size=16))
        elif kind == "delete":
            del buf[at : at + data.draw(st.integers(1, 16))]
    _load(suffix, bytes(buf), reader)
