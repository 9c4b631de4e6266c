"""Logits (N, C) and labels (N,) from ``.npy``, ``.npz``, ``.safetensors``, ``.csv``, ``.tsv`` and ``.txt`` files.

Every file is untrusted (see :mod:`explorer.files.safe_read` and
:mod:`explorer.files.arrays`); the grid a file declares is checked against
:class:`~explorer.files.limits.GridLimits` before its values are allocated or
widened to float64, and every problem is one :class:`FileFormatError`.

Text files are read strictly: numbers in the C-locale grammar of
:data:`explorer.files.numbers.NUMBER_PATTERN`, a byte-order mark ignored, a first
row taken as a header only when none of its fields is a number, and any other
field that is not a number refused with its line and column.
"""

from __future__ import annotations

import csv
import itertools
import os
import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from .arrays import open_npz, read_npy, read_npy_header
from .errors import FileFormatError, FileTooLargeError
from .limits import FILE_LIMITS, MAX_FILE_BYTES, GridLimits
from .numbers import NON_FINITE_PATTERN, NUMBER_PATTERN
from .safe_read import open_regular, read_text_capped
from .tensors import open_safetensors

__all__ = ["LOGITS_SUFFIXES", "load_logits", "logits_file_dtype", "read_table"]

#: Suffixes of logits files :func:`load_logits` reads.
LOGITS_SUFFIXES = (".npy", ".npz", ".safetensors", ".csv", ".tsv", ".txt")
_SPACE = " \t\r\n\f\v"
_FIELD = re.compile(r"\S+")
_LINE = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+\Z")
_INT64_BOUND = 2.0**63


def _labels_limits(limits: GridLimits) -> GridLimits:
    """Limits for a labels array: at most one value per allowed sample, as a row or a column."""
    return GridLimits(limits.max_samples, limits.max_samples, limits.max_samples)


def _rows(text: str, suffix: str, name: str, max_fields: int) -> Iterator[tuple[int, list[str]]]:
    """(line number, fields) of every row that is not blank or a ``#`` comment.

    A line with more than ``max_fields`` separators is refused before it is split.
    """
    delimiter = "," if suffix == ".csv" else "\t" if suffix == ".tsv" else None

    def lines() -> Iterator[str]:
        for line_no, match in enumerate(_LINE.finditer(text), start=1):  # one line at a time: no copy of the text
            line = match.group()
            # A field takes at least two characters with its separator: only long lines need counting.
            if len(line) > 2 * max_fields + 2:
                count = line.count(delimiter) + 1 if delimiter else sum(1 for _ in _FIELD.finditer(line))
                if count > max_fields:
                    raise FileTooLargeError(f"{name}, line {line_no}: more than {max_fields} values in one row")
            yield line

    if delimiter is not None:
        reader = csv.reader(lines(), delimiter=delimiter)
        try:
            for fields in reader:
                stripped = [v.strip(_SPACE) for v in fields]
                if any(stripped) and not stripped[0].startswith("#"):
                    yield reader.line_num, stripped
        except csv.Error as exc:
            raise FileFormatError(f"{name}, line {reader.line_num}: {exc}") from None
    else:
        for line_no, line in enumerate(lines(), start=1):
            fields = line.split()
            if fields and not fields[0].startswith("#"):
                yield line_no, fields


def _not_a_number(name: str, line_no: int, col: int, value: str, why: str = "") -> FileFormatError:
    shown = repr(value) if len(value) <= 40 else repr(value[:37]) + "..."
    if not value:
        what = "an empty value is not a number"
    elif NON_FINITE_PATTERN.fullmatch(value):
        what, why = f"{shown} is not a finite number", ""
    else:
        what = f"{shown} is not a number"
    return FileFormatError(f"{name}, line {line_no}, column {col + 1}: {what}{why}")


def read_table(
    path: str | os.PathLike[str], limits: GridLimits = FILE_LIMITS, max_bytes: int = MAX_FILE_BYTES
) -> tuple[list[str] | None, NDArray]:
    """A CSV (comma), TSV (tab) or TXT (white space) table of numbers: (header or None, values (rows, cols)).

    The first row is a header when none of its fields is a number; when some are and
    some are not, it is refused (a typo such as ``2.O`` never turns data into a header).

    Raises
    ------
    FileFormatError
        Not UTF-8, no numbers, ragged rows, a field that is not a number (with its line
        and column), or more rows, columns or values than ``limits`` (header included).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "a.csv"
    >>> _ = p.write_text("\\ufeffa,b\\n1,2.5\\n")
    >>> read_table(p)
    (['a', 'b'], array([[1. , 2.5]]))
    """
    p = Path(path)
    rows = _rows(read_text_capped(p, max_bytes), p.suffix.lower(), p.name, limits.max_classes)
    first_line, first = next(rows, (0, []))
    if not first:
        raise FileFormatError(f"{p.name} holds no numbers")
    header: list[str] | None = None
    data: list[NDArray] = []
    numeric = [NUMBER_PATTERN.fullmatch(v) is not None or NON_FINITE_PATTERN.fullmatch(v) is not None for v in first]
    if not any(numeric):
        header = first
    elif not all(numeric):
        k = numeric.index(False)
        why_not_header = " (the row's other values are numbers, so it is not a header)"
        raise _not_a_number(p.name, first_line, k, first[k], why_not_header)
    width = len(first)
    why = limits.refusal((1, width))
    if why is not None:
        raise FileTooLargeError(f"{p.name}: {why}", (1, width))
    max_rows = min(limits.max_samples, limits.max_elements // width)
    match = NUMBER_PATTERN.fullmatch
    for line_no, fields in itertools.chain([] if header is not None else [(first_line, first)], rows):
        if len(fields) != width:
            raise FileFormatError(
                f"{p.name}: rows have different numbers of values (line {line_no} has {len(fields)}, "
                f"{'the header' if header is not None else 'the first row'} {width})"
            )
        if not all(map(match, fields)):
            k = next(k for k, v in enumerate(fields) if match(v) is None)
            raise _not_a_number(p.name, line_no, k, fields[k])
        if len(data) == max_rows:
            raise FileTooLargeError(
                f"{p.name}: more than {max_rows} rows of {width} values is over the limit of {limits.describe()}"
            )
        data.append(np.array(list(map(float, fields)), dtype=np.float64))
    if not data:
        raise FileFormatError(f"{p.name} holds no numbers")
    return header, np.stack(data)


def _integer_labels(values: NDArray, name: str) -> NDArray:
    """Whole-number labels as int64 (values outside int64 or not whole are refused, never wrapped)."""
    values = np.asarray(values)
    if values.ndim != 1:
        raise FileFormatError(f"{name}: labels must be one column, got shape {values.shape}")
    if values.dtype.kind not in "biuf":
        raise FileFormatError(f"{name}: labels must be numbers")
    if values.dtype.kind == "f":
        ok = np.isfinite(values) & (values == np.round(values)) & (np.abs(values) < _INT64_BOUND)
        if not np.all(ok):
            i = int(np.flatnonzero(~ok)[0])
            raise FileFormatError(f"{name}: labels must be whole numbers; value {i} is {values[i]!r}")
    elif values.dtype.kind == "u" and values.size and int(values.max()) >= 2**63:
        raise FileFormatError(f"{name}: label {int(values.max())} is too large")
    return values.astype(np.int64)


def _as_logits(arr: NDArray, name: str, limits: GridLimits, keep_float: bool = False) -> NDArray:
    if arr.dtype.name == "bfloat16":
        arr = arr.astype(np.float32)  # exact: every bfloat16 is a float32
    if arr.dtype.kind not in "biuf":
        raise FileFormatError(f"{name}: the logits must be numbers, got dtype {arr.dtype}")
    if arr.ndim == 1:
        arr = arr[None, :]
    if arr.ndim != 2 or arr.size == 0:
        raise FileFormatError(f"{name}: the logits must be a non-empty N x C table, got shape {arr.shape}")
    why = limits.refusal(arr.shape)
    if why is not None:
        raise FileTooLargeError(f"{name}: {why}", tuple(arr.shape))
    if keep_float and arr.dtype in (np.float16, np.float32, np.float64):
        return arr  # exact, and no float64 copy of a large single-precision grid
    with np.errstate(over="ignore"):  # float128 beyond float64 becomes inf; the caller refuses non-finite logits
        return np.asarray(arr, dtype=np.float64)


def _labels_file(path: Path, limits: GridLimits, max_bytes: int) -> NDArray:
    label_limits = _labels_limits(limits)
    suffix = path.suffix.lower()
    if suffix == ".npy":
        values = read_npy(path, label_limits, max_bytes)
        return _integer_labels(values.ravel() if values.ndim == 2 and 1 in values.shape else values, path.name)
    other, other_labels = load_logits(path, limits=label_limits, max_bytes=max_bytes)
    return _integer_labels(other_labels if other_labels is not None else np.ravel(other), path.name)


def load_logits(
    path: str | os.PathLike[str],
    labels_path: str | os.PathLike[str] | None = None,
    labels_column: str | None = None,
    logits_key: str = "logits",
    labels_key: str = "labels",
    *,
    limits: GridLimits = FILE_LIMITS,
    max_bytes: int = MAX_FILE_BYTES,
    keep_float: bool = False,
) -> tuple[NDArray, NDArray | None]:
    """Read logits (N, C) and, when available, labels (N,) from .npy, .npz, .safetensors, .csv, .tsv or .txt.

    Labels come from a named column (``labels_column``), a second file
    (``labels_path``, any of the same formats), or the NPZ or safetensors entry ``labels_key``;
    the logits from the entry ``logits_key`` (or the only entry). A safetensors file may hold
    float64, float32, float16 or bfloat16 tensors (read exactly; returned as float64, with
    :func:`logits_file_dtype` naming the stored dtype).
    Text files hold finite numbers only (``nan`` and ``inf`` are refused with their
    line and column); NumPy files may hold NaN or infinity, which the caller refuses
    or accepts.

    Parameters
    ----------
    limits : GridLimits
        Largest grid accepted; checked against the declared shape before the values
        are read (the window passes its own, smaller limits).
    max_bytes : int
        No file is read past this many bytes.
    keep_float : bool
        Return float16, float32 and float64 logits in their own dtype (bfloat16 as float32), not widened
        to float64: the window stores the grid in the check's dtype anyway, and a large float32 grid then
        costs no float64 copy.

    Raises
    ------
    FileFormatError
        For a missing, special (device, FIFO), oversized, malformed or pickled file, or
        arrays of the wrong shape; :class:`FileTooLargeError` when the grid is over ``limits``.
    """
    p = Path(path)
    suffix = p.suffix.lower()
    if suffix not in LOGITS_SUFFIXES:
        raise FileFormatError(f"{p.name}: unknown file type {p.suffix!r}; use one of {', '.join(LOGITS_SUFFIXES)}")
    labels: NDArray | None = None
    if suffix == ".npy":
        logits = _as_logits(read_npy(p, limits, max_bytes), p.name, limits, keep_float)
    elif suffix == ".npz":
        with open_npz(p, max_bytes) as z:
            names = z.names
            key = logits_key if logits_key in names else (names[0] if len(names) == 1 else None)
            if key is None:
                if logits_key in z:
                    z.read(logits_key)  # raises: the entry is not an .npy array
                raise FileFormatError(
                    f"{p.name} has no {logits_key!r} entry (its arrays: {', '.join(names) or 'none'})"
                )
            logits = _as_logits(z.read(key, limits), p.name, limits, keep_float)
            if labels_key in names and key != labels_key:
                labels = _integer_labels(z.read(labels_key, _labels_limits(limits), max_ndim=1), p.name)
    elif suffix == ".safetensors":
        with open_safetensors(p, max_bytes) as st:
            names = st.names
            key = logits_key if logits_key in names else (names[0] if len(names) == 1 else None)
            if key is None:
                raise FileFormatError(
                    f"{p.name} has no {logits_key!r} tensor (its tensors: {', '.join(names) or 'none'})"
                )
            logits = _as_logits(st.read(key, limits), p.name, limits, keep_float)
            if labels_key in names and key != labels_key:
                raw = st.read(labels_key, _labels_limits(limits), max_ndim=2)
                labels = _integer_labels(raw.ravel() if raw.ndim == 2 and 1 in raw.shape else raw, p.name)
    else:
        header, table = read_table(p, _with_label_column(limits) if labels_column else limits, max_bytes)
        if labels_column is not None:
            if header is None or labels_column not in header:
                raise FileFormatError(f"{p.name} has no column named {labels_column!r}")
            k = header.index(labels_column)
            labels = _integer_labels(table[:, k], p.name)
            table = np.delete(table, k, axis=1)
        logits = _as_logits(table, p.name, limits)
    if labels_path is not None:
        labels = _labels_file(Path(labels_path), limits, max_bytes)
    if labels is not None and labels.shape != (logits.shape[0],):
        raise FileFormatError(f"{p.name}: {labels.shape[0]} labels for {logits.shape[0]} rows of logits")
    return logits, labels


def logits_file_dtype(path: str | os.PathLike[str], logits_key: str = "logits") -> str | None:
    """The floating dtype a ``.safetensors`` or ``.npy`` file stores its logits in, or None.

    For choosing the check's dtype to match a file (a model's bfloat16 logits, say); reads only
    the header. None for other formats, integer logits or a file that cannot be read.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "a.npy"
    >>> np.save(p, np.zeros((2, 3), dtype=np.float16))
    >>> logits_file_dtype(p)
    'float16'
    """
    p = Path(path)
    suffix = p.suffix.lower()
    try:
        if suffix == ".safetensors":
            with open_safetensors(p) as st:
                names = st.names
                key = logits_key if logits_key in names else (names[0] if len(names) == 1 else None)
                name = None if key is None else st.entries[key].numpy_dtype_name
        elif suffix == ".npy":
            with open_regular(p) as f:
                name = read_npy_header(f, p.name, GridLimits(2**62, 2**62, 2**62)).dtype.name
        else:
            return None
    except FileFormatError:
        return None
    return name if name in ("float16", "bfloat16", "float32", "float64") else None


def _with_label_column(limits: GridLimits) -> GridLimits:
    """``limits`` widened by the one labels column a table may hold besides the logits."""
    return GridLimits(limits.max_samples, limits.max_classes + 1, limits.max_elements + limits.max_samples)
