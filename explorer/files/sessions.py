"""Session files: the logits, the labels and the check settings, in one of two forms.

``.gradexp.json`` (format :data:`SESSION_FORMAT` = 2, magic ``gradient-explorer-session``)
    Human-readable JSON; the logits as a table of float64 numbers written with every bit
    (``repr``). For small grids: writing it is refused past :data:`JSON_SESSION_MAX_ELEMENTS`
    values (about 6 MB and a third of a second; a 32 x 262,144 grid took 55 s and exceeded
    what reading accepts). Version history: 2 added the settings ``evaluate`` and
    ``tolerance`` (and the dtype ``bfloat16``); a format-1 file keeps the fixed verdict it
    was saved under. A file of a newer format is refused.

``.gradexp.npz`` (format :data:`BINARY_SESSION_FORMAT` = 1, its own version number)
    A zip archive with entries stored, not compressed: ``gradexp.json`` (magic
    ``gradient-explorer-binary-session``, ``version``, ``logits_dtype``, ``shape`` and the
    settings exactly as the JSON form writes them), ``logits.npy`` in the logits' own dtype
    (float16, float32 or float64; bfloat16 as its raw ``uint16`` bits, named by
    ``logits_dtype``, so every dtype round-trips bit for bit) and ``labels.npy`` (int64).
    It is written by streaming into the archive (no second copy of the logits, no text)
    and read through :func:`~explorer.files.arrays.open_npz` (every declared shape checked
    before anything is allocated). Any size within the grid limits; the two versions
    change independently.

:func:`load_session` tells the forms apart by content (a zip archive or not), :func:`save_session`
by the suffix (``.npz`` is binary). Reading validates everything before anything is returned:
capped reads, the JSON parsed with nesting and number-length errors caught, the logits
rectangular, finite and within :class:`GridLimits`, the labels integers that fit int64 and
are in range, and the settings through :meth:`CheckSettings.from_mapping` and
:meth:`CheckSettings.check_classes`. Every problem is one :class:`FileFormatError`, so a
caller that applies a returned session does it in one step: a refused file changes nothing.
"""

from __future__ import annotations

import json
import os
import zipfile
from collections.abc import Generator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import numpy as np
from numpy.typing import ArrayLike, NDArray

from explorer.core import CheckSettings, resolve_dtype

from .arrays import open_npz
from .atomic import atomic_stream, atomic_write
from .errors import FileFormatError, FileTooLargeError
from .limits import FILE_LIMITS, MAX_FILE_BYTES, GridLimits
from .safe_read import open_regular, read_text_capped

__all__ = [
    "BINARY_SESSION_FORMAT",
    "BINARY_SESSION_SUFFIX",
    "JSON_SESSION_MAX_ELEMENTS",
    "JSON_SESSION_SUFFIX",
    "SESSION_FORMAT",
    "Session",
    "binary_session_pieces",
    "is_binary_session",
    "load_session",
    "save_session",
    "session_from_json",
    "session_to_json",
]

#: Version of the JSON session format this build writes; newer files are refused.
#: 2 added the settings ``evaluate`` and ``tolerance`` (and the dtype ``bfloat16``); a format-1
#: file was saved under the fixed ``atol + rtol |ana|`` verdict and keeps it when read.
SESSION_FORMAT = 2
#: Version of the binary (``.gradexp.npz``) session format this build writes; newer files are refused.
BINARY_SESSION_FORMAT = 1
#: Largest grid (N x C values) written as JSON; larger sessions are binary (about 24 bytes and 1.3 us per value).
JSON_SESSION_MAX_ELEMENTS = 2**18
JSON_SESSION_SUFFIX = ".gradexp.json"
BINARY_SESSION_SUFFIX = ".gradexp.npz"
_MAGIC = "gradient-explorer-session"
_BINARY_MAGIC = "gradient-explorer-binary-session"
_META = "gradexp.json"
_MAX_META_BYTES = 1 << 16
#: Stored dtype of the logits by the name the binary form records (bfloat16 as its raw bits).
_STORAGE = {"float16": "<f2", "float32": "<f4", "float64": "<f8", "bfloat16": "<u2"}
#: JSON values a session holds besides the logits and labels (settings, weights, keys), generously.
_OTHER_VALUES = 1000


@dataclass(frozen=True)
class Session:
    """Everything needed to restore the explorer: logits (N, C), labels (N,) and the check settings."""

    logits: NDArray
    labels: NDArray
    settings: CheckSettings


def session_to_json(logits: ArrayLike, labels: ArrayLike, settings: CheckSettings) -> str:
    """The JSON session file's text (with a format version); floats keep every bit (repr)."""
    doc = {
        "format": _MAGIC,
        "version": SESSION_FORMAT,
        "logits": np.asarray(logits, dtype=np.float64).tolist(),
        "labels": np.asarray(labels, dtype=np.int64).tolist(),
        "settings": settings.to_mapping(),
    }
    return json.dumps(doc, indent=1, allow_nan=False)


def is_binary_session(path: str | os.PathLike[str]) -> bool:
    """Whether :func:`save_session` writes the binary form to ``path`` (its name ends in ``.npz``)."""
    return Path(path).name.lower().endswith(".npz")


def save_session(
    path: str | os.PathLike[str],
    logits: ArrayLike,
    labels: ArrayLike,
    settings: CheckSettings,
    binary: bool | None = None,
) -> None:
    """Save a session file atomically: binary for a ``.npz`` name (or ``binary=True``), JSON otherwise.

    Parameters
    ----------
    path : path-like
        The file; a crash or a full disk leaves the old file (or none), never half of one.
    logits : array_like
        (N, C). The binary form keeps a float16, float32, float64 or bfloat16 array in its dtype
        (anything else as float64); the JSON form writes float64 numbers.
    labels : array_like
        (N,) integers.
    settings : CheckSettings
    binary : bool, optional
        The form; by default chosen by :func:`is_binary_session`.

    Raises
    ------
    ValueError
        The JSON form for a grid over :data:`JSON_SESSION_MAX_ELEMENTS` values, or logits that
        are not finite (neither form holds them).
    OSError
        The file cannot be written.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "s.json"
    >>> save_session(p, [[1.0, 2.0]], [1], CheckSettings())
    >>> load_session(p).labels
    array([1])
    >>> save_session(p.with_suffix(".npz"), np.float32([[1.0, 2.0]]), [1], CheckSettings(dtype="float32"))
    >>> load_session(p.with_suffix(".npz")).logits
    array([[1., 2.]], dtype=float32)
    """
    if binary is None:
        binary = is_binary_session(path)
    if binary:
        _save_binary(path, logits, labels, settings)
        return
    count = int(np.size(logits))
    if count > JSON_SESSION_MAX_ELEMENTS:
        raise ValueError(
            f"{Path(path).name}: {count} values are too many for a JSON session (at most {JSON_SESSION_MAX_ELEMENTS}); "
            f"save it as {BINARY_SESSION_SUFFIX}"
        )
    atomic_write(path, session_to_json(logits, labels, settings).encode("utf-8"))


def _logits_to_store(logits: ArrayLike) -> tuple[str, NDArray]:
    """The dtype name the binary form records and the C-contiguous array it writes (a view when possible)."""
    x = np.asarray(logits)
    name = x.dtype.name if x.dtype.name in _STORAGE else "float64"
    if name == "float64" and x.dtype != np.float64:
        x = x.astype(np.float64)
    x = np.ascontiguousarray(x)
    if x.ndim != 2 or 0 in x.shape:
        raise ValueError(f"the logits must be a non-empty N x C table, got shape {x.shape}")
    if not _all_finite(x):
        raise ValueError("the logits hold a value that is not a finite number")
    stored = x.view(np.uint16) if name == "bfloat16" else x
    return name, stored.astype(_STORAGE[name], copy=False)


def _all_finite(x: NDArray, rows: int = 1024) -> bool:
    """``np.all(np.isfinite(x))`` in blocks of rows (no full-size boolean temporary)."""
    return all(bool(np.isfinite(x[i : i + rows]).all()) for i in range(0, x.shape[0], rows))


def binary_session_pieces(f: IO[bytes], logits: ArrayLike, labels: ArrayLike, settings: CheckSettings,
                          piece_bytes: int = 16 * 2**20) -> Generator[int, None, None]:  # fmt: skip
    """Write a binary session into the open file ``f`` piece by piece: a generator that yields the rows of
    logits written so far after each ``piece_bytes`` of them, so a caller can spread the writing over turns
    of an event loop and read a live array between edits (no copy of it is made). Exhaust it for the whole
    file; closing it early leaves ``f`` incomplete (the caller discards it).
    """
    name, stored = _logits_to_store(logits)
    y = np.ascontiguousarray(labels, dtype=np.int64)
    if y.shape != (stored.shape[0],):
        raise ValueError(f"expected {stored.shape[0]} labels, one per row, got shape {y.shape}")
    meta = {
        "format": _BINARY_MAGIC,
        "version": BINARY_SESSION_FORMAT,
        "logits_dtype": name,
        "shape": list(stored.shape),
        "settings": settings.to_mapping(),
    }
    text = json.dumps(meta, indent=1, allow_nan=False).encode("utf-8")
    n = stored.shape[0]
    per = max(1, piece_bytes // max(1, stored[0].nbytes))
    with zipfile.ZipFile(f, "w", zipfile.ZIP_STORED) as zf:
        zf.writestr(_META, text)
        # Large members need ZIP64 fields, which must be reserved before the size is known.
        with zf.open("logits.npy", "w", force_zip64=stored.nbytes > 2**31) as out:
            header = {"descr": np.lib.format.dtype_to_descr(stored.dtype), "fortran_order": False,
                      "shape": stored.shape}  # fmt: skip
            np.lib.format.write_array_header_2_0(out, header)
            for r0 in range(0, n, per):
                out.write(stored[r0 : r0 + per].data.cast("B"))  # C-contiguous rows: written, not copied
                yield min(n, r0 + per)
        with zf.open("labels.npy", "w") as out:
            np.lib.format.write_array(out, y, allow_pickle=False)


def _save_binary(path: str | os.PathLike[str], logits: ArrayLike, labels: ArrayLike, settings: CheckSettings) -> None:
    with atomic_stream(path) as f:
        for _ in binary_session_pieces(f, logits, labels, settings):
            pass


def _is_number(v: object) -> bool:
    return type(v) is float or type(v) is int


def _logits(doc: Mapping[str, object], name: str, limits: GridLimits) -> NDArray:
    rows = doc["logits"]
    table_error = FileFormatError(f"{name}: the logits must be a rectangular table of numbers")
    if not isinstance(rows, list) or not rows or not all(isinstance(r, list) for r in rows):
        if isinstance(rows, list) and all(_is_number(v) for v in rows):
            raise FileFormatError(f"{name}: the logits must be a non-empty N x C table (a list of rows)")
        raise table_error
    widths = {len(r) for r in rows}
    if len(widths) != 1:
        raise FileFormatError(f"{name}: the logits must be a rectangular table of numbers (rows differ in length)")
    shape = (len(rows), widths.pop())
    if shape[1] == 0:
        raise FileFormatError(f"{name}: the logits must be a non-empty N x C table, got shape {shape}")
    why = limits.refusal(shape)
    if why is not None:
        raise FileTooLargeError(f"{name}: {why}", shape)
    if not all(_is_number(v) for r in rows for v in r):
        raise table_error
    try:
        logits = np.array(rows, dtype=np.float64)
    except OverflowError:
        raise FileFormatError(f"{name}: the logits hold an integer too large for a float") from None
    if not np.all(np.isfinite(logits)):
        bad = np.argwhere(~np.isfinite(logits))[0]
        raise FileFormatError(f"{name}: the logit at row {bad[0]}, class {bad[1]} is not a finite number")
    return logits


def _labels(doc: Mapping[str, object], name: str, n: int) -> NDArray:
    raw = doc["labels"]
    if not isinstance(raw, list) or len(raw) != n or not all(type(v) is int for v in raw):
        raise FileFormatError(f"{name}: expected {n} integer labels, one per row")
    try:
        return np.array(raw, dtype=np.int64)
    except OverflowError:
        raise FileFormatError(f"{name}: a label is too large for a 64-bit integer") from None


def session_from_json(text: str, name: str = "the session", limits: GridLimits = FILE_LIMITS) -> Session:
    """Parse and validate session text; raise FileFormatError with one sentence on any problem.

    Parameters
    ----------
    limits : GridLimits
        Largest grid accepted (checked before the values are converted).
    """
    # A session holds one JSON value per logit and label plus a few settings: more separators than
    # that means a file that is not a session of an allowed size, refused before it is parsed.
    budget = limits.max_elements + 2 * min(limits.max_samples, limits.max_elements) + _OTHER_VALUES
    if text.count(",") > budget:
        raise FileTooLargeError(f"{name} holds more than {budget} values; larger sessions are refused")
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise FileFormatError(f"{name} is not valid JSON (line {exc.lineno}: {exc.msg}); it may be truncated") from None
    except RecursionError:
        raise FileFormatError(f"{name} is not a session: its JSON is nested too deeply") from None
    except MemoryError:  # bounded by the byte cap and the budget above; refused rather than crashing
        raise FileTooLargeError(f"{name} is too large to read") from None
    except ValueError:  # an integer literal longer than Python converts (4300 digits)
        raise FileFormatError(f"{name} is not a session: it holds a number with too many digits") from None
    version = _version(doc, _MAGIC, SESSION_FORMAT, "format", name)
    for key in ("logits", "labels"):
        if key not in doc:
            raise FileFormatError(f"{name} has no {key!r} entry")
    logits = _logits(doc, name, limits)
    labels = _labels(doc, name, logits.shape[0])
    settings_doc = doc.get("settings", {})
    if version == 1 and isinstance(settings_doc, dict) and "tolerance" not in settings_doc:
        settings_doc = {**settings_doc, "tolerance": "fixed"}  # the verdict it was saved under
    return Session(logits, labels, _settings(settings_doc, labels, logits.shape[1], name))


def _version(doc: object, magic: str, newest: int, what: str, name: str) -> int:
    """The format version of a session document with the magic ``magic``; one sentence for anything else."""
    if not isinstance(doc, dict) or doc.get("format") != magic:
        raise FileFormatError(f"{name} is not a Gradient Explorer session")
    version = doc.get("version")
    if type(version) is not int or version < 1:
        raise FileFormatError(f"{name} has no format version")
    if version > newest:
        raise FileFormatError(
            f"{name} was written by a newer Gradient Explorer ({what} {version}; this one reads up to {newest})"
        )
    return version


def _settings(settings_doc: object, labels: NDArray, c: int, name: str) -> CheckSettings:
    """The settings checked against the grid, and the labels against the settings and C."""
    try:
        settings = CheckSettings.from_mapping(settings_doc)  # type: ignore[arg-type]  # refuses a non-mapping
        settings.check_classes(c)
    except ValueError as exc:  # SettingsError names the field
        raise FileFormatError(f"{name}: bad settings ({exc})") from None
    bad = np.flatnonzero((labels != settings.ignore_index) & ((labels < 0) | (labels >= c)))
    if bad.size:
        i = int(bad[0])
        raise FileFormatError(f"{name}: label {int(labels[i])} in row {i} is out of range for {c} classes")
    return settings


def _binary_meta(raw: bytes, name: str) -> tuple[str, tuple[int, int], object]:
    """The binary form's ``gradexp.json``: (logits dtype name, shape, settings mapping), checked."""
    try:
        doc = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError, ValueError):
        raise FileFormatError(f"{name}: its {_META} entry is not valid JSON") from None
    _version(doc, _BINARY_MAGIC, BINARY_SESSION_FORMAT, "binary format", name)
    dtype = doc.get("logits_dtype")
    if not isinstance(dtype, str) or dtype not in _STORAGE:
        raise FileFormatError(f"{name}: logits_dtype must be one of {', '.join(_STORAGE)}")
    shape = doc.get("shape")
    if not isinstance(shape, list) or len(shape) != 2 or not all(type(d) is int and d > 0 for d in shape):
        raise FileFormatError(f"{name}: shape must be [N, C] with N, C positive integers")
    return dtype, (shape[0], shape[1]), doc.get("settings", {})


def _session_from_npz(path: Path, limits: GridLimits, max_bytes: int) -> Session:
    name = path.name
    with open_npz(path, max_bytes) as archive:
        if _META not in archive:
            raise FileFormatError(f"{name} is not a Gradient Explorer session (no {_META} entry)")
        dtype_name, shape, settings_doc = _binary_meta(archive.read_bytes(_META, _MAX_META_BYTES), name)
        why = limits.refusal(shape)
        if why is not None:
            raise FileTooLargeError(f"{name}: {why}", shape)
        count = shape[0] * shape[1]
        member_limits = GridLimits(count, count, count)  # no more values than declared; the shape is compared below
        stored = archive.read("logits", member_limits)
        if stored.shape != shape or stored.dtype != np.dtype(_STORAGE[dtype_name]):
            raise FileFormatError(
                f"{name}: its logits are {stored.dtype.str} of shape {stored.shape}; its {_META} declares "
                f"{dtype_name} of shape {shape}"
            )
        raw_labels = archive.read("labels", GridLimits(shape[0], shape[0], shape[0]), max_ndim=1)
    logits = stored.view(resolve_dtype(dtype_name)) if dtype_name == "bfloat16" else stored
    logits = logits.astype(logits.dtype.newbyteorder("="), copy=False)
    if not _all_finite(logits):
        bad = np.argwhere(~np.isfinite(logits))[0]
        raise FileFormatError(f"{name}: the logit at row {bad[0]}, class {bad[1]} is not a finite number")
    if raw_labels.shape != (shape[0],) or raw_labels.dtype.kind not in "iu":
        raise FileFormatError(f"{name}: expected {shape[0]} integer labels, one per row")
    if raw_labels.dtype.kind == "u" and raw_labels.size and int(raw_labels.max()) > np.iinfo(np.int64).max:
        raise FileFormatError(f"{name}: a label is too large for a 64-bit integer")
    labels = raw_labels.astype(np.int64)
    return Session(logits, labels, _settings(settings_doc, labels, shape[1], name))


def _is_zip(path: Path, max_bytes: int) -> bool:
    """Whether ``path`` starts like a zip archive (opened as the checked readers open it: never a FIFO or device)."""
    try:
        with open_regular(path, max_bytes) as f:
            return f.read(4) == b"PK\x03\x04"
    except OSError:
        return False  # the reader below says why in one sentence


def load_session(
    path: str | os.PathLike[str], limits: GridLimits = FILE_LIMITS, max_bytes: int = MAX_FILE_BYTES
) -> Session:
    """Read and validate a session file of either form (told apart by content), with a byte cap.

    A zip archive is read as the binary form, anything else as JSON (see :func:`session_from_json`).
    The logits come back as float64 from JSON and in their stored dtype from the binary form.

    Raises
    ------
    FileFormatError
        One sentence for anything wrong (:class:`FileTooLargeError` past ``limits`` or ``max_bytes``).
    """
    p = Path(path)
    if _is_zip(p, max_bytes):
        return _session_from_npz(p, limits, max_bytes)
    return session_from_json(read_text_capped(p, max_bytes), p.name, limits)
