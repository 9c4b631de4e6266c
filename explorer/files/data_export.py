"""Data exports of a report (CSV, NPZ), and reading the CSV back."""

from __future__ import annotations

import csv
import io
import json
import os
import re
import zipfile
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from explorer.core import Report

from .atomic import atomic_stream
from .errors import FileFormatError, FileTooLargeError
from .limits import FILE_LIMITS, MAX_FILE_BYTES, GridLimits
from .safe_read import read_text_capped

__all__ = ["CSV_COLUMNS", "CSV_MAX_CELLS", "DATA_SUFFIXES", "export_csv", "export_npz", "read_csv_export"]

#: Suffixes of data exports.
DATA_SUFFIXES = (".csv", ".npz")
#: The columns of a CSV export, in order.
CSV_COLUMNS = ("sample", "class", "label", "logit", "analytic", "numeric", "abs_err", "rel_err", "passed")
_FLOAT_COLUMNS = ("logit", "analytic", "numeric", "abs_err", "rel_err")
#: What ``repr(float)`` writes: C-locale decimals, and nan / inf / -inf.
_REPR_FLOAT = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?|nan|[+-]?inf")
_INDEX = re.compile(r"-?[0-9]{1,18}")


#: Most cells a CSV export holds (one text line each); larger grids are exported as .npz.
CSV_MAX_CELLS = 1 << 20
#: Cells formatted or written per piece (bounds the memory an export needs beside the report).
_PIECE_CELLS = 1 << 16


def _rows_per_piece(c: int) -> int:
    return max(1, _PIECE_CELLS // max(c, 1))


def export_csv(path: str | os.PathLike[str], report: Report) -> None:
    """One row per element: sample, class, label, logit, analytic, numeric, abs_err, rel_err, passed.

    The settings come first as ``# key: value`` comment lines. Values are written with
    ``repr`` so reading them back gives the same floats. Written in pieces of rows (the error
    maps formed for those rows only); grids over :data:`CSV_MAX_CELLS` are refused (use .npz).
    """
    n, c = report.logits.shape
    if n * c > CSV_MAX_CELLS:
        raise FileTooLargeError(
            f"a CSV export holds at most {CSV_MAX_CELLS:,} cells (one line each); this grid has {n * c:,}: "
            "export .npz instead", (n, c)
        )  # fmt: skip
    labels = np.asarray(report.labels)
    cmp = report.comparison
    with atomic_stream(path) as raw:
        text = io.TextIOWrapper(raw, encoding="utf-8", newline="")
        for key, value in report.settings.to_mapping().items():
            text.write(f"# {key}: {json.dumps(value)}\n")
        text.write(f"# loss: {report.loss!r}\n")
        writer = csv.writer(text, lineterminator="\n")
        writer.writerow(CSV_COLUMNS)
        per = _rows_per_piece(c)
        for r0 in range(0, n, per):
            rows = slice(r0, min(n, r0 + per))
            abs_err, rel_err = cmp.region("abs_err", rows), cmp.region("rel_err", rows)
            x, ana, num = report.logits[rows], report.grad_analytic[rows], report.grad_numeric[rows]
            passed = cmp.passed[rows]
            for k in range(rows.stop - rows.start):
                i = rows.start + k
                label = int(labels[i]) if labels.ndim == 1 else ""
                writer.writerows(
                    [i, j, label, repr(float(x[k, j])), repr(float(ana[k, j])), repr(float(num[k, j])),
                     repr(float(abs_err[k, j])), repr(float(rel_err[k, j])), int(passed[k, j])]
                    for j in range(c)
                )  # fmt: skip
        text.flush()
        text.detach()  # the stream is closed (and renamed into place) by atomic_stream


def _meta_value(key: str, value: str, name: str, line_no: int) -> object:
    try:
        if key == "loss":
            if _REPR_FLOAT.fullmatch(value.strip()) is None:
                raise ValueError(value)
            return float(value)
        return json.loads(value)
    except (ValueError, RecursionError):
        raise FileFormatError(f"{name}, line {line_no}: the value of {key!r} cannot be read") from None


def read_csv_export(
    path: str | os.PathLike[str], limits: GridLimits = FILE_LIMITS, max_bytes: int = MAX_FILE_BYTES
) -> tuple[dict, dict[str, NDArray]]:
    """Read a file written by :func:`export_csv`: (settings and loss, arrays shaped (N, C) and labels (N,)).

    Raises
    ------
    FileFormatError
        A file that is not such an export: missing columns, a value that is not a
        number (with its line), a grid over ``limits``, missing or repeated cells.
    """
    p = Path(path)
    text = read_text_capped(p, max_bytes)
    meta: dict = {}
    data: list[tuple[int, str]] = []
    for line_no, line in enumerate(io.StringIO(text, newline=None), start=1):
        line = line.rstrip("\n")
        if line.startswith("# "):
            key, _, value = line[2:].partition(": ")
            meta[key] = _meta_value(key, value, p.name, line_no)
        elif line.strip():
            data.append((line_no, line))
    if not data or next(csv.reader([data[0][1]])) != list(CSV_COLUMNS):
        raise FileFormatError(f"{p.name} is not a Gradient Explorer data export (no {','.join(CSV_COLUMNS)} header)")
    rows = data[1:]
    if not rows:
        raise FileFormatError(f"{p.name} holds no data rows")
    if len(rows) > limits.max_elements:
        raise FileTooLargeError(f"{p.name} holds more than {limits.max_elements} rows; larger exports are refused")
    index = np.empty((len(rows), 2), dtype=np.int64)
    labels_col: list[int | None] = []
    values = np.empty((len(rows), len(_FLOAT_COLUMNS)), dtype=np.float64)
    for r, fields in enumerate(csv.reader(line for _, line in rows)):
        line_no = rows[r][0]
        if len(fields) != len(CSV_COLUMNS):
            raise FileFormatError(f"{p.name}, line {line_no}: expected {len(CSV_COLUMNS)} values, got {len(fields)}")
        sample, cls, label, *floats, _passed = fields
        if not (_INDEX.fullmatch(sample) and _INDEX.fullmatch(cls) and (label == "" or _INDEX.fullmatch(label))):
            raise FileFormatError(f"{p.name}, line {line_no}: sample, class and label must be integers")
        if not all(_REPR_FLOAT.fullmatch(v) for v in floats):
            raise FileFormatError(f"{p.name}, line {line_no}: a value is not a number")
        index[r] = int(sample), int(cls)
        labels_col.append(int(label) if label else None)
        values[r] = [float(v) for v in floats]
    if index.min() < 0:
        raise FileFormatError(f"{p.name}: negative sample or class index")
    n, c = int(index[:, 0].max()) + 1, int(index[:, 1].max()) + 1
    why = limits.refusal((n, c))
    if why is not None:
        raise FileTooLargeError(f"{p.name}: {why}", (n, c))
    flat = index[:, 0] * c + index[:, 1]
    if len(rows) != n * c or np.unique(flat).size != n * c:
        raise FileFormatError(f"{p.name}: expected one row for each of the {n} x {c} cells")
    arrays: dict[str, NDArray] = {}
    for k, key in enumerate(_FLOAT_COLUMNS):
        grid = np.empty(n * c)
        grid[flat] = values[:, k]
        arrays[key] = grid.reshape(n, c)
    if None not in labels_col:  # probability targets are exported without class labels
        labels = np.empty(n, dtype=np.int64)
        labels[index[:, 0]] = np.array(labels_col, dtype=np.int64)
        arrays["labels"] = labels
    return meta, arrays


def _portable(a: np.ndarray) -> np.ndarray:
    """``a`` in a dtype every NumPy reads back: bfloat16 (an ml_dtypes extension type that ``.npy`` stores
    as raw void bytes) becomes float32, which holds every bfloat16 value exactly."""
    return a.astype(np.float32) if a.dtype.kind == "V" else a


def export_npz(path: str | os.PathLike[str], report: Report) -> None:
    """Arrays ``logits``, ``labels``, ``grad_analytic``, ``grad_numeric``, ``abs_err``, ``rel_err``, ``passed``,
    and ``settings`` (a JSON string, readable with ``allow_pickle=False``). bfloat16 arrays are written as
    float32 (exactly the same values) so any NumPy reads them.

    Streamed into the archive member by member, the error maps row piece by row piece (formed for those
    rows only), so a grid of millions of cells needs no whole-map copy; written atomically.
    """
    meta = {**report.settings.to_mapping(), "loss": report.loss}
    n, c = report.logits.shape
    cmp = report.comparison
    whole = {
        "logits": _portable(report.logits),
        "labels": np.asarray(report.labels),
        "grad_analytic": _portable(report.grad_analytic),
        "grad_numeric": _portable(report.grad_numeric),
    }
    with atomic_stream(path) as f, zipfile.ZipFile(f, "w", zipfile.ZIP_STORED) as zf:
        for name, array in whole.items():
            with zf.open(f"{name}.npy", "w", force_zip64=array.nbytes > 2**31) as out:
                np.lib.format.write_array(out, np.ascontiguousarray(array), allow_pickle=False)
        for name in ("abs_err", "rel_err"):
            with zf.open(f"{name}.npy", "w", force_zip64=n * c * 8 > 2**31) as out:
                header = {"descr": np.lib.format.dtype_to_descr(np.dtype(np.float64)), "fortran_order": False,
                          "shape": (n, c)}  # fmt: skip
                np.lib.format.write_array_header_1_0(out, header)
                per = _rows_per_piece(c)
                for r0 in range(0, n, per):
                    out.write(np.ascontiguousarray(cmp.region(name, slice(r0, min(n, r0 + per))), dtype="<f8").data)
        with zf.open("passed.npy", "w") as out:
            np.lib.format.write_array(out, np.ascontiguousarray(cmp.passed), allow_pickle=False)
        with zf.open("settings.npy", "w") as out:
            np.lib.format.write_array(out, np.array(json.dumps(meta)), allow_pickle=False)
