"""NumPy files (``.npy``, ``.npz``) read without trusting them.

Nothing is allocated from what a file *claims* until the claim is checked: the
``.npy`` header's dtype (booleans, integers and floats only; never objects or
pickles) and shape (against :class:`~explorer.files.limits.GridLimits`), and for an
``.npz`` the size of its central directory, each member's encryption flag,
compression method and declared size. Values are then read through a stream that
yields exactly the bytes the header needs, so a zip bomb is never inflated past that,
and the member's checksum is verified. Every problem is one :class:`FileFormatError`.
"""

from __future__ import annotations

import contextlib
import os
import struct
import tokenize
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import numpy as np
from numpy.typing import NDArray

from .errors import FileFormatError, FileTooLargeError
from .limits import FILE_LIMITS, MAX_FILE_BYTES, MAX_NPY_HEADER_BYTES, MAX_ZIP_MEMBERS, GridLimits
from .safe_read import open_regular

__all__ = ["ALLOWED_KINDS", "NpyHeader", "NpzArchive", "open_npz", "read_npy", "read_npy_header"]

#: dtype kinds the loaders read: bool, signed and unsigned integers, floats.
ALLOWED_KINDS = "biuf"
_CHUNK = 1 << 20
#: Errors the zip, zlib and NumPy header code raise on damaged or hostile input.
_ARCHIVE_ERRORS = (
    zipfile.BadZipFile, zipfile.LargeZipFile, zlib.error, EOFError, OSError, ValueError, TypeError,
    NotImplementedError, RuntimeError, struct.error, SyntaxError, RecursionError, MemoryError, OverflowError,
    UnicodeDecodeError, KeyError, IndexError, tokenize.TokenError, AttributeError,
)  # fmt: skip


#: What NumPy's header parser (``ast.literal_eval`` on at most 10 kB of text) raises on a hostile header.
_HEADER_ERRORS = (
    ValueError, TypeError, SyntaxError, tokenize.TokenError, RecursionError, MemoryError, OverflowError,
    UnicodeDecodeError, KeyError, IndexError, AttributeError,
)  # fmt: skip


@dataclass(frozen=True)
class NpyHeader:
    """What an ``.npy`` header declares, checked: ``shape``, ``dtype``, ``fortran_order`` and the data's ``nbytes``."""

    shape: tuple[int, ...]
    dtype: np.dtype
    fortran_order: bool

    @property
    def count(self) -> int:
        n = 1
        for d in self.shape:
            n *= d
        return n

    @property
    def nbytes(self) -> int:
        return self.count * self.dtype.itemsize


def read_npy_header(f: IO[bytes], name: str, limits: GridLimits = FILE_LIMITS, max_ndim: int = 2) -> NpyHeader:
    """Read and check an ``.npy`` header from ``f`` (positioned at the magic string).

    Raises
    ------
    FileFormatError
        Not an ``.npy`` stream, an unsupported version, an unreadable header, a dtype
        that is not bool/int/uint/float (objects are never unpickled), more than
        ``max_ndim`` dimensions, or a shape over ``limits`` (:class:`FileTooLargeError`).
    """
    try:
        version = np.lib.format.read_magic(f)
    except ValueError:  # wrong magic string, or fewer bytes than it
        raise FileFormatError(f"{name} is not a valid .npy file (no NumPy header)") from None
    if version not in ((1, 0), (2, 0)):
        raise FileFormatError(f"{name} uses .npy format version {version[0]}.{version[1]}, which is not read here")
    read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
    try:
        shape, fortran, dtype = read_header(f, max_header_size=MAX_NPY_HEADER_BYTES)
    except _HEADER_ERRORS:
        raise FileFormatError(f"{name} is not a valid .npy file (its header cannot be read)") from None
    dtype = np.dtype(dtype)
    if dtype.hasobject:
        raise FileFormatError(f"{name} holds Python objects (pickled data), which are never loaded")
    if dtype.fields is not None or dtype.subdtype is not None or dtype.kind not in ALLOWED_KINDS:
        raise FileFormatError(f"{name} holds {dtype.str!r} values; only booleans, integers and floats are read")
    shape = tuple(int(d) for d in shape)
    if len(shape) > max_ndim:
        raise FileFormatError(f"{name} holds a {len(shape)}-D array; expected at most {max_ndim} dimensions")
    header = NpyHeader(shape, dtype, bool(fortran))
    why = limits.refusal(shape) if shape else None
    if why is not None:
        raise FileTooLargeError(f"{name}: {why}", shape)
    return header


def _read_exact(f: IO[bytes], nbytes: int, name: str) -> bytearray:
    """Exactly ``nbytes`` from ``f`` in bounded chunks; a short stream is a truncated file."""
    buf = bytearray(nbytes)
    view = memoryview(buf)
    got = 0
    while got < nbytes:
        # Straight into the buffer (no chunk objects to copy), in bounded pieces.
        read = f.readinto(view[got : got + min(_CHUNK, nbytes - got)])  # type: ignore[attr-defined]
        if not read:
            raise FileFormatError(f"{name} is truncated: its header declares {nbytes} bytes of values, it holds {got}")
        got += read
    return buf


def _array(header: NpyHeader, data: bytearray) -> NDArray:
    arr = np.frombuffer(data, dtype=header.dtype, count=header.count)
    return arr.reshape(header.shape, order="F" if header.fortran_order else "C")


def read_npy(
    path: str | os.PathLike[str], limits: GridLimits = FILE_LIMITS, max_bytes: int = MAX_FILE_BYTES, max_ndim: int = 2
) -> NDArray:
    """Read an ``.npy`` file: header checked first (see :func:`read_npy_header`), then exactly its values.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "a.npy"
    >>> np.save(p, np.eye(2))
    >>> read_npy(p)
    array([[1., 0.],
           [0., 1.]])
    """
    p = Path(path)
    with open_regular(p, max_bytes) as f:
        header = read_npy_header(f, p.name, limits, max_ndim)
        try:
            data = _read_exact(f, header.nbytes, p.name)
        except OSError as exc:
            raise FileFormatError(f"{p.name} cannot be read: {exc.strerror or exc}") from None
    return _array(header, data)


def _zip_entry_count(f: IO[bytes], name: str) -> None:
    """Refuse an archive whose end-of-central-directory record lists too many entries (before zipfile parses them)."""
    size = f.seek(0, os.SEEK_END)
    tail_len = min(size, 22 + 0xFFFF)
    f.seek(size - tail_len)
    tail = f.read(tail_len)
    at = tail.rfind(b"PK\x05\x06")
    if at < 0 or len(tail) - at < 22:
        raise FileFormatError(f"{name} is not a valid .npz file (not a zip archive)")
    entries, dir_size = struct.unpack("<xxxxxxxxxxHI", tail[at : at + 16])
    if entries == 0xFFFF or dir_size == 0xFFFFFFFF:  # ZIP64: the real counts are in the ZIP64 record
        loc = tail.rfind(b"PK\x06\x07", 0, at)
        if loc < 0 or len(tail) - loc < 20:
            raise FileFormatError(f"{name} is not a valid .npz file (damaged ZIP64 directory)")
        (offset,) = struct.unpack("<Q", tail[loc + 8 : loc + 16])
        if offset + 56 > size:
            raise FileFormatError(f"{name} is not a valid .npz file (damaged ZIP64 directory)")
        f.seek(offset)
        record = f.read(56)
        if record[:4] != b"PK\x06\x06":
            raise FileFormatError(f"{name} is not a valid .npz file (damaged ZIP64 directory)")
        entries, dir_size = struct.unpack("<QQ", record[32:48])
    if entries > MAX_ZIP_MEMBERS or dir_size > MAX_ZIP_MEMBERS * 1024:
        raise FileFormatError(f"{name} lists {entries} entries; archives with over {MAX_ZIP_MEMBERS} are refused")
    f.seek(0)


def _check_member(info: zipfile.ZipInfo, label: str) -> None:
    """Refuse an encrypted entry or one compressed other than stored or deflated."""
    if info.flag_bits & 0x1:
        raise FileFormatError(f"{label} is encrypted; encrypted archives are not read")
    if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
        raise FileFormatError(
            f"{label} uses compression method {info.compress_type}; only stored and deflated entries "
            "(what NumPy writes) are read"
        )


def _member(zf: zipfile.ZipFile, info: zipfile.ZipInfo, name: str, limits: GridLimits, max_ndim: int) -> NDArray:
    label = f"{name} entry {info.filename!r}"
    _check_member(info, label)
    with zf.open(info) as member:
        header = read_npy_header(member, label, limits, max_ndim)
        expected = member.tell() + header.nbytes
        if info.file_size != expected:
            raise FileFormatError(
                f"{label} is damaged: the archive declares {info.file_size} bytes, its header {expected}"
            )
        data = _read_exact(member, header.nbytes, label)
        if member.read(1):  # also reaches the end, where zipfile checks the CRC
            raise FileFormatError(f"{label} holds more bytes than its header declares")
    return _array(header, data)


class NpzArchive:
    """An ``.npz`` opened for checked reading: :attr:`names` lists its arrays, :meth:`read` reads one.

    Use :func:`open_npz` (a context manager). Only the entries passed to :meth:`read` are
    decompressed, each no further than its checked header says.
    """

    def __init__(self, f: IO[bytes], zf: zipfile.ZipFile, name: str) -> None:
        self._f, self._zf, self.name = f, zf, name
        infos = zf.infolist()
        self._infos = {i.filename: i for i in infos}
        if len(self._infos) != len(infos):  # which of two same-named entries is meant? neither is guessed
            twice = sorted({i.filename for i in infos if sum(j.filename == i.filename for j in infos) > 1})
            raise FileFormatError(f"{name} is not a valid archive: it holds the entry {twice[0]!r} more than once")
        #: The archive's ``.npy`` entries, without the suffix (as :func:`numpy.load` names them).
        self.names = [k[:-4] for k in self._infos if k.endswith(".npy")]

    def __contains__(self, key: object) -> bool:
        """Whether the archive has an entry ``key`` or ``key.npy`` (an array or not)."""
        return isinstance(key, str) and (key in self._infos or key + ".npy" in self._infos)

    def read_bytes(self, key: str, max_bytes: int) -> bytes:
        """The raw bytes of entry ``key`` (not an array: e.g. a small JSON member), at most ``max_bytes`` of them.

        The entry is checked like an array's (not encrypted, stored or deflated, declared size
        within ``max_bytes``) and read no further than the cap; its checksum is verified.
        """
        info = self._infos.get(key)
        if info is None:
            raise FileFormatError(f"{self.name} has no {key!r} entry")
        label = f"{self.name} entry {key!r}"
        try:
            _check_member(info, label)
            if info.file_size > max_bytes:
                raise FileFormatError(f"{label} declares {info.file_size} bytes; at most {max_bytes} are read")
            with self._zf.open(info) as member:
                data = member.read(max_bytes + 1)
                if len(data) != info.file_size:
                    raise FileFormatError(f"{label} is damaged: it does not hold the {info.file_size} bytes declared")
                member.read(1)  # reaches the end, where zipfile checks the CRC
        except FileFormatError:
            raise
        except _ARCHIVE_ERRORS as exc:
            raise FileFormatError(f"{label} cannot be read ({_reason(exc)})") from None
        return data

    def read(self, key: str, limits: GridLimits = FILE_LIMITS, max_ndim: int = 2) -> NDArray:
        """The array ``key``, checked like :func:`read_npy`; raises :class:`FileFormatError` when it is absent."""
        info = self._infos.get(key + ".npy")
        if info is None:
            if key in self._infos:
                raise FileFormatError(f"{self.name} entry {key!r} is not a .npy array")
            raise FileFormatError(f"{self.name} has no {key!r} entry")
        try:
            return _member(self._zf, info, self.name, limits, max_ndim)
        except FileFormatError:
            raise
        except _ARCHIVE_ERRORS as exc:
            raise FileFormatError(f"{self.name} entry {key!r} cannot be read ({_reason(exc)})") from None


@contextlib.contextmanager
def open_npz(path: str | os.PathLike[str], max_bytes: int = MAX_FILE_BYTES) -> Iterator[NpzArchive]:
    """Open an ``.npz`` for checked reading (see :class:`NpzArchive`).

    Raises
    ------
    FileFormatError
        A file that is not a zip archive or lists too many entries; and, from
        :meth:`NpzArchive.read`, an encrypted entry, an unknown compression method,
        corrupt compressed data, a bad checksum, an entry that is not ``.npy``, or any
        :func:`read_npy_header` refusal.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "a.npz"
    >>> np.savez(p, logits=np.zeros((2, 3)), labels=np.array([0, 2]))
    >>> with open_npz(p) as z:
    ...     z.names, z.read("labels")
    (['logits', 'labels'], array([0, 2]))
    """
    p = Path(path)
    with open_regular(p, max_bytes) as f:
        try:
            _zip_entry_count(f, p.name)
            zf = zipfile.ZipFile(f)
        except FileFormatError:
            raise
        except _ARCHIVE_ERRORS as exc:
            raise FileFormatError(f"{p.name} is not a valid .npz file ({_reason(exc)})") from None
        with zf:
            yield NpzArchive(f, zf, p.name)


def _reason(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    text = text.splitlines()[0]
    return text if len(text) <= 80 else text[:77] + "..."
