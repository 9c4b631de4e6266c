"""Reading untrusted files: regular files only, never blocking, never past a byte cap.

``st_size`` is not trusted: it is 0 for devices and FIFOs, and a file can grow
while it is read. So a path is refused unless it (after following symlinks) is a
regular file, it is opened with ``O_NONBLOCK`` (a FIFO swapped in between the check
and the open cannot block), checked again on the open descriptor, and read in
chunks that stop one byte past the cap.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import BinaryIO

from .errors import FileFormatError, FileTooLargeError
from .limits import MAX_FILE_BYTES

__all__ = ["open_regular", "read_bytes_capped", "read_text_capped"]

_CHUNK = 1 << 20
_BOM = "\ufeff"


def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISFIFO(mode):
        return "a pipe (FIFO)"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def _refuse_special(p: Path, mode: int) -> None:
    if not stat.S_ISREG(mode):
        raise FileFormatError(f"{p.name or p} is {_kind(mode)}, not a regular file; only regular files are read")


def _too_large(p: Path, max_bytes: int) -> FileTooLargeError:
    return FileTooLargeError(f"{p.name} is larger than {_size(max_bytes)}; larger files are refused")


def _size(n: int) -> str:
    return f"{n // 2**20} MiB" if n >= 2**20 and n % 2**20 == 0 else f"{n} bytes"


def open_regular(path: str | os.PathLike[str], max_bytes: int = MAX_FILE_BYTES) -> BinaryIO:
    """Open ``path`` for binary reading if (after following symlinks) it is a regular file of at most ``max_bytes``.

    The open never blocks (``O_NONBLOCK``) and the type is checked again on the
    open descriptor, so a FIFO or device swapped in after the first check is refused
    too. The size is a first check only: read with :func:`read_bytes_capped`, or
    read no more than you have checked you need.

    Raises
    ------
    FileFormatError
        A missing file, a folder, a device, FIFO or socket, an unreadable file, or a
        file over ``max_bytes`` (:class:`FileTooLargeError`).
    """
    p = Path(path)
    try:
        _refuse_special(p, os.stat(p).st_mode)
        flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0)
        fd = os.open(p, flags)
    except FileFormatError:
        raise
    except FileNotFoundError:
        raise FileFormatError(f"{p} does not exist") from None
    except (OSError, ValueError) as exc:  # ValueError: a NUL byte in the path
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise FileFormatError(f"{p} cannot be read: {reason}") from None
    try:
        st = os.fstat(fd)
        _refuse_special(p, st.st_mode)
        if st.st_size > max_bytes:
            raise _too_large(p, max_bytes)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def read_bytes_capped(path: str | os.PathLike[str], max_bytes: int = MAX_FILE_BYTES) -> bytes:
    """All bytes of the regular file ``path``, refused with :class:`FileFormatError` past ``max_bytes``.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "a.txt"
    >>> _ = p.write_bytes(b"12345")
    >>> read_bytes_capped(p, 5)
    b'12345'
    >>> read_bytes_capped(p, 4)
    Traceback (most recent call last):
    ...
    explorer.files.errors.FileTooLargeError: a.txt is larger than 4 bytes; larger files are refused
    """
    p = Path(path)
    with open_regular(p, max_bytes) as f:
        try:
            first = os.fstat(f.fileno()).st_size
            chunks = [f.read(min(first, max_bytes) + 1)]
            total = len(chunks[0])
            while total <= max_bytes and len(chunks[-1]) > 0:
                chunk = f.read(min(_CHUNK, max_bytes + 1 - total))
                chunks.append(chunk)
                total += len(chunk)
        except OSError as exc:
            raise FileFormatError(f"{p.name} cannot be read: {exc.strerror or exc}") from None
    if total > max_bytes:
        raise _too_large(p, max_bytes)
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def read_text_capped(path: str | os.PathLike[str], max_bytes: int = MAX_FILE_BYTES) -> str:
    """The UTF-8 text of the regular file ``path`` (a leading byte-order mark removed), at most ``max_bytes``.

    For every text the explorer reads: CSV/TSV/TXT logits, sessions, user code.

    Raises
    ------
    FileFormatError
        As :func:`read_bytes_capped`, or when the bytes are not UTF-8.
    """
    p = Path(path)
    data = read_bytes_capped(p, max_bytes)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise FileFormatError(f"{p.name} is not a UTF-8 text file (byte {exc.start} cannot be decoded)") from None
    return text[1:] if text.startswith(_BOM) else text
