"""The one error every reader raises."""

from __future__ import annotations

__all__ = ["FileFormatError", "FileTooLargeError"]


class FileFormatError(ValueError):
    """A file could not be used; the message says why in one sentence."""


class FileTooLargeError(FileFormatError):
    """A file (or the grid it declares) is over a limit; ``shape`` is the declared shape when known."""

    def __init__(self, message: str, shape: tuple[int, ...] | None = None) -> None:
        super().__init__(message)
        self.shape = shape
