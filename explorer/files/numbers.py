"""Numbers as text: parsing typed cells and pasted blocks, formatting copies. Pure Python/NumPy, no Qt."""

from __future__ import annotations

import math
import re

import numpy as np
from numpy.typing import NDArray

__all__ = ["NON_FINITE_PATTERN", "NUMBER_PATTERN", "format_block", "is_number", "parse_block", "parse_number"]

#: The C-locale number grammar every text reader uses (cells, pastes, CSV/TSV/TXT files):
#: ASCII digits, an optional sign, a dot as the decimal point, an optional exponent.
#: No digit separators (``1_000``), no other scripts' digits, no words (``nan``, ``inf``).
NUMBER_PATTERN = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
#: Words for non-finite values; recognised (so a row holding them is data, not a header) and refused.
NON_FINITE_PATTERN = re.compile(r"[+-]?(?:nan|inf|infinity)", re.IGNORECASE)
_ASCII_SPACE = " \t\r\n\f\v"

_NUMPY_NOISE = re.compile(r"array\(|\)|dtype\s*=\s*[\w.]+|[\[\]]")
_SEPARATORS = re.compile(r"[\t,;]|\s+")


def is_number(token: str) -> bool:
    """Whether ``token`` (already stripped) is a number in the C-locale grammar :data:`NUMBER_PATTERN`.

    Examples
    --------
    >>> [is_number(t) for t in ("1.5", "-2e-3", ".5", "1_000", "2.O", "nan", "\u0661")]
    [True, True, True, False, False, False, False]
    """
    return NUMBER_PATTERN.fullmatch(token) is not None


def parse_number(text: str, dtype_max: float | None = None, what: str = "value") -> float:
    """Parse one typed number in the C locale (``1.5``, ``-2e-3``), refusing anything else.

    The grammar is :data:`NUMBER_PATTERN` (ASCII only), surrounded by optional ASCII
    white space. Unlike Python's ``float()``, it refuses ``1_000``, other scripts'
    digits (``\u0661``), ``nan`` and ``infinity``.

    Parameters
    ----------
    text : str
    dtype_max : float, optional
        Largest finite magnitude the current dtype holds; larger values are refused.
    what : str
        Name used in the error message.

    Raises
    ------
    ValueError
        With a message for the status bar: empty text, letters, a decimal comma,
        NaN, infinity or overflow.

    Examples
    --------
    >>> parse_number(" -1.5e3 ")
    -1500.0
    """
    s = text.strip(_ASCII_SPACE)
    if not s:
        raise ValueError(f"empty {what}: type a number such as 1.5 or -2e-3")
    if re.fullmatch(r"[+-]?[0-9]+,[0-9]+", s):
        raise ValueError(f"{s!r} is not a number here: use a dot as the decimal separator ({s.replace(',', '.')})")
    if NON_FINITE_PATTERN.fullmatch(s):
        if s.lower().lstrip("+-") == "nan":
            raise ValueError(f"{_short(s)}: NaN is not allowed as a {what}")
        raise ValueError(f"{_short(s)} overflows: the {what} must be a finite number")
    if not is_number(s):
        raise ValueError(f"{_short(s)} is not a number: type a number such as 1.5 or -2e-3")
    v = float(s)
    if math.isinf(v):
        raise ValueError(f"{_short(s)} overflows: the {what} must be a finite number")
    if dtype_max is not None and abs(v) > dtype_max:
        raise ValueError(f"{_short(s)} overflows the current dtype (largest finite magnitude {dtype_max:g})")
    return v


def _short(s: str) -> str:
    text = repr(s)
    return text if len(text) <= 40 else text[:37] + "..."


def parse_block(text: str, max_cells: int = 4_000_000) -> NDArray:
    """Parse a pasted rectangular block: tab-, comma- or space-separated, or a printed NumPy array.

    Returns
    -------
    ndarray, shape (rows, cols), float64

    Raises
    ------
    ValueError
        For ragged rows, text that is not a number, non-finite values or an empty block.

    Examples
    --------
    >>> parse_block("1\\t2\\n3\\t4")
    array([[1., 2.],
           [3., 4.]])
    >>> parse_block("array([[ 1.5, -2. ],\\n       [ 3. ,  4. ]])")
    array([[ 1.5, -2. ],
           [ 3. ,  4. ]])
    """
    cleaned = _NUMPY_NOISE.sub(" ", text)
    rows: list[list[float]] = []
    for line_no, line in enumerate(cleaned.splitlines(), start=1):
        tokens = [t for t in _SEPARATORS.split(line.strip()) if t]
        if not tokens:
            continue
        row = []
        for tok in tokens:
            try:
                row.append(parse_number(tok))
            except ValueError as exc:
                raise ValueError(f"line {line_no}: {exc}") from None
        rows.append(row)
        if len(rows) * len(row) > max_cells:
            raise ValueError(f"the pasted block has more than {max_cells} values")
    if not rows:
        raise ValueError("the clipboard holds no numbers")
    widths = {len(r) for r in rows}
    if len(widths) != 1:
        raise ValueError(
            f"the pasted rows have different lengths ({', '.join(map(str, sorted(widths)))}): not a rectangle"
        )
    return np.array(rows, dtype=np.float64)


def format_block(block: NDArray) -> str:
    """Tab-separated text of a 2-D block with full precision (what spreadsheets paste).

    Examples
    --------
    >>> format_block(np.array([[1.0, 0.1], [2.5, -3.0]]))
    '1.0\\t0.1\\n2.5\\t-3.0'
    """
    return "\n".join("\t".join(repr(float(v)) for v in row) for row in np.atleast_2d(block))
