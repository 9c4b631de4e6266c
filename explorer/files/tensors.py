"""``.safetensors`` files read without trusting them: bounded header, validated entries, exact byte ranges.

The format is an 8-byte little-endian header length, a JSON header naming each tensor's
``dtype``, ``shape`` and ``data_offsets`` (relative to the end of the header), then the
raw little-endian bytes. The header length is capped before it is read, the JSON before it
is parsed, and every entry is checked (a known dtype, a shape within the limits, offsets
that lie inside the file and span exactly ``prod(shape) * itemsize`` bytes) before a single
value is read; then only the requested entry's byte range is read.

Why not the ``safetensors`` package's NumPy loader: NumPy has no bfloat16, so
``safetensors.numpy`` refuses the dtype that real logits most often come in, and
``load_file`` reads every tensor of the file with no cap of ours. Parsing the header here
keeps the bounded-read rules of :mod:`explorer.files.arrays`; bfloat16 values are read
through ``ml_dtypes`` (exactly, as float32). The package writes the test files.
"""

from __future__ import annotations

import json
import math
import os
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import numpy as np
from numpy.typing import NDArray

from .arrays import _read_exact
from .errors import FileFormatError, FileTooLargeError
from .limits import FILE_LIMITS, MAX_FILE_BYTES, GridLimits
from .safe_read import open_regular

__all__ = ["MAX_SAFETENSORS_HEADER_BYTES", "SAFETENSORS_DTYPES", "SafetensorsFile", "TensorInfo", "open_safetensors"]

#: Largest JSON header read (a logits file names a few tensors; model checkpoints are not read here).
MAX_SAFETENSORS_HEADER_BYTES = 4 * 2**20
#: Entries a header may list.
MAX_SAFETENSORS_ENTRIES = 1024

#: safetensors dtype codes read here -> NumPy dtype strings (little-endian); "BF16" needs ml_dtypes.
SAFETENSORS_DTYPES: dict[str, str] = {
    "F64": "<f8",
    "F32": "<f4",
    "F16": "<f2",
    "BF16": "bfloat16",
    "I64": "<i8",
    "I32": "<i4",
    "I16": "<i2",
    "I8": "i1",
    "U64": "<u8",
    "U32": "<u4",
    "U16": "<u2",
    "U8": "u1",
    "BOOL": "?",
}
_ITEMSIZE = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1,
             "U64": 8, "U32": 4, "U16": 2, "U8": 1, "BOOL": 1}  # fmt: skip


@dataclass(frozen=True)
class TensorInfo:
    """One checked header entry: ``name``, safetensors ``dtype`` code, ``shape`` and absolute byte range."""

    name: str
    dtype: str
    shape: tuple[int, ...]
    start: int
    stop: int

    @property
    def count(self) -> int:
        return math.prod(self.shape)

    @property
    def numpy_dtype_name(self) -> str:
        """The dtype the values keep (``"bfloat16"``, ``"float16"``, ``"float32"``, ...)."""
        return "bfloat16" if self.dtype == "BF16" else np.dtype(SAFETENSORS_DTYPES[self.dtype]).name


def _bad(name: str, why: str) -> FileFormatError:
    return FileFormatError(f"{name} is not a valid .safetensors file ({why})")


def _no_duplicates(pairs: list[tuple[str, object]]) -> dict[str, object]:
    seen: dict[str, object] = {}
    for k, v in pairs:
        if k in seen:
            raise ValueError(f"duplicate key {k!r}")
        seen[k] = v
    return seen


def _entry(name: str, key: str, raw: object, data_start: int, file_size: int) -> TensorInfo:
    label = f"{name} entry {key!r}"
    if not isinstance(raw, dict):
        raise FileFormatError(f"{label} is not a tensor description")
    dtype, shape, offsets = raw.get("dtype"), raw.get("shape"), raw.get("data_offsets")
    if not isinstance(dtype, str) or dtype not in SAFETENSORS_DTYPES:
        shown = repr(dtype)[:20]
        raise FileFormatError(f"{label} holds {shown} values; only floats, integers and booleans are read")
    if not isinstance(shape, list) or len(shape) > 8 or not all(type(d) is int and 0 <= d < 2**62 for d in shape):
        raise FileFormatError(f"{label} has an invalid shape")
    if not (isinstance(offsets, list) and len(offsets) == 2 and all(type(o) is int and o >= 0 for o in offsets)):
        raise FileFormatError(f"{label} has invalid data offsets")
    begin, end = offsets
    nbytes = math.prod(shape) * _ITEMSIZE[dtype]
    if end < begin or end - begin != nbytes:
        raise FileFormatError(f"{label} declares {end - begin} bytes for a {dtype} tensor of shape {tuple(shape)}")
    if data_start + end > file_size:
        raise FileFormatError(f"{label} lies beyond the end of the file (the file is truncated)")
    return TensorInfo(key, dtype, tuple(shape), data_start + begin, data_start + end)


class SafetensorsFile:
    """A ``.safetensors`` file opened for checked reading: :attr:`entries` (checked headers), :meth:`read`."""

    def __init__(self, f: IO[bytes], name: str, entries: dict[str, TensorInfo], metadata: dict[str, str]) -> None:
        self._f, self.name, self.entries, self.metadata = f, name, entries, metadata

    @property
    def names(self) -> list[str]:
        """Tensor names, in file order."""
        return list(self.entries)

    def __contains__(self, key: object) -> bool:
        return key in self.entries

    def read(self, key: str, limits: GridLimits = FILE_LIMITS, max_ndim: int = 2) -> NDArray:
        """The tensor ``key``; its shape is checked against ``limits`` before its bytes are read.

        bfloat16 values come back as an ``ml_dtypes.bfloat16`` array (exact); other dtypes as
        they are stored, in native byte order.
        """
        info = self.entries.get(key)
        if info is None:
            raise FileFormatError(f"{self.name} has no {key!r} entry (its tensors: {', '.join(self.names) or 'none'})")
        label = f"{self.name} entry {key!r}"
        if len(info.shape) > max_ndim:
            raise FileFormatError(f"{label} is a {len(info.shape)}-D tensor; expected at most {max_ndim} dimensions")
        why = limits.refusal(info.shape) if info.shape else None
        if why is not None:
            raise FileTooLargeError(f"{label}: {why}", info.shape)
        if info.dtype == "BF16":
            try:
                import ml_dtypes
            except ImportError:
                raise FileFormatError(f"{label} holds bfloat16 values, which need the ml_dtypes package") from None
            dtype = np.dtype(ml_dtypes.bfloat16)
        else:
            dtype = np.dtype(SAFETENSORS_DTYPES[info.dtype])
        try:
            self._f.seek(info.start)
            data = _read_exact(self._f, info.stop - info.start, label)
        except OSError as exc:
            raise FileFormatError(f"{self.name} cannot be read: {exc.strerror or exc}") from None
        arr = np.frombuffer(data, dtype=dtype, count=info.count).reshape(info.shape)
        if arr.dtype.byteorder == "<" and not np.little_endian:  # pragma: no cover - big-endian hosts
            arr = arr.astype(arr.dtype.newbyteorder("="))
        return arr


def read_safetensors_header(f: IO[bytes], name: str, file_size: int) -> tuple[dict[str, TensorInfo], dict[str, str]]:
    """Read and check the header of an open ``.safetensors`` stream: ``(entries, metadata)``.

    Raises
    ------
    FileFormatError
        A file shorter than 8 bytes, a header length over :data:`MAX_SAFETENSORS_HEADER_BYTES`
        or beyond the file, a header that is not a UTF-8 JSON object, too many entries, or any
        entry that fails the checks of :class:`TensorInfo` (dtype, shape, offsets).
    """
    head = f.read(8)
    if len(head) < 8:
        raise _bad(name, "shorter than its 8-byte header length")
    (length,) = struct.unpack("<Q", head)
    if length > MAX_SAFETENSORS_HEADER_BYTES:
        raise FileFormatError(f"{name}: its header declares {length} bytes; headers over "
                              f"{MAX_SAFETENSORS_HEADER_BYTES} bytes are refused")  # fmt: skip
    if 8 + length > file_size:
        raise _bad(name, "the header is longer than the file")
    raw = _read_exact(f, length, name)
    try:
        doc = json.loads(raw.decode("utf-8"), object_pairs_hook=_no_duplicates)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        reason = str(exc).splitlines()[0][:80] if str(exc) else type(exc).__name__
        raise _bad(name, f"its header is not JSON: {reason}") from None
    if not isinstance(doc, dict):
        raise _bad(name, "its header is not a JSON object")
    meta = doc.pop("__metadata__", {})
    if not isinstance(meta, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in meta.items()):
        raise _bad(name, "its __metadata__ is not a mapping of strings")
    if len(doc) > MAX_SAFETENSORS_ENTRIES:
        raise FileFormatError(f"{name} lists {len(doc)} tensors; files with over {MAX_SAFETENSORS_ENTRIES} are refused")
    data_start = 8 + length
    entries = {str(k): _entry(name, str(k), v, data_start, file_size) for k, v in doc.items()}
    return entries, meta


class _Opened:
    """Context manager for :func:`open_safetensors`."""

    def __init__(self, path: Path, max_bytes: int) -> None:
        self.path, self.max_bytes = path, max_bytes
        self._f: IO[bytes] | None = None

    def __enter__(self) -> SafetensorsFile:
        f = open_regular(self.path, self.max_bytes)
        self._f = f
        try:
            size = os.fstat(f.fileno()).st_size
            entries, meta = read_safetensors_header(f, self.path.name, size)
        except BaseException:
            f.close()
            raise
        return SafetensorsFile(f, self.path.name, entries, meta)

    def __exit__(self, *exc: object) -> None:
        if self._f is not None:
            self._f.close()


def open_safetensors(path: str | os.PathLike[str], max_bytes: int = MAX_FILE_BYTES) -> _Opened:
    """Open a ``.safetensors`` file for checked reading (a context manager giving a :class:`SafetensorsFile`).

    Examples
    --------
    >>> import tempfile, pathlib, json, struct
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "a.safetensors"
    >>> header = json.dumps({"labels": {"dtype": "I64", "shape": [2], "data_offsets": [0, 16]}}).encode()
    >>> _ = p.write_bytes(struct.pack("<Q", len(header)) + header + np.array([3, 1], "<i8").tobytes())
    >>> with open_safetensors(p) as st:
    ...     st.names, st.read("labels")
    (['labels'], array([3, 1]))
    """
    return _Opened(Path(path), max_bytes)
