"""The limits every reader enforces, in one place (bytes read, values held, grid shape).

A file is refused *before* anything large is allocated: its bytes are read with a
cap, and the shape a header declares is checked against :class:`GridLimits`
before the values are read or widened to float64.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "FILE_LIMITS",
    "GRID_LIMITS",
    "MAX_CLASSES",
    "MAX_ELEMENTS",
    "MAX_FILE_BYTES",
    "MAX_NPY_HEADER_BYTES",
    "MAX_SAMPLES",
    "MAX_ZIP_MEMBERS",
    "GridLimits",
]

#: Largest number of values (N x C) any loader returns and the window edits; 2**25 float64 values are 256 MiB.
MAX_ELEMENTS = 2**25
#: Largest N (samples, rows) the window and the CLI take.
MAX_SAMPLES = 8192
#: Largest C (classes, columns): a language model's vocabulary of 262,144 tokens.
MAX_CLASSES = 262_144
#: No file (logits, labels, session, data export, user code) is read past this many bytes:
#: the largest grid as a float64 ``.npy`` (256 MiB) plus 1 MiB for headers and labels.
MAX_FILE_BYTES = MAX_ELEMENTS * 8 + 2**20
#: Largest ``.npy`` header read (NumPy's own default).
MAX_NPY_HEADER_BYTES = 10_000
#: An ``.npz`` whose central directory lists more entries than this is refused before it is parsed.
MAX_ZIP_MEMBERS = 1024


@dataclass(frozen=True)
class GridLimits:
    """Largest grid a loader returns: ``max_samples`` rows, ``max_classes`` columns, ``max_elements`` values.

    Checked against the shape a file *declares* (an ``.npy`` header, the rows of a
    text file) before its values are allocated.

    Examples
    --------
    >>> GridLimits(4096, 4096, 4096 * 4096).refusal((8192, 8192))
    '8192 x 8192 (67108864 values) is over the limit of 4096 x 4096 (16777216 values)'
    >>> GridLimits().refusal((3, 10)) is None
    True
    """

    max_samples: int = MAX_ELEMENTS
    max_classes: int = MAX_ELEMENTS
    max_elements: int = MAX_ELEMENTS

    def refusal(self, shape: tuple[int, ...]) -> str | None:
        """Why a grid of ``shape`` (N, C), or (C,) for one row, is too large; None when it fits."""
        n, c = (1, shape[0]) if len(shape) == 1 else (shape[0], shape[1]) if len(shape) == 2 else (0, 0)
        count = 1
        for d in shape:
            count *= int(d)
        if n > self.max_samples or c > self.max_classes or count > self.max_elements:
            what = " x ".join(str(int(d)) for d in shape)
            if n > self.max_samples and self.max_samples < self.max_elements:
                which = f"{n:,} rows, more than {self.max_samples:,}"
            elif c > self.max_classes and self.max_classes < self.max_elements:
                which = f"{c:,} classes, more than {self.max_classes:,}"
            else:
                which = f"{count:,} values, more than {self.max_elements:,}"
            return f"{what} ({count} values; {which}) is over the limit of {self.describe()}"
        return None

    def describe(self) -> str:
        """The limits in words, e.g. ``4096 x 4096 (16777216 values)``."""
        if self.max_samples >= self.max_elements and self.max_classes >= self.max_elements:
            return f"{self.max_elements} values"
        return f"{self.max_samples} x {self.max_classes} ({self.max_elements} values)"


#: What the loaders accept unless the caller passes tighter limits (the window passes its grid's).
FILE_LIMITS = GridLimits()

#: The largest grid the window and the CLI take: N <= 8192, C <= 262,144 and N x C <= 2**25.
GRID_LIMITS = GridLimits(MAX_SAMPLES, MAX_CLASSES, MAX_ELEMENTS)
