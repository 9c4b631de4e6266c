"""Files in and out, without Qt: a thin re-export of the modules that do the work.

* :mod:`explorer.files.safe_read`: regular files only, read with a byte cap, never blocking.
* :mod:`explorer.files.arrays`: ``.npy`` / ``.npz`` with headers and members checked before allocating.
* :mod:`explorer.files.loaders`: logits and labels from NumPy and text files.
* :mod:`explorer.files.sessions`: session files (JSON and binary), validated as a whole.
* :mod:`explorer.files.data_export`: CSV and NPZ exports of a report.
* :mod:`explorer.files.snippets`: *Copy as code*.
* :mod:`explorer.files.atomic`: atomic writes with the user's umask.

Every problem with a file is one :class:`FileFormatError` (a ``ValueError``) with one sentence.
"""

from __future__ import annotations

from .atomic import atomic_write
from .data_export import DATA_SUFFIXES, export_csv, export_npz, read_csv_export
from .errors import FileFormatError, FileTooLargeError
from .limits import FILE_LIMITS, MAX_ELEMENTS, MAX_FILE_BYTES, GridLimits
from .loaders import LOGITS_SUFFIXES, load_logits, read_table
from .safe_read import open_regular, read_bytes_capped, read_text_capped
from .sessions import (
    BINARY_SESSION_FORMAT,
    BINARY_SESSION_SUFFIX,
    JSON_SESSION_MAX_ELEMENTS,
    SESSION_FORMAT,
    Session,
    is_binary_session,
    load_session,
    save_session,
    session_from_json,
    session_to_json,
)
from .snippets import code_snippet

__all__ = [
    "BINARY_SESSION_FORMAT",
    "BINARY_SESSION_SUFFIX",
    "DATA_SUFFIXES",
    "FILE_LIMITS",
    "JSON_SESSION_MAX_ELEMENTS",
    "LOGITS_SUFFIXES",
    "MAX_ELEMENTS",
    "MAX_FILE_BYTES",
    "SESSION_FORMAT",
    "FileFormatError",
    "FileTooLargeError",
    "GridLimits",
    "Session",
    "atomic_write",
    "code_snippet",
    "export_csv",
    "export_npz",
    "is_binary_session",
    "load_logits",
    "load_session",
    "open_regular",
    "read_bytes_capped",
    "read_csv_export",
    "read_table",
    "read_text_capped",
    "save_session",
    "session_from_json",
    "session_to_json",
]
