"""A corpus of hostile and broken input files, generated at test time.

Files that would be large (a zip bomb, a 64 MB ``.npy``) or special (a FIFO, a
symlink to ``/dev/zero``) are made here rather than stored. Every case is a
:class:`Case`: a file name, a function that writes the file into a folder, and a
fragment the one-line error must contain. Import as ``from hostile import CASES``
(pytest puts ``tests/`` on ``sys.path``).
"""

from __future__ import annotations

import json
import os
import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = ["CASES", "SESSION_CASES", "Case", "npy_header", "raw_zip"]


@dataclass(frozen=True)
class Case:
    """One hostile file: ``make(folder)`` writes it and returns its path; the refusal mentions ``fragment``."""

    name: str
    make: Callable[[Path], Path]
    fragment: str


def npy_header(shape: tuple[int, ...], descr: str = "<f8", fortran: bool = False) -> bytes:
    """A version 1.0 ``.npy`` header (magic, length, dict, padding) declaring ``shape`` and ``descr``."""
    d = f"{{'descr': {descr!r}, 'fortran_order': {fortran}, 'shape': {shape!r}, }}"
    pad = 64 - (10 + len(d) + 1) % 64
    text = (d + " " * pad + "\n").encode("latin1")
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(text)) + text


def raw_zip(members: list[tuple[str, bytes, int, int, int | None, bytes | None]]) -> bytes:
    """A zip archive written by hand, so every field can lie.

    Each member is ``(name, payload, method, flags, declared_size, stored_bytes)``:
    the payload's CRC is recorded, ``declared_size`` (default: the payload's length)
    is the uncompressed size in the headers, and ``stored_bytes`` (default: the payload
    deflated for method 8, else the payload) is what the archive holds.
    """
    entries = []
    for name, payload, method, flags, declared, stored in members:
        if stored is None:
            stored = zlib.compress(payload)[2:-4] if method == 8 else payload
        size = len(payload) if declared is None else declared
        entries.append((name, stored, method, flags, zlib.crc32(payload), size))
    return _zip_entries(entries)


def _zip_entries(entries: list[tuple[str, bytes, int, int, int, int]]) -> bytes:
    """``(name, stored_bytes, method, flags, crc, uncompressed_size)`` as a zip archive (sizes below 4 GiB)."""
    out = bytearray()
    central = bytearray()
    for name, stored, method, flags, crc, size in entries:
        fname = name.encode()
        offset = len(out)
        out += struct.pack("<4s5H3L2H", b"PK\x03\x04", 20, flags, method, 0, 0, crc, len(stored), size, len(fname), 0)
        out += fname + stored
        central += struct.pack(
            "<4s6H3L5H2L", b"PK\x01\x02", 20, 20, flags, method, 0, 0, crc, len(stored), size, len(fname), 0, 0, 0, 0,
            0, offset,
        )  # fmt: skip
        central += fname
    start = len(out)
    out += central
    out += struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, len(entries), len(entries), len(central), start, 0)
    return bytes(out)


def _write(name: str, data: bytes) -> Callable[[Path], Path]:
    def make(folder: Path) -> Path:
        path = folder / name
        path.write_bytes(data)
        return path

    return make


def _text(name: str, text: str) -> Callable[[Path], Path]:
    return _write(name, text.encode("utf-8"))


def _symlink_to_dev_zero(name: str) -> Callable[[Path], Path]:
    def make(folder: Path) -> Path:
        path = folder / name
        path.symlink_to("/dev/zero")
        return path

    return make


def _fifo(name: str) -> Callable[[Path], Path]:
    def make(folder: Path) -> Path:
        path = folder / name
        os.mkfifo(path)
        return path

    return make


def _sparse_npy(name: str, shape: tuple[int, ...], descr: str) -> Callable[[Path], Path]:
    """A full-size ``.npy`` of zeros without writing them (a sparse file)."""

    def make(folder: Path) -> Path:
        path = folder / name
        header = npy_header(shape, descr)
        count = int(np.prod(shape, dtype=object))
        with path.open("wb") as f:
            f.write(header)
            f.truncate(len(header) + count * np.dtype(descr).itemsize)
        return path

    return make


def _deflate_bomb(name: str, shape: tuple[int, ...], descr: str) -> Callable[[Path], Path]:
    """An ``.npz`` whose one member is a valid, honest ``.npy`` of zeros: tiny compressed, huge inflated.

    The deflate stream repeats one fully flushed block of 4 MiB of zeros (each block
    starts afresh, so repeating it is valid), which takes a second instead of
    deflating gigabytes; the CRC is computed over the real content.
    """

    def make(folder: Path) -> Path:
        path = folder / name
        header = npy_header(shape, descr)
        nbytes = int(np.prod(shape, dtype=object)) * np.dtype(descr).itemsize
        chunk = bytes(1 << 22)
        assert nbytes % len(chunk) == 0
        start = zlib.compressobj(9, zlib.DEFLATED, -15)
        head = start.compress(header) + start.flush(zlib.Z_FULL_FLUSH)
        body = zlib.compressobj(9, zlib.DEFLATED, -15)
        block = body.compress(chunk) + body.flush(zlib.Z_FULL_FLUSH)
        tail = zlib.compressobj(9, zlib.DEFLATED, -15).flush(zlib.Z_FINISH)
        crc = zlib.crc32(header)
        for _ in range(nbytes // len(chunk)):
            crc = zlib.crc32(chunk, crc)
        stored = head + block * (nbytes // len(chunk)) + tail
        path.write_bytes(_zip_entries([("logits.npy", stored, 8, 0, crc, len(header) + nbytes)]))
        return path

    return make


def _npz_bytes(**arrays: np.ndarray) -> bytes:
    import io

    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def _npy_bytes(arr: np.ndarray, allow_pickle: bool = False) -> bytes:
    import io

    buf = io.BytesIO()
    np.save(buf, arr, allow_pickle=allow_pickle)
    return buf.getvalue()


_GOOD = np.arange(6.0).reshape(2, 3)
_GOOD_NPY = _npy_bytes(_GOOD)
_LYING = npy_header((2, 3)) + bytes(48) + bytes(1 << 20)  # one MiB more than the header declares


def _many_members() -> bytes:
    return raw_zip([(f"a{i}.npy", _GOOD_NPY, 0, 0, None, None) for i in range(2000)])


#: Logits files: each goes through ``check --logits`` (with labels where it would otherwise load).
CASES: list[Case] = [
    Case("symlink to /dev/zero", _symlink_to_dev_zero("zero.csv"), "not a regular file"),
    Case("FIFO", _fifo("pipe.csv"), "pipe"),
    Case("FIFO npy", _fifo("pipe.npy"), "pipe"),
    Case("zip bomb 16384 x 16384 float64", _deflate_bomb("bomb.npz", (16384, 16384), "<f8"), "over the limit"),
    Case("npy header claims 100000 x 100000", _write("claims.npy", npy_header((100000, 100000))), "over the limit"),
    Case("npy header claims 10**30 values", _write("claims30.npy", npy_header((10**15, 10**15))), "over the limit"),
    Case("bool npy 8192 x 8192", _sparse_npy("bools.npy", (8192, 8192), "|b1"), "over the limit"),
    Case("npy 3-D", _write("cube.npy", npy_header((2, 2, 2)) + bytes(64)), "3-D"),
    Case("npy object dtype", _write("obj.npy", _npy_bytes(np.array([{"a": 1}], dtype=object), True)), "pickled"),
    Case("npy strings", _write("str.npy", _npy_bytes(np.array([["a", "b"]]))), "only booleans, integers and floats"),
    Case("npy complex", _write("cplx.npy", _npy_bytes(np.ones((2, 2), complex))), "only booleans, integers"),
    Case("npy structured", _write("rec.npy", _npy_bytes(np.zeros(3, dtype=[("a", "<f8")]))), "only booleans"),
    Case("npy truncated", _write("trunc.npy", _GOOD_NPY[:-5]), "truncated"),
    Case("npy header only", _write("hdr.npy", _GOOD_NPY[:20]), "not a valid .npy"),
    Case("npy garbage header", _write("garbage.npy", b"\x93NUMPY\x01\x00\x10\x00{'descr': ((((((\n"), "header"),
    Case("npy version 9", _write("v9.npy", b"\x93NUMPY\x09\x00" + _GOOD_NPY[8:]), "version 9.0"),
    Case("npy nested header", _write("deep.npy", npy_header((2,), descr="(" * 3000)), "header"),
    Case("not numpy", _text("junk.npy", "hello"), "not a valid .npy"),
    Case(
        "npz encrypted member",
        _write("enc.npz", raw_zip([("logits.npy", _GOOD_NPY, 0, 0x1, None, None)])),
        "encrypted",
    ),
    Case(
        "npz unknown compression",
        _write("ppmd.npz", raw_zip([("logits.npy", _GOOD_NPY, 98, 0, None, None)])),
        "compression method 98",
    ),
    Case(
        "npz corrupt deflate",
        _write("corrupt.npz", raw_zip([("logits.npy", _GOOD_NPY, 8, 0, None, b"\xff" * 60)])),
        "cannot be read",
    ),
    Case(
        "npz bad checksum",
        _write("crc.npz", raw_zip([("logits.npy", _GOOD_NPY, 0, 0, None, _GOOD_NPY[:-8] + b"\x01" * 8)])),
        "CRC",
    ),
    Case("npz member not npy", _write("raw.npz", raw_zip([("logits", b"\x00" * 48, 0, 0, None, None)])), "not a .npy"),
    Case("npz only a text member", _write("txt.npz", raw_zip([("x.txt", b"hello", 0, 0, None, None)])), "no 'logits'"),
    Case(
        "npz member longer than declared",
        _write("lying.npz", raw_zip([("logits.npy", _LYING, 8, 0, None, None)])),
        "damaged",
    ),
    Case(
        "npz member size understated",
        _write("under.npz", raw_zip([("logits.npy", _LYING, 8, 0, len(_GOOD_NPY), None)])),
        "CRC",
    ),
    Case("npz 2000 members", _write("many.npz", _many_members()), "entries"),
    Case("npz truncated", _write("cut.npz", _npz_bytes(logits=_GOOD, labels=np.array([0, 1]))[:-30]), "valid .npz"),
    Case("npz object labels", _write("objlab.npz", raw_zip([
        ("logits.npy", _GOOD_NPY, 0, 0, None, None),
        ("labels.npy", _npy_bytes(np.array([1, "a"], dtype=object), True), 0, 0, None, None),
    ])), "pickled"),
    Case("csv 2.O in the first row", _text("typo.csv", "2.O,1,3\n4,5,6\n7,8,9\n"), "line 1, column 1"),
    Case("csv typo in a data row", _text("typo2.csv", "1,2,3\n4,5,6\n7,8,x9\n"), "line 3, column 3"),
    Case("csv digit separator", _text("under.csv", "1_000,2\n3,4\n"), "'1_000' is not a number"),
    Case("csv Arabic-Indic digits", _text("arabic.csv", "\u0661,2\n3,4\n"), "line 1, column 1"),
    Case("csv nan", _text("nan.csv", "1,2\n3,nan\n"), "line 2, column 2"),
    Case("csv decimal comma in tsv", _text("comma.tsv", "1,5\t2\n3\t4\n"), "line 1, column 1"),
    Case("csv empty field", _text("empty.csv", "1,,3\n4,5,6\n"), "an empty value"),
    Case("csv ragged", _text("ragged.csv", "1,2,3\n4,5\n"), "different numbers of values"),
    Case("csv NUL bytes", _write("nul.csv", b"1,2\n\x00\x00,3\n"), "line 2"),
    Case("csv not UTF-8", _write("latin.csv", b"\xff\xfe1,2\n"), "not a UTF-8"),
    Case("csv one enormous row", _write("wide.csv", b"0," * (2**25 + 10) + b"0\n"), "more than"),
    Case("txt only comments", _text("comments.txt", "# nothing\n\n"), "no numbers"),
    Case("csv header only", _text("header.csv", "a,b,c\n"), "no numbers"),
]


def _session(**changes: object) -> str:
    doc: dict[str, object] = {
        "format": "gradient-explorer-session",
        "version": 1,
        "logits": [[1.0, 2.0, 3.0], [0.5, -1.0, 2.0]],
        "labels": [0, 2],
        "settings": {"eps": 1e-5, "scheme": "central", "dtype": "float64"},
    }
    doc.update(changes)
    return json.dumps(doc)


def _settings(**changes: object) -> str:
    return _session(settings={"eps": 1e-5, **changes})


_BIG = 10**400
_HUGE_VERSION = _session().replace('"version": 1', '"version": ' + "9" * 5000)
_DEEP = "[" * 100_000 + "]" * 100_000

#: Session files: each goes through ``check --session`` and the window's open path.
SESSION_CASES: list[Case] = [
    Case("session atol text", _text("atol.json", _settings(atol="x")), "atol"),
    Case("session rtol list", _text("rtol.json", _settings(rtol=[1])), "rtol"),
    Case("session 400-digit atol", _text("bigatol.json", _settings(atol=_BIG)), "atol"),
    Case("session 400-digit logit", _text("biglogit.json", _session(logits=[[_BIG, 1.0]], labels=[0])), "too large"),
    Case("session 400-digit label", _text("biglabel.json", _session(labels=[_BIG, 0])), "label"),
    Case("session 5000-digit number", _text("huge.json", _HUGE_VERSION), "not a session"),
    Case("session deep nesting", _text("deep.json", _DEEP), "nested too deeply"),
    Case("session deep nesting in logits", _text("deep2.json", _session(logits="@").replace('"@"', _DEEP)), "nested"),
    Case("session nested rows", _text("nest.json", _session(logits=[[[[1.0]]], [[[2.0]]]], labels=[0, 0])), "numbers"),
    Case("session ignore_index 1e30", _text("ignore.json", _settings(ignore_index=1e30)), "ignore_index"),
    Case("session dtype e", _text("e.json", _settings(dtype="e")), "dtype"),
    Case("session dtype f2", _text("f2.json", _settings(dtype="f2")), "dtype"),
    Case("session dtype >f8", _text("f8.json", _settings(dtype=">f8")), "dtype"),
    Case("session dtype float128", _text("f128.json", _settings(dtype="float128")), "dtype"),
    Case("session bool logits", _text("bool.json", _session(logits=[[True, 1.0, 2.0], [1.0, 2.0, 3.0]])), "numbers"),
    Case("session string logits", _text("strl.json", _session(logits=[["1", "2", "3"], [1, 2, 3]])), "numbers"),
    Case("session float labels", _text("fl.json", _session(labels=[0.5, 1])), "integer labels"),
    Case("session weights for 2 classes", _text("w.json", _settings(weight=[1.0, 2.0])), "class weights"),
    Case("session NaN logit", _text("nan.json", _session(logits=[[float("nan"), 1.0, 2.0], [1.0, 2.0, 3.0]])),
         "not a finite number"),
    Case("session settings not an object", _text("s.json", _session(settings=[1, 2])), "settings"),
    Case("session version true", _text("vt.json", _session(version=True)), "format version"),
    Case("session symlink to /dev/zero", _symlink_to_dev_zero("zero.gradexp.json"), "not a regular file"),
    Case("session FIFO", _fifo("pipe.gradexp.json"), "pipe"),
    Case("session not UTF-8", _write("bin.json", b"\xff\xfe\x00{"), "not a UTF-8"),
]
