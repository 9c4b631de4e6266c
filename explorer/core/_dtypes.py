"""Dtype rules shared by the core: storage dtype versus working precision."""

from __future__ import annotations

import contextlib
import functools

import numpy as np
from numpy.typing import ArrayLike, NDArray

#: Names of the dtypes the app offers, in the order it offers them. Every one follows PyTorch's CPU
#: semantics: the logits are rounded to the dtype; float16 and bfloat16 compute in float32 and round
#: each result (loss, gradient, perturbed value) back; float32 and float64 compute in themselves.
#: bfloat16 comes from the ml_dtypes package.
DTYPE_NAMES: tuple[str, ...] = ("float16", "bfloat16", "float32", "float64")

#: One sentence per dtype on what the check computes in it.
DTYPE_SEMANTICS: dict[str, str] = {
    "float16": "IEEE half precision (11-bit significand, max 65504): logits rounded to float16, arithmetic in "
    "float32, every result rounded back to float16, as PyTorch on the CPU",
    "bfloat16": "bfloat16 (8-bit significand, float32's range): logits rounded to bfloat16, arithmetic in float32, "
    "every result rounded back to bfloat16, as PyTorch on the CPU; the dtype most models train in",
    "float32": "IEEE single precision (24-bit significand): everything computed and stored in float32",
    "float64": "IEEE double precision (53-bit significand): everything computed and stored in float64",
}


def as_float_array(x: ArrayLike, name: str = "input") -> NDArray:
    """Return ``x`` as a floating (or complex) array; integers become float64.

    An integer array would silently truncate ``x + eps`` (the origin question's
    second trap), so it is never used as is.
    """
    arr = np.asarray(x)
    if arr.dtype.kind in "biu":
        return arr.astype(np.float64)
    if arr.dtype.kind in "fc" or _is_ml_float(arr.dtype):
        return arr
    raise ValueError(f"{name} must be numeric, got dtype {arr.dtype}")


def _is_ml_float(dtype: np.dtype) -> bool:
    # bfloat16 and friends from ml_dtypes report kind 'V'; recognise them by name.
    return dtype.kind == "V" and dtype.name in {"bfloat16", "float8_e4m3fn", "float8_e5m2"}


def resolve_dtype(name: str | np.dtype | type) -> np.dtype:
    """Turn a dtype name such as ``"float32"`` into a NumPy dtype.

    Raises
    ------
    ValueError
        If the dtype is not a floating dtype the core supports.
    """
    if name == "bfloat16":
        try:
            import ml_dtypes
        except ImportError:
            raise ValueError("dtype 'bfloat16' needs the ml_dtypes package") from None
        return np.dtype(ml_dtypes.bfloat16)
    try:
        dtype = np.dtype(name)
    except TypeError:
        if name == "bfloat16":
            try:
                import ml_dtypes
            except ImportError:
                raise ValueError("dtype 'bfloat16' needs the ml_dtypes package") from None
            return np.dtype(ml_dtypes.bfloat16)
        raise ValueError(f"unknown dtype {name!r}; expected one of {', '.join(DTYPE_NAMES)}") from None
    if dtype.kind != "f" and not _is_ml_float(dtype):
        raise ValueError(f"dtype must be a floating dtype, got {dtype}")
    return dtype


def dtype_max(dtype: str | np.dtype) -> float:
    """The largest finite value of a floating dtype (ml_dtypes' bfloat16 included).

    Examples
    --------
    >>> dtype_max("float16"), dtype_max("bfloat16")
    (65504.0, 3.3895313892515355e+38)
    """
    dt = resolve_dtype(dtype)
    try:
        return float(np.finfo(dt).max)
    except ValueError:
        import ml_dtypes

        return float(ml_dtypes.finfo(dt).max)


def work_dtype(dtype: np.dtype) -> np.dtype:
    """Working precision for a storage dtype.

    Half-precision (and bfloat16) values are computed in float32 and rounded back,
    as PyTorch does on the CPU; float32, float64 and complex types work in themselves.
    """
    dtype = np.dtype(dtype)
    if dtype.kind == "c" or dtype.itemsize >= 4:
        return dtype
    return np.dtype(np.float32)


def complex_dtype(dtype: np.dtype) -> np.dtype:
    """Complex dtype used for the complex step on a real storage dtype."""
    return np.dtype(np.complex128 if work_dtype(dtype) == np.float64 else np.complex64)


def unit_roundoff(dtype: np.dtype) -> float:
    """Unit roundoff ``u = eps / 2`` of a floating dtype (for example 2**-53 for float64)."""
    return _unit_roundoff(np.dtype(dtype))


@functools.cache
def _unit_roundoff(dtype: np.dtype) -> float:
    if dtype.kind == "c":
        dtype = np.dtype(np.float32 if dtype.itemsize == 8 else np.float64)
    try:
        return float(np.finfo(dtype).eps) / 2
    except ValueError:  # ml_dtypes
        import ml_dtypes

        return float(ml_dtypes.finfo(dtype).eps) / 2


def quiet_if_nonfinite(x: NDArray) -> contextlib.AbstractContextManager:
    """Silence floating-point warnings only when the input has inf or NaN (float16 overflow, a loaded NaN).

    Then the affected rows give NaN by design (inf - inf) and the report says so;
    for finite input nothing is silenced.
    """
    if np.all(np.isfinite(x)):
        return contextlib.nullcontext()
    return np.errstate(invalid="ignore", over="ignore", divide="ignore")


def round_to(values: NDArray, storage: np.dtype) -> NDArray:
    """Round working-precision values to the storage dtype and return them in working precision."""
    if values.dtype == storage:
        return values
    return values.astype(storage).astype(values.dtype)
