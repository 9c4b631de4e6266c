"""Maps with more cells than pixels: an overview where no hot cell vanishes.

A mean or a subsample of a block hides one bad cell among many good ones. Here each screen pixel
shows the *extreme* of the cells it covers: the largest error (``"max"``), or the signed value of
largest magnitude for gradients (``"magnitude"``). NaN wins every block (it fails every check).

:class:`BlockOverview` reduces the visible part of a map on the fly (vectorised: two
``argmax`` passes over contiguous blocks; fine up to 4096 x 4096). It is the one place a map asks
for its picture, through :meth:`BlockOverview.region`, so a precomputed min/max pyramid
(``explorer.core.overview``, for language-model-scale grids) can replace it behind the same call.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, Protocol

import numpy as np
from numpy.typing import NDArray

__all__ = [
    "BlockOverview",
    "OverviewRegion",
    "OverviewSource",
    "PyramidOverview",
    "Reduction",
    "block_extreme",
    "block_factors",
    "overview_of",
]

Reduction = Literal["max", "magnitude"]


def block_factors(rows: int, cols: int, height_px: float, width_px: float) -> tuple[int, int]:
    """Cells per block (down, across) so that ``rows x cols`` cells fit ``height_px x width_px`` pixels.

    Examples
    --------
    >>> block_factors(128, 1000, 300, 150)
    (1, 7)
    """
    fy = max(1, math.ceil(rows / max(height_px, 1.0)))
    fx = max(1, math.ceil(cols / max(width_px, 1.0)))
    return fy, fx


def _reduce_rows(a: NDArray, f: int, ufunc: np.ufunc) -> NDArray:
    """``ufunc`` over blocks of ``f`` rows: ``f`` passes over whole rows (contiguous), each over ``1/f`` of
    the data, so the reduction reads the array once (a partial last block included)."""
    if f == 1:
        return a
    out = a[0::f].copy()
    for k in range(1, f):
        part = a[k::f]
        ufunc(out[: part.shape[0]], part, out=out[: part.shape[0]])
    return out


def _reduce(a: NDArray, fy: int, fx: int, ufunc: np.ufunc) -> NDArray:
    """Rows first (the big pass, contiguous), then columns on the smaller result through its transpose."""
    out = _reduce_rows(a, fy, ufunc)
    if fx > 1:
        out = _reduce_rows(np.ascontiguousarray(out.T), fx, ufunc).T
    return out


def block_extreme(a: NDArray, fy: int, fx: int, how: Reduction = "max") -> NDArray:
    """Reduce ``a`` (R, C) to ``ceil(R / fy) x ceil(C / fx)`` blocks, each showing its extreme cell.

    Parameters
    ----------
    a : ndarray, shape (R, C)
    fy, fx : int
        Cells per block down and across (>= 1).
    how : {"max", "magnitude"}
        ``"max"``: the largest value (errors); ``"magnitude"``: the signed value of largest ``|value|``
        (gradients). A NaN cell makes its block NaN.

    Returns
    -------
    ndarray, shape (ceil(R / fy), ceil(C / fx)), float64
        Partial blocks at the right and bottom edges reduce the cells they hold.

    Examples
    --------
    >>> a = np.zeros((2, 6)); a[1, 4] = -5.0; a[0, 1] = 3.0
    >>> block_extreme(a, 2, 3, "magnitude").tolist()
    [[3.0, -5.0]]
    """
    a = np.asarray(a, dtype=np.float64)
    if (fy == 1 and fx == 1) or a.size == 0:
        return a
    # np.maximum and np.minimum propagate NaN, so a NaN cell makes its block NaN.
    hi = _reduce(a, fy, fx, np.maximum)
    if how == "max":
        return np.ascontiguousarray(hi)
    lo = _reduce(a, fy, fx, np.minimum)
    with np.errstate(invalid="ignore"):
        return np.ascontiguousarray(np.where(np.abs(lo) > np.abs(hi), lo, hi))


@dataclass(frozen=True)
class OverviewRegion:
    """A picture of part of a map: ``image`` covers ``rows x cols`` grid cells from ``(row0, col0)``."""

    image: NDArray
    row0: int
    col0: int
    rows: int
    cols: int
    factors: tuple[int, int]


class OverviewSource(Protocol):
    """What a map asks of an overview (on the fly here; a pyramid later)."""

    def region(self, r0: int, r1: int, c0: int, c1: int, height_px: float, width_px: float) -> OverviewRegion: ...


class BlockOverview:
    """On-the-fly overview of one array: :meth:`region` reduces the requested cells to the pixels given.

    Parameters
    ----------
    data : ndarray, shape (N, C)
    how : {"max", "magnitude"}
    """

    def __init__(self, data: NDArray, how: Reduction):
        self.data = data
        self.how: Reduction = how

    def region(self, r0: int, r1: int, c0: int, c1: int, height_px: float, width_px: float) -> OverviewRegion:
        """The cells ``[r0, r1) x [c0, c1)``, one block per pixel at most (blocks aligned to the grid).

        Blocks start at multiples of the factors, so panning does not change which cells share a pixel.
        """
        n, c = self.data.shape
        fy, fx = block_factors(r1 - r0, c1 - c0, height_px, width_px)
        r0, c0 = (r0 // fy) * fy, (c0 // fx) * fx
        r1, c1 = min(n, -(-r1 // fy) * fy), min(c, -(-c1 // fx) * fx)
        image = block_extreme(self.data[r0:r1, c0:c1], fy, fx, self.how)
        return OverviewRegion(image, r0, c0, image.shape[0] * fy, image.shape[1] * fx, (fy, fx))


class PyramidOverview:
    """The same call answered from the core's precomputed min/max pyramid
    (:class:`explorer.core.overview.Pyramid`): built once per map, so panning and zooming only cut views.

    ``"magnitude"`` maps use the pyramid's ``signed_extreme`` and ``"max"`` maps of non-negative values
    (errors) its ``abs_max``, which is then the plain maximum. The pyramid is built on first use, so a
    map that fits its pixels never builds one.
    """

    def __init__(self, data: NDArray, how: Reduction, pyramid: object | None = None,
                 transform: Callable[[NDArray], NDArray] | None = None):  # fmt: skip
        self.data = data
        self.how: Reduction = how
        self._pyramid: object | None = pyramid  # one built in the worker with the report (Recomputer.overviews)
        self._transform = transform  # a monotone map of the pixels (log10 of an error pyramid)

    def region(self, r0: int, r1: int, c0: int, c1: int, height_px: float, width_px: float) -> OverviewRegion:
        from explorer.core.overview import Pyramid

        if self._pyramid is None:
            kind = "signed_extreme" if self.how == "magnitude" else "abs_max"
            self._pyramid = Pyramid.build(np.asarray(self.data, dtype=np.float64), kind)
        out = (max(1, math.floor(height_px)), max(1, math.floor(width_px)))
        view = self._pyramid.view((r0, r1), (c0, c1), out)  # type: ignore[attr-defined]
        rows, cols = view.row_edges, view.col_edges
        fy, fx = int(rows[1] - rows[0]), int(cols[1] - cols[0])  # every block but a short last one
        image = np.asarray(view.image, dtype=np.float64)
        if self._transform is not None:
            image = self._transform(image)
        return OverviewRegion(image, int(rows[0]), int(cols[0]), image.shape[0] * fy, image.shape[1] * fx, (fy, fx))


def overview_of(data: NDArray, how: Reduction) -> OverviewSource:
    """The overview for a map: the core's pyramid where its kinds fit (gradients; errors, which are
    >= 0), the on-the-fly block reduction otherwise (log views, whose values are negative)."""
    if how == "magnitude":
        return PyramidOverview(data, how)
    with np.errstate(invalid="ignore"):
        nonnegative = data.size == 0 or not bool(np.any(data < 0))
    return PyramidOverview(data, how) if nonnegative else BlockOverview(data, how)
