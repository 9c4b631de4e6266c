"""Session files (``.gradexp.json``): the logits, the labels and the check settings, with a format version.

Reading validates everything before anything is returned: the JSON is read with a
byte cap and parsed with nesting and number-length errors caught, the logits must
be a rectangular table of JSON numbers within :class:`GridLimits`, the labels JSON
integers that fit int64, and the settings go through
:meth:`CheckSettings.from_mapping` (canonical dtype names only, typed fields) and
:meth:`CheckSettings.check_classes`. A caller that applies a returned session can
therefore do it in one step: a refused file raises before anything changes.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import ArrayLike, NDArray

from explorer.core import CheckSettings

from .atomic import atomic_write
from .errors import FileFormatError, FileTooLargeError
from .limits import FILE_LIMITS, MAX_FILE_BYTES, GridLimits
from .safe_read import read_text_capped

__all__ = ["SESSION_FORMAT", "Session", "load_session", "save_session", "session_from_json", "session_to_json"]

#: Version of the session file format this build writes; newer files are refused.
#: 2 added the settings ``evaluate`` and ``tolerance`` (and the dtype ``bfloat16``); a format-1
#: file was saved under the fixed ``atol + rtol |ana|`` verdict and keeps it when read.
SESSION_FORMAT = 2
_MAGIC = "gradient-explorer-session"
#: JSON values a session holds besides the logits and labels (settings, weights, keys), generously.
_OTHER_VALUES = 1000


@dataclass(frozen=True)
class Session:
    """Everything needed to restore the explorer: logits (N, C), labels (N,) and the check settings."""

    logits: NDArray
    labels: NDArray
    settings: CheckSettings


def session_to_json(logits: ArrayLike, labels: ArrayLike, settings: CheckSettings) -> str:
    """The session file's text (JSON with a format version); floats keep every bit (repr)."""
    doc = {
        "format": _MAGIC,
        "version": SESSION_FORMAT,
        "logits": np.asarray(logits, dtype=np.float64).tolist(),
        "labels": np.asarray(labels, dtype=np.int64).tolist(),
        "settings": settings.to_mapping(),
    }
    return json.dumps(doc, indent=1, allow_nan=False)


def save_session(path: str | os.PathLike[str], logits: ArrayLike, labels: ArrayLike, settings: CheckSettings) -> None:
    """Save a session file atomically (see :func:`~explorer.files.atomic.atomic_write`).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "s.json"
    >>> save_session(p, [[1.0, 2.0]], [1], CheckSettings())
    >>> load_session(p).labels
    array([1])
    """
    atomic_write(path, session_to_json(logits, labels, settings).encode("utf-8"))


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
    if not isinstance(doc, dict) or doc.get("format") != _MAGIC:
        raise FileFormatError(f"{name} is not a Gradient Explorer session")
    version = doc.get("version")
    if type(version) is not int or version < 1:
        raise FileFormatError(f"{name} has no format version")
    if version > SESSION_FORMAT:
        raise FileFormatError(
            f"{name} was written by a newer Gradient Explorer (format {version}; this one reads up to {SESSION_FORMAT})"
        )
    for key in ("logits", "labels"):
        if key not in doc:
            raise FileFormatError(f"{name} has no {key!r} entry")
    logits = _logits(doc, name, limits)
    labels = _labels(doc, name, logits.shape[0])
    settings_doc = doc.get("settings", {})
    if version == 1 and isinstance(settings_doc, dict) and "tolerance" not in settings_doc:
        settings_doc = {**settings_doc, "tolerance": "fixed"}  # the verdict it was saved under
    try:
        settings = CheckSettings.from_mapping(settings_doc)
        settings.check_classes(logits.shape[1])
    except ValueError as exc:  # SettingsError names the field
        raise FileFormatError(f"{name}: bad settings ({exc})") from None
    c = logits.shape[1]
    bad = np.flatnonzero((labels != settings.ignore_index) & ((labels < 0) | (labels >= c)))
    if bad.size:
        i = int(bad[0])
        raise FileFormatError(f"{name}: label {int(labels[i])} in row {i} is out of range for {c} classes")
    return Session(logits, labels, settings)


def load_session(
    path: str | os.PathLike[str], limits: GridLimits = FILE_LIMITS, max_bytes: int = MAX_FILE_BYTES
) -> Session:
    """Read and validate a session file (see :func:`session_from_json`); the file is read with a byte cap."""
    p = Path(path)
    return session_from_json(read_text_capped(p, max_bytes), p.name, limits)
