"""Atomic writes that honour the user's umask."""

from __future__ import annotations

import contextlib
import os
import secrets
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import IO

__all__ = ["atomic_stream", "atomic_write"]


def _create_temp(target: Path) -> tuple[int, Path]:
    """A new, empty temporary file beside ``target``, created with mode 0666 so the kernel applies the umask."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0)
    for _ in range(100):
        tmp = target.with_name(f".{target.name}.{secrets.token_hex(6)}.tmp")
        try:
            return os.open(tmp, flags, 0o666), tmp
        except FileExistsError:
            continue
    raise FileExistsError(f"could not create a temporary file beside {target}")


@contextlib.contextmanager
def atomic_stream(path: str | os.PathLike[str]) -> Iterator[IO[bytes]]:
    """A binary file to write ``path`` through, in pieces: a temporary beside it, fsync'd and renamed over
    ``path`` when the block ends; an error removes the temporary and leaves the old file (see
    :func:`atomic_write`, which writes one ``bytes`` through it).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "a.txt"
    >>> with atomic_stream(p) as f:
    ...     _ = f.write(b"hel"), f.write(b"lo")
    >>> p.read_bytes()
    b'hello'
    """
    target = Path(path)
    try:
        old_mode: int | None = stat.S_IMODE(os.stat(target).st_mode)
    except OSError:
        old_mode = None
    fd, tmp = _create_temp(target)
    try:
        with os.fdopen(fd, "w+b") as f:
            if old_mode is not None and hasattr(os, "fchmod"):
                os.fchmod(f.fileno(), old_mode)
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def atomic_write(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to ``path`` atomically: a temporary file in the same folder, fsync, rename.

    A crash or a full disk leaves the old file (or none) in place, never half a file.
    A new file gets the permissions the user's umask gives (0644 under the usual
    umask 022), unlike :func:`tempfile.mkstemp`'s 0600; a file that already exists
    keeps its permission bits.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "a.txt"
    >>> atomic_write(p, b"hello")
    >>> p.read_bytes()
    b'hello'
    """
    with atomic_stream(path) as f:
        f.write(data)
