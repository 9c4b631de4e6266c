"""Files in and out, without Qt: sessions (JSON), data exports (CSV, NPZ), logits files, code snippets.

Every file read is untrusted: sizes are checked before reading, NumPy files are
loaded with ``allow_pickle=False``, and every problem is reported as a
:class:`FileFormatError` (a ``ValueError``) with one clear sentence. Writes are
atomic: a temporary file in the same folder, flushed, then renamed over the target.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import io
import json
import os
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import ArrayLike, NDArray

from explorer.core import CheckSettings, Report

__all__ = [
    "DATA_SUFFIXES",
    "LOGITS_SUFFIXES",
    "MAX_FILE_BYTES",
    "SESSION_FORMAT",
    "FileFormatError",
    "Session",
    "atomic_write",
    "code_snippet",
    "export_csv",
    "export_npz",
    "load_logits",
    "load_session",
    "read_csv_export",
    "save_session",
    "session_from_json",
    "session_to_json",
]

#: Version of the session file format this build writes; newer files are refused.
SESSION_FORMAT = 1
#: Files larger than this are refused before they are read.
MAX_FILE_BYTES = 256 * 2**20
#: Suffixes of logits files :func:`load_logits` reads, and of data exports.
LOGITS_SUFFIXES = (".npy", ".npz", ".csv", ".tsv", ".txt")
DATA_SUFFIXES = (".csv", ".npz")


class FileFormatError(ValueError):
    """A file could not be used; the message says why in one sentence."""


@dataclass(frozen=True)
class Session:
    """Everything needed to restore the explorer: logits (N, C), labels (N,) and the check settings."""

    logits: NDArray
    labels: NDArray
    settings: CheckSettings


# ------------------------------------------------------------------- writing
def atomic_write(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to ``path`` atomically: a temporary file in the same folder, fsync, rename.

    A crash or a full disk leaves the old file (or none) in place, never half a file.
    """
    target = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent or ".")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _settings_dict(settings: CheckSettings) -> dict:
    d = dataclasses.asdict(settings)
    d["weight"] = None if settings.weight is None else list(settings.weight)
    return d


def session_to_json(logits: ArrayLike, labels: ArrayLike, settings: CheckSettings) -> str:
    """The session file's text (JSON with a format version); floats keep every bit (repr)."""
    doc = {
        "format": "gradient-explorer-session",
        "version": SESSION_FORMAT,
        "logits": np.asarray(logits, dtype=np.float64).tolist(),
        "labels": np.asarray(labels, dtype=np.int64).tolist(),
        "settings": _settings_dict(settings),
    }
    return json.dumps(doc, indent=1, allow_nan=False)


def save_session(path: str | os.PathLike[str], logits: ArrayLike, labels: ArrayLike, settings: CheckSettings) -> None:
    """Save a session file atomically.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "s.json"
    >>> save_session(p, [[1.0, 2.0]], [1], CheckSettings())
    >>> load_session(p).labels
    array([1])
    """
    atomic_write(path, session_to_json(logits, labels, settings).encode("utf-8"))


def export_csv(path: str | os.PathLike[str], report: Report) -> None:
    """One row per element: sample, class, label, logit, analytic, numeric, abs_err, rel_err, passed.

    The settings come first as ``# key: value`` comment lines. Values are written with
    ``repr`` so reading them back gives the same floats.
    """
    buf = io.StringIO()
    for key, value in _settings_dict(report.settings).items():
        buf.write(f"# {key}: {json.dumps(value)}\n")
    buf.write(f"# loss: {report.loss!r}\n")
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["sample", "class", "label", "logit", "analytic", "numeric", "abs_err", "rel_err", "passed"])
    n, c = report.logits.shape
    labels = np.asarray(report.labels)
    for i in range(n):
        for j in range(c):
            writer.writerow([
                i, j, int(labels[i]) if labels.ndim == 1 else "",
                repr(float(report.logits[i, j])), repr(float(report.grad_analytic[i, j])),
                repr(float(report.grad_numeric[i, j])), repr(float(report.abs_err[i, j])),
                repr(float(report.rel_err[i, j])), int(report.comparison.passed[i, j]),
            ])  # fmt: skip
    atomic_write(path, buf.getvalue().encode("utf-8"))


def read_csv_export(path: str | os.PathLike[str]) -> tuple[dict, dict[str, NDArray]]:
    """Read a file written by :func:`export_csv`: (settings and loss, arrays shaped (N, C) and labels (N,))."""
    text = _read_text(path)
    meta: dict = {}
    lines = []
    for line in text.splitlines():
        if line.startswith("# "):
            key, _, value = line[2:].partition(": ")
            meta[key] = json.loads(value) if key != "loss" else float(value)
        elif line.strip():
            lines.append(line)
    rows = list(csv.DictReader(lines))
    if not rows:
        raise FileFormatError(f"{Path(path).name} holds no data rows")
    n = max(int(r["sample"]) for r in rows) + 1
    c = max(int(r["class"]) for r in rows) + 1
    arrays: dict[str, NDArray] = {k: np.zeros((n, c)) for k in ("logit", "analytic", "numeric", "abs_err", "rel_err")}
    labels = np.zeros(n, dtype=np.int64)
    for r in rows:
        i, j = int(r["sample"]), int(r["class"])
        for k in arrays:
            arrays[k][i, j] = float(r[k])
        labels[i] = int(r["label"])
    arrays["labels"] = labels
    return meta, arrays


def export_npz(path: str | os.PathLike[str], report: Report) -> None:
    """Arrays ``logits``, ``labels``, ``grad_analytic``, ``grad_numeric``, ``abs_err``, ``rel_err``, ``passed``,
    and ``settings`` (a JSON string, readable with ``allow_pickle=False``)."""
    buf = io.BytesIO()
    meta = {**_settings_dict(report.settings), "loss": report.loss}
    np.savez(
        buf,
        logits=report.logits,
        labels=np.asarray(report.labels),
        grad_analytic=report.grad_analytic,
        grad_numeric=report.grad_numeric,
        abs_err=report.abs_err,
        rel_err=report.rel_err,
        passed=report.comparison.passed,
        settings=np.array(json.dumps(meta)),
    )
    atomic_write(path, buf.getvalue())


# ------------------------------------------------------------------- reading
def _check_size(path: str | os.PathLike[str]) -> Path:
    p = Path(path)
    try:
        size = p.stat().st_size
    except FileNotFoundError:
        raise FileFormatError(f"{p} does not exist") from None
    except OSError as exc:
        raise FileFormatError(f"{p} cannot be read: {exc.strerror or exc}") from None
    if p.is_dir():
        raise FileFormatError(f"{p} is a folder, not a file")
    if size > MAX_FILE_BYTES:
        raise FileFormatError(
            f"{p.name} is {size / 2**20:.0f} MiB; files over {MAX_FILE_BYTES // 2**20} MiB are refused"
        )
    return p


def _read_text(path: str | os.PathLike[str]) -> str:
    p = _check_size(path)
    try:
        return p.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise FileFormatError(f"{p.name} is not a text file (not UTF-8)") from None
    except OSError as exc:
        raise FileFormatError(f"{p.name} cannot be read: {exc.strerror or exc}") from None


def session_from_json(text: str, name: str = "the session") -> Session:
    """Parse and validate session text; raise FileFormatError with one sentence on any problem."""
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise FileFormatError(f"{name} is not valid JSON (line {exc.lineno}: {exc.msg}); it may be truncated") from None
    if not isinstance(doc, dict) or doc.get("format") != "gradient-explorer-session":
        raise FileFormatError(f"{name} is not a Gradient Explorer session")
    version = doc.get("version")
    if not isinstance(version, int):
        raise FileFormatError(f"{name} has no format version")
    if version > SESSION_FORMAT:
        raise FileFormatError(
            f"{name} was written by a newer Gradient Explorer (format {version}; this one reads up to {SESSION_FORMAT})"
        )
    try:
        logits = np.array(doc["logits"], dtype=np.float64)
        labels_raw = np.array(doc["labels"])
    except KeyError as exc:
        raise FileFormatError(f"{name} has no {exc.args[0]!r} entry") from None
    except (TypeError, ValueError):
        raise FileFormatError(f"{name}: the logits must be a rectangular table of numbers") from None
    if logits.ndim != 2 or logits.size == 0:
        raise FileFormatError(f"{name}: the logits must be a non-empty N x C table, got shape {logits.shape}")
    if not np.all(np.isfinite(logits)):
        raise FileFormatError(f"{name}: the logits contain values that are not finite numbers")
    if labels_raw.shape != (logits.shape[0],) or labels_raw.dtype.kind not in "iu":
        raise FileFormatError(f"{name}: expected {logits.shape[0]} integer labels, one per row")
    settings_doc = doc.get("settings", {})
    if not isinstance(settings_doc, dict):
        raise FileFormatError(f"{name}: the settings must be a JSON object")
    known = {f.name for f in dataclasses.fields(CheckSettings)}
    unknown = sorted(set(settings_doc) - known)
    if unknown:
        raise FileFormatError(f"{name}: unknown setting {unknown[0]!r}")
    try:
        if settings_doc.get("weight") is not None:
            settings_doc = {**settings_doc, "weight": tuple(float(w) for w in settings_doc["weight"])}
        settings = CheckSettings(**settings_doc)
    except (TypeError, ValueError) as exc:
        raise FileFormatError(f"{name}: bad settings ({exc})") from None
    if settings.weight is not None and len(settings.weight) != logits.shape[1]:
        raise FileFormatError(f"{name}: {len(settings.weight)} class weights for {logits.shape[1]} classes")
    c = logits.shape[1]
    labels = labels_raw.astype(np.int64)
    bad = np.flatnonzero((labels != settings.ignore_index) & ((labels < 0) | (labels >= c)))
    if bad.size:
        i = int(bad[0])
        raise FileFormatError(f"{name}: label {int(labels[i])} in row {i} is out of range for {c} classes")
    return Session(logits, labels, settings)


def load_session(path: str | os.PathLike[str]) -> Session:
    """Read and validate a session file (see :func:`session_from_json`)."""
    return session_from_json(_read_text(path), Path(path).name)


def _float_table(rows: list[list[str]], name: str) -> NDArray:
    widths = {len(r) for r in rows}
    if len(widths) != 1:
        raise FileFormatError(f"{name}: rows have different numbers of values ({', '.join(map(str, sorted(widths)))})")
    try:
        table = np.array([[float(v) for v in r] for r in rows], dtype=np.float64)
    except ValueError as exc:
        raise FileFormatError(
            f"{name}: {str(exc).replace('could not convert string to float: ', 'not a number: ')}"
        ) from None
    return table


def _read_delimited(path: Path, labels_column: str | None) -> tuple[NDArray, NDArray | None]:
    text = _read_text(path)
    delimiter = "," if path.suffix == ".csv" else "\t" if path.suffix == ".tsv" else None
    lines = [ln for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    if not lines:
        raise FileFormatError(f"{path.name} holds no numbers")
    rows = [[v.strip() for v in (ln.split(delimiter) if delimiter else ln.split())] for ln in lines]
    header = None
    try:
        [float(v) for v in rows[0]]
    except ValueError:
        header, rows = rows[0], rows[1:]
    labels = None
    if labels_column is not None:
        if header is None or labels_column not in header:
            raise FileFormatError(f"{path.name} has no column named {labels_column!r}")
        k = header.index(labels_column)
        labels_table = _float_table([[r[k]] for r in rows], path.name)[:, 0]
        rows = [r[:k] + r[k + 1 :] for r in rows]
        labels = _integer_labels(labels_table, path.name)
    if not rows:
        raise FileFormatError(f"{path.name} holds no numbers")
    return _float_table(rows, path.name), labels


def _integer_labels(values: NDArray, name: str) -> NDArray:
    values = np.asarray(values)
    if values.ndim != 1:
        raise FileFormatError(f"{name}: labels must be one column, got shape {values.shape}")
    if values.dtype.kind == "f" and not np.all(np.isfinite(values) & (values == np.round(values))):
        raise FileFormatError(f"{name}: labels must be whole numbers")
    if values.dtype.kind not in "iuf":
        raise FileFormatError(f"{name}: labels must be numbers")
    return values.astype(np.int64)


def _check_magic(path: Path, magic: bytes, kind: str) -> None:
    with path.open("rb") as f:
        if f.read(len(magic)) != magic:
            raise FileFormatError(f"{path.name} is not a valid {kind} file")


def _load_npy(path: Path) -> NDArray:
    _check_magic(path, b"\x93NUMPY", ".npy")
    try:
        arr = np.load(path, allow_pickle=False)
    except ValueError:
        raise FileFormatError(f"{path.name} holds Python objects (pickled data), which are never loaded") from None
    except (OSError, EOFError) as exc:
        raise FileFormatError(f"{path.name} is not a valid .npy file ({exc})") from None
    return arr


def load_logits(
    path: str | os.PathLike[str],
    labels_path: str | os.PathLike[str] | None = None,
    labels_column: str | None = None,
    logits_key: str = "logits",
    labels_key: str = "labels",
) -> tuple[NDArray, NDArray | None]:
    """Read logits (N, C) and, when available, labels (N,) from .npy, .npz, .csv, .tsv or .txt.

    Labels come from a named column (``labels_column``), a second file
    (``labels_path``, any of the same formats), or the NPZ entry ``labels_key``.
    Values may be any finite or non-finite floats here; the caller decides what
    it accepts (the window refuses non-finite logits with a message).

    Raises
    ------
    FileFormatError
        For a missing, oversized, malformed or pickled file, or arrays of the wrong shape.
    """
    p = _check_size(path)
    suffix = p.suffix.lower()
    if suffix not in LOGITS_SUFFIXES:
        raise FileFormatError(f"{p.name}: unknown file type {p.suffix!r}; use one of {', '.join(LOGITS_SUFFIXES)}")
    labels: NDArray | None = None
    if suffix == ".npy":
        logits = _load_npy(p)
    elif suffix == ".npz":
        _check_magic(p, b"PK", ".npz")
        try:
            with np.load(p, allow_pickle=False) as z:
                keys = list(z.keys())
                key = logits_key if logits_key in keys else (keys[0] if len(keys) == 1 else None)
                if key is None:
                    raise FileFormatError(f"{p.name} has no {logits_key!r} entry (it has {', '.join(keys) or 'none'})")
                logits = z[key]
                if labels_key in keys and key != labels_key:
                    labels = _integer_labels(z[labels_key], p.name)
        except (zipfile.BadZipFile, OSError, EOFError) as exc:
            raise FileFormatError(f"{p.name} is not a valid .npz file ({exc})") from None
        except ValueError as exc:
            if isinstance(exc, FileFormatError):
                raise
            raise FileFormatError(f"{p.name} holds Python objects (pickled data), which are never loaded") from None
    else:
        logits, labels = _read_delimited(p, labels_column)
    if logits.dtype.kind not in "biuf":
        raise FileFormatError(f"{p.name}: the logits must be numbers, got dtype {logits.dtype}")
    logits = np.asarray(logits, dtype=np.float64)
    if logits.ndim == 1:
        logits = logits[None, :]
    if logits.ndim != 2 or logits.size == 0:
        raise FileFormatError(f"{p.name}: the logits must be an N x C table, got shape {logits.shape}")
    if labels_path is not None:
        other, other_labels = (
            load_logits(labels_path)
            if Path(labels_path).suffix.lower() != ".npy"
            else (_load_npy(_check_size(labels_path)), None)
        )
        labels = _integer_labels(other_labels if other_labels is not None else np.ravel(other), Path(labels_path).name)
    if labels is not None and labels.shape != (logits.shape[0],):
        raise FileFormatError(f"{p.name}: {labels.shape[0]} labels for {logits.shape[0]} rows of logits")
    return logits, labels


# --------------------------------------------------------------------- code
def code_snippet(logits: ArrayLike, labels: ArrayLike, settings: CheckSettings) -> str:
    """A short runnable script that reproduces the check with the core (and without it, in plain NumPy).

    Examples
    --------
    >>> "cross_entropy_numeric_grad" in code_snippet([[0.0, 1.0]], [1], CheckSettings())
    True
    """
    x = np.asarray(logits, dtype=np.float64)
    y = np.asarray(labels, dtype=np.int64)
    weight = "None" if settings.weight is None else f"np.array({list(settings.weight)!r})"
    rows = ",\n    ".join("[" + ", ".join(repr(float(v)) for v in row) + "]" for row in x)
    loss_kw = (
        f"weight=weight, ignore_index={settings.ignore_index}, reduction={settings.reduction!r}, "
        f"label_smoothing={settings.label_smoothing!r}"
    )
    what = f"{x.shape[0]} x {x.shape[1]}, {settings.scheme}, eps={settings.eps!r}"
    return f"""# Reproduces a Gradient Explorer check ({what}).
import numpy as np
from explorer.core import cross_entropy, cross_entropy_grad, cross_entropy_numeric_grad, compare

logits = np.array([
    {rows},
], dtype=np.{settings.dtype})
labels = np.array({y.tolist()!r})
weight = {weight}
loss = cross_entropy(logits, labels, {loss_kw})
grad_analytic = cross_entropy_grad(logits, labels, {loss_kw})
grad_numeric = cross_entropy_numeric_grad(
    logits, labels, {settings.eps!r}, {settings.scheme!r}, {settings.perturb!r}, {loss_kw}
)
result = compare(grad_numeric, grad_analytic, atol={settings.tolerances[0]!r}, rtol={settings.tolerances[1]!r})
print("loss", float(loss), "max abs error", result.max_abs_err, "worst cell", result.worst, "ok", result.ok)
"""
