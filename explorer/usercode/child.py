"""Child process of :mod:`explorer.usercode.runner`: runs the user's functions and sends back their results.

Started by the runner in an isolated interpreter (``python -I``: neither the working folder nor ``PYTHON*``
variables reach it) in a session of its own, with stdin closed. It reads the request (an NPZ with the
logits, the labels and a JSON entry) from one inherited pipe, closes it, and, after the user's code ran,
writes exactly one frame to another: :data:`MAGIC`, the run's secret token, ``R`` + an NPZ of results or
``E`` + a JSON error (kind, message, details), each with its length. The result pipe is not inherited by
programs the user's code starts; the parent validates every byte of the frame, so code that writes into
it is reported, never trusted. Anything else (a crash, ``os._exit``) is reported from the exit code.
"""

from __future__ import annotations

import ast
import io
import json
import os
import sys
import traceback
from collections.abc import Callable
from typing import Any

import numpy as np

from explorer.usercode.sandbox import MAX_OUTPUT_BYTES, cap_text

MAGIC = b"GRADEXP-RESULT-1"
KIND_RESULT, KIND_ERROR, KIND_PROGRESS = b"R", b"E", b"P"
#: A progress frame's payload: calls of the loss made and planned for the numeric gradient (uint64), seconds since
#: the differencing began and since the child started (float64), little-endian.
PROGRESS_FORMAT = "<QQdd"
#: At most one progress frame per this many seconds (the parent's cap on the result pipe counts on it).
PROGRESS_EVERY_S = 0.5
LENGTH_BYTES = 8
MAX_LINE_CHARS = 2000  # one line of a message or traceback (a 2 MB exception text is cut to this)
#: Exit code when the app went away while the check ran.
EXIT_ORPHANED = 125
EXIT_NO_CHANNEL = 3  # the user's code closed or replaced the result pipe
FRAMEWORKS = ("numpy", "torch", "jax")
AUTODIFF = {"torch": "torch.autograd.grad", "jax": "jax.grad"}
EXTRAS = {"torch": "PyTorch", "jax": "JAX"}


def frame(token: str, kind: bytes, payload: bytes) -> bytes:
    """One message on the result pipe: magic, token, kind, payload length (8 bytes, little-endian), payload."""
    return MAGIC + token.encode("ascii") + kind + len(payload).to_bytes(LENGTH_BYTES, "little") + payload


class Progress:
    """Calls of the loss for the numeric gradient, made and planned, sent to the parent as :data:`KIND_PROGRESS`
    frames (at most one per :data:`PROGRESS_EVERY_S`) so that a run stopped at its time limit can say how far it
    got and how long the whole would take. Without a pipe (tests, benchmarks) it only counts."""

    def __init__(self, fd: int = -1, token: str = ""):
        import time

        self.clock = time.monotonic
        self.fd, self.token = fd, token
        self.done = self.planned = 0
        self.started = self.clock()
        self.began: float | None = None
        self.next_send = 0.0

    def plan(self, planned: int) -> None:
        """The calls planned in all (made ones included); the differencing begins at the first plan."""
        if self.began is None:
            self.began = self.clock()
        self.planned = max(planned, self.done)
        self.send(force=True)

    def tick(self) -> None:
        self.done += 1
        if self.fd >= 0 and self.clock() >= self.next_send:
            self.send()

    def send(self, force: bool = False) -> None:
        if self.fd < 0 or self.began is None:
            return
        now = self.clock()
        if now < self.next_send and not force:
            return
        self.next_send = now + PROGRESS_EVERY_S
        import struct

        payload = struct.pack(PROGRESS_FORMAT, self.done, self.planned, now - self.began, now - self.started)
        try:
            os.write(self.fd, frame(self.token, KIND_PROGRESS, payload))
        except OSError:  # the user's code closed the pipe: the result will say so
            self.fd = -1


def shorten(text: str, limit: int = MAX_LINE_CHARS) -> str:
    """``text`` cut to its first ``limit`` characters, saying how many were cut."""
    return text if len(text) <= limit else f"{text[:limit]} [... {len(text) - limit} characters cut]"


class _Failure(Exception):
    def __init__(self, kind: str, message: str, details: str = ""):
        super().__init__(message)
        self.kind, self.message, self.details = kind, message, details


def _user_traceback(filename: str) -> str:
    """The traceback from the user's own frames on (the runner's frames are noise to them), every line and the
    whole text capped."""
    lines = traceback.format_exc().splitlines(keepends=True)
    start = next((k for k, ln in enumerate(lines) if filename in ln), 1)
    text = "Traceback (most recent call last):\n" + "".join(shorten(ln) for ln in lines[start:])
    return cap_text(text, MAX_OUTPUT_BYTES)


def _raised(who: str, exc: BaseException, where: str = "") -> str:
    return f"{who} raised {type(exc).__name__}{where}: {shorten(str(exc))}"


def _scalar(value: object, name: str, rows: int | None = None) -> complex:
    """The loss the user's function returned, as one number: the value itself, or the sum of one value per row.

    With ``rows`` (N), any other shape (an N x C matrix of element losses, say) is refused in one sentence rather
    than summed: summing would difference a loss the user did not mean.
    """
    if type(value).__module__.partition(".")[0] == "torch" and getattr(value, "ndim", None) == 0:
        import torch

        if isinstance(value, torch.Tensor):  # a 0-d tensor: its one number, exactly (no NumPy round trip)
            return complex(value.item())
    arr = _as_numpy(value)
    if arr.dtype.kind not in "biufc":
        raise _Failure("dtype", f"{name} returned {type(value).__name__} values of dtype {arr.dtype}, not numbers")
    if rows is not None and arr.size != 1 and arr.shape not in ((rows,), (rows, 1)):
        raise _Failure("shape", f"{name} returned an array of shape {_shape_text(arr.shape)}; a loss must return "
                                f"one number, or one number per row (shape ({rows},) or ({rows}, 1)), which "
                                "is summed")  # fmt: skip
    return complex(arr.sum())  # a per-row vector of losses is summed, as in the origin question


def _shape_text(shape: tuple[int, ...]) -> str:
    """A shape as Python writes a tuple: ``(64, 512)``, ``(3,)``, ``()``."""
    return str(tuple(int(n) for n in shape))


def defined_functions(source: str) -> list[str]:
    """Names of the functions ``source`` defines at its top level (empty if it does not parse).

    Examples
    --------
    >>> defined_functions("def a(x): pass\\nclass B: pass\\nc = lambda: 0\\nasync def d(): pass")
    ['a', 'd']
    """
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return []
    return [n.name for n in tree.body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)]


def imported_frameworks(source: str) -> list[str]:
    """The frameworks (``torch``, ``jax``) that ``source`` imports anywhere, in :data:`FRAMEWORKS` order.

    Examples
    --------
    >>> imported_frameworks("import torch.nn.functional as F\\nfrom jax import numpy as jnp")
    ['torch', 'jax']
    >>> imported_frameworks("import numpy as np")
    []
    """
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return []
    roots: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots.update(a.name.partition(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            roots.add(node.module.partition(".")[0])
    return [f for f in FRAMEWORKS[1:] if f in roots]


def _is_bfloat16(dtype: object) -> bool:
    return str(dtype) == "bfloat16"


def _as_numpy(value: object) -> np.ndarray:
    """A NumPy array of the value a user function returned: a NumPy array, a number, a torch tensor or a JAX array
    (moved to the CPU, detached); bfloat16 values become float32 (exactly)."""
    module = type(value).__module__.partition(".")[0]
    if module == "torch":
        import torch

        if isinstance(value, torch.Tensor):
            t = value.detach().cpu().resolve_conj().resolve_neg()
            if t.dtype == torch.bfloat16:
                t = t.float()
            return t.numpy()
    arr = np.asarray(value)
    return arr.astype(np.float32) if _is_bfloat16(arr.dtype) else arr


class Framework:
    """Converts at the boundary between the runner (NumPy arrays in the check's dtype) and the user's code."""

    name = "numpy"

    def logits(self, x: np.ndarray) -> Any:
        """``x`` (NumPy, the check's dtype or its complex type) as the framework's array, same dtype, a fresh copy."""
        return x.copy()

    def labels(self, y: np.ndarray) -> Any:
        return y.copy()

    def share(self, x: np.ndarray) -> Any:
        """``x`` as the framework's array on the same memory (no copy), or None when the framework must copy.
        The element path hands its one reused buffer to the user's code this way (see :func:`element_gradient`)."""
        return x.view()

    def evaluator(self, loss_fn: Callable, y: Any) -> Callable[[Any], Any]:
        """The loss as a function of the logits alone, for the many evaluations of the finite differences."""
        return lambda v: loss_fn(v, y)

    def autodiff(self, loss_fn: Callable, x: np.ndarray, y: Any, loss_name: str) -> np.ndarray:
        raise _Failure("missing", "your code is NumPy code, which has no autodiff: give a grad function "
                                  "(or write the loss with PyTorch or JAX to check their autodiff)")  # fmt: skip


class TorchFramework(Framework):
    name = "torch"

    def __init__(self) -> None:
        import torch

        # The finite differences make thousands of small calls; an intra-op thread pool only adds contention
        # (measured on 2 busy cores at 8 x 32: 5.1 ms per call with 2 threads, 0.31 ms with 1).
        torch.set_num_threads(1)
        self.torch = torch

    def logits(self, x: np.ndarray) -> Any:
        if _is_bfloat16(x.dtype):
            return self.torch.from_numpy(x.astype(np.float32)).to(self.torch.bfloat16)
        return self.torch.from_numpy(x.copy())

    def labels(self, y: np.ndarray) -> Any:
        return self.torch.from_numpy(y.astype(np.int64))

    def share(self, x: np.ndarray) -> Any:
        if x.dtype.kind == "V" and _is_bfloat16(x.dtype):  # the same 16 bits: ml_dtypes' bfloat16 is torch's
            return self.torch.from_numpy(x.view(np.uint16)).view(self.torch.bfloat16)
        return self.torch.from_numpy(x)

    def autodiff(self, loss_fn: Callable, x: np.ndarray, y: Any, loss_name: str) -> np.ndarray:
        torch = self.torch
        xt = self.logits(x).requires_grad_(True)
        out = loss_fn(xt, y)
        if not isinstance(out, torch.Tensor) or not out.requires_grad:
            raise _Failure("exception", f"{loss_name} returned a value that autograd cannot differentiate with "
                                        "respect to the logits (a NumPy value, .detach() or .item() on the way?); "
                                        "give a grad function or keep the loss a tensor")  # fmt: skip
        total = out.sum() if out.ndim else out
        (grad,) = torch.autograd.grad(total, xt, allow_unused=True)
        if grad is None:
            return np.zeros(x.shape)
        return _as_numpy(grad)


class JaxFramework(Framework):
    name = "jax"

    def __init__(self) -> None:
        import jax

        jax.config.update("jax_enable_x64", True)  # float64 logits stay float64 (JAX's default is float32)
        jax.config.update("jax_platforms", "cpu")
        import jax.numpy as jnp

        self.jax, self.jnp = jax, jnp

    def logits(self, x: np.ndarray) -> Any:
        return self.jnp.array(x, dtype=x.dtype)

    def share(self, x: np.ndarray) -> Any:
        return None  # JAX arrays are immutable and may be read after the call returns: always a copy

    def labels(self, y: np.ndarray) -> Any:
        return self.jnp.asarray(y.astype(np.int64))

    def evaluator(self, loss_fn: Callable, y: Any) -> Callable[[Any], Any]:
        """``jax.jit`` of the loss (eager JAX costs milliseconds per call); eager if it cannot be traced
        (Python control flow on values, printing arrays)."""
        compiled = self.jax.jit(lambda v: loss_fn(v, y))
        eager: list[bool] = []

        def evaluate(v: Any) -> Any:
            if not eager:
                try:
                    return compiled(v)
                except Exception:  # not traceable: evaluate eagerly from now on (errors then are the user's own)
                    eager.append(True)
            return loss_fn(v, y)

        return evaluate

    def autodiff(self, loss_fn: Callable, x: np.ndarray, y: Any, loss_name: str) -> np.ndarray:
        jnp = self.jnp
        grad = self.jax.grad(lambda v: jnp.sum(loss_fn(v, y)))(self.logits(x))
        return _as_numpy(grad)


def _framework(source: str, namespace: dict) -> Framework:
    """The framework the user's code works in: what it imports (directly or through its helpers), else NumPy."""
    used = set(imported_frameworks(source)) | {f for f in FRAMEWORKS[1:] if f in sys.modules}
    if len(used) > 1:
        raise _Failure("framework", "your code uses both PyTorch and JAX; check one framework at a time")
    if "torch" in used:
        return TorchFramework()
    if "jax" in used:
        return JaxFramework()
    return Framework()


def _not_installed(exc: ModuleNotFoundError) -> _Failure | None:
    root = (exc.name or "").partition(".")[0]
    if root not in EXTRAS:
        return None
    hint = f'pip install "gradient-explorer[{root}]"'
    return _Failure("framework", f"your code imports {root}, but {EXTRAS[root]} is not installed for "
                                 f"{sys.executable}: install it with {hint}")  # fmt: skip


def _cell_sweep(loss_of, logits: np.ndarray, cell: tuple, steps: np.ndarray, target: float) -> dict:  # type: ignore[no-untyped-def]
    """|quotient - the user's gradient| at one cell, for every scheme and step (the user's loss as a black box).

    Each quotient is :func:`explorer.core.numeric_grad` of the loss as a function of that one element, the
    same arithmetic as the numeric map's entry: at the check's own eps and scheme it is the map's value.
    """
    from explorer.core import SCHEMES, numeric_grad

    def along_cell(v: np.ndarray) -> complex:
        xp = logits.astype(v.dtype)
        xp[cell] = v[0]
        return loss_of(xp)

    point = np.array([logits[cell]])
    errors = {}
    with np.errstate(all="ignore"):
        for name in SCHEMES:
            out = np.full(steps.shape, np.nan)
            try:
                for k, h in enumerate(steps):
                    out[k] = abs(float(numeric_grad(along_cell, point, float(h), name)[0]) - target)
            except Exception:  # a scheme the loss cannot take (complex logits in PyTorch): no curve
                out[:] = np.nan
            errors[f"sweep_{name}"] = out
    return errors


SAMPLED_COLUMNS = 6  # columns the separability check perturbs (first, last, the extremes' columns, random ones)
SAMPLED_ROWS = 4  # rows of each sampled column perturbed alone, exactly as the element path perturbs them
SUM_BLOCK = 1 << 20  # elements of the (rows x N) copies of the loss vector the per-row sums are formed in
SAMPLE_SEED = 16  # fixed: the same logits are always checked at the same places


def _same(a: np.ndarray, b: np.ndarray) -> bool:
    """Bit for bit: the same dtype, shape and bytes (a NaN equals the same NaN, 0.0 is not -0.0)."""
    return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


def _sample(special: list[int], k: int, size: int, rng: np.random.Generator) -> list[int]:
    """At most ``k`` distinct indices below ``size``: the ``special`` ones first, then random ones."""
    picks = list(dict.fromkeys(special))[:k]
    for i in rng.permutation(size).tolist():
        if len(picks) >= min(k, size):
            break
        if i not in picks:
            picks.append(int(i))
    return picks


class ColumnDifferences:
    """The finite differences of a per-row loss, all rows of one column at a time: C calls per stencil point
    instead of N C, with the very quotients :func:`explorer.core.numeric_grad` forms element by element.

    ``rows_of(v)`` is the user's loss at logits ``v`` as a NumPy array. The element path sums what the loss
    returns after each one-element perturbation; when the loss is row-separable (row i's value depends only
    on row i of the logits, bit for bit), the vector it returns after perturbing element (i, j) is the
    unperturbed vector with entry i taken from the call that perturbed all of column j. This class forms
    that vector's sum (NumPy's own sum of the same values, so the same bits), and the stencil, the division
    and the rounding to the dtype exactly as ``numeric_grad`` does.

    Separability is checked before it is relied on, bit for bit, never assumed: for a few columns (the first,
    the last, those of the largest and smallest logit, random ones), (a) rows perturbed alone, as the element
    path perturbs them, must give exactly the assumed vector and sum, and (b) a random half of the column
    perturbed at once must give the batched values on those rows and the unperturbed ones elsewhere. Any
    difference, a value that is not one per row, or an exception, and :meth:`gradient` returns None with a
    reason, and the caller differences element by element. A loss that couples rows only at elements the
    check does not sample could pass it; its quotients would then differ from the element path's.
    """

    def __init__(self, rows_of: Callable[[np.ndarray], np.ndarray], x: np.ndarray, eps: float, scheme: str):
        from explorer.core import check_eps, get_scheme
        from explorer.core._dtypes import complex_dtype, work_dtype

        self.rows_of, self.sch, self.h = rows_of, get_scheme(scheme), check_eps(eps)
        self.storage = x.dtype
        self.work = work_dtype(self.storage)
        self.base = x.astype(complex_dtype(self.storage) if self.sch.is_complex else self.storage)
        self.n, self.c = x.shape
        # The steps added, as numeric_grad adds them: o * h (a Python float) in the working dtype, or 1j * h.
        self.steps: list[float | complex] = [1j * self.h] if self.sch.is_complex else [
            o * self.h for o, _ in self.sch.stencil if o != 0.0]  # fmt: skip
        rng = np.random.default_rng(SAMPLE_SEED)
        xf = np.asarray(x, dtype=np.float64)
        top, bottom = (int(np.unravel_index(f(xf), xf.shape)[1]) for f in (np.argmax, np.argmin))
        columns = _sample([0, self.c - 1, top, bottom], SAMPLED_COLUMNS, self.c, rng)
        self.plan = {j: _sample([0, self.n - 1, int(np.argmax(xf[:, j])), int(np.argmin(xf[:, j]))], SAMPLED_ROWS,
                                self.n, rng) for j in columns}  # fmt: skip
        self.masks = {j: self._half(rng) for j in self.plan}
        self.calls = 0

    def _half(self, rng: np.random.Generator) -> np.ndarray:
        mask: np.ndarray = np.asarray(rng.random(self.n) < 0.5)
        if mask.all() or not mask.any():
            mask[0] = not mask[0]
        return mask

    @property
    def planned_calls(self) -> int:
        """Calls of the loss this path makes: the unperturbed one, the columns, and the check's."""
        points = len(self.steps)
        return 1 + points * (self.c + sum(len(rows) + 1 for rows in self.plan.values()))

    def _call(self, v: np.ndarray) -> np.ndarray:
        self.calls += 1
        return self.rows_of(v)

    def _column(self, j: int, step: float | complex) -> np.ndarray:
        """Column j after the step, every row, with the arithmetic of ``numeric_grad``'s one element: the
        element's dtype after ``element + step`` (a NumPy scalar and a Python number: under NumPy 1 a wider one),
        then the storage dtype."""
        col = self.base[:, j] if self.sch.is_complex else self.base[:, j].astype(self.work)
        dt = (col[:1][0] + step).dtype
        return (col.astype(dt) + np.asarray(step, dtype=dt)).astype(self.base.dtype)

    def _one_element(self, i: int, j: int, step: float | complex) -> np.ndarray:
        """The logits the element path differences at (i, j): ``numeric_grad``'s own expression."""
        xp = self.base.copy()
        if self.sch.is_complex:
            xp[i, j] = self.base[i, j] + step
        else:
            xp[i, j] = (self.base[i, j].astype(self.work) + step).astype(self.storage)
        return xp

    def _element_values(self, v0: np.ndarray, column: np.ndarray) -> np.ndarray:
        """For each row i, the element path's value: the sum of ``v0`` with entry i from ``column``."""
        out = np.empty(self.n, dtype=np.complex128)
        block = max(1, SUM_BLOCK // self.n)
        for r0 in range(0, self.n, block):
            r1 = min(self.n, r0 + block)
            m = np.repeat(v0[None, :], r1 - r0, axis=0)
            m[np.arange(r1 - r0), np.arange(r0, r1)] = column[r0:r1]
            out[r0:r1] = m.sum(axis=1)
        return out

    def gradient(self) -> tuple[np.ndarray | None, str]:
        """``(numeric gradient, "per_row")``, or ``(None, reason)``: "small" (no calls saved), "scalar" (one
        value), "shape" (not one value per row), "raised", "coupled" (the check found a difference)."""
        if self.planned_calls >= self.n * self.c * len(self.steps):
            return None, "small"
        try:
            return self._gradient()
        except Exception:  # the element path calls the loss again and reports the failure as before
            return None, "raised"

    def _gradient(self) -> tuple[np.ndarray | None, str]:
        n = self.n
        v0 = self._call(self.base.copy())
        if v0.ndim == 0 or v0.size == 1:
            return None, "scalar"
        if v0.shape != (n,) or v0.dtype.kind not in "biufc":
            return None, "shape"
        f0 = complex(v0.sum())  # numeric_grad's f(x) for the schemes that use it
        batched: dict[int, list[np.ndarray]] = {}
        for j, rows in self.plan.items():  # the check, before anything relies on it
            batched[j] = []
            for step in self.steps:
                new = self._column(j, step)
                xp = self.base.copy()
                xp[:, j] = new
                column = self._call(xp)
                if column.shape != v0.shape or column.dtype != v0.dtype:
                    return None, "shape"
                values = self._element_values(v0, column)
                for i in rows:
                    xp = self._one_element(i, j, step)
                    if xp[i, j].tobytes() != new[i].tobytes():
                        return None, "coupled"
                    alone = self._call(xp)
                    expected = v0.copy()
                    expected[i] = column[i]
                    if not _same(alone, expected) or not _same(np.array([complex(alone.sum())]), values[i : i + 1]):
                        return None, "coupled"
                mask = self.masks[j]
                xp = self.base.copy()
                xp[mask, j] = new[mask]
                if not _same(self._call(xp), np.where(mask, column, v0)):
                    return None, "coupled"
                batched[j].append(column)
        out = np.empty((n, self.c), dtype=self.storage)
        for j in range(self.c):
            columns = batched.get(j)
            if columns is None:
                columns = []
                for step in self.steps:
                    xp = self.base.copy()
                    xp[:, j] = self._column(j, step)
                    column = self._call(xp)
                    if column.shape != v0.shape or column.dtype != v0.dtype:
                        return None, "shape"
                    columns.append(column)
            q = self._quotients(v0, f0, columns)
            for i, value in enumerate(q.tolist()):  # Python floats into the storage dtype, as numeric_grad does
                out[i, j] = value
        return out, "per_row"

    def _quotients(self, v0: np.ndarray, f0: complex, columns: list[np.ndarray]) -> np.ndarray:
        """``numeric_grad``'s quotient for every row of one column (float64, IEEE-identical to its Python floats)."""
        if self.sch.is_complex:
            return self._element_values(v0, columns[0]).imag / self.h
        total = np.zeros(self.n)
        k = 0
        for o, wgt in self.sch.stencil:
            if o == 0.0:
                total = total + wgt * f0.real
            else:
                total = total + wgt * self._element_values(v0, columns[k]).real
                k += 1
        return total / (self.sch.divisor * self.h)


def element_gradient(
    value_of: Callable[[np.ndarray], complex],
    x: np.ndarray,
    eps: float,
    scheme: str,
    shared: bool = False,
    counted: Callable[[], None] | None = None,
) -> np.ndarray:
    """:func:`explorer.core.numeric_grad` of a scalar loss, element by element, with the same calls in the same
    order, the same perturbed inputs and the same arithmetic (so the same bits), without its per-call costs.

    ``numeric_grad`` copies the whole array for every call (and the framework copied it again). Here the
    perturbed values of every element are formed at once, with the arithmetic of ``numeric_grad``'s one element
    (its dtype after ``element + step``, then the storage dtype), and written one at a time into one buffer that
    is restored after each call.

    Parameters
    ----------
    value_of : callable
        The loss at logits ``v`` as a Python complex, formed completely before it returns (nothing the loss
        returned may still read ``v`` afterwards).
    x : ndarray
        The point, in the check's dtype.
    eps, scheme
        As for ``numeric_grad``.
    shared : bool
        ``value_of`` hands the buffer itself to the user's code (a view, or a tensor on the same memory)
        instead of a copy. Then after every call the buffer is checked: if the code kept a reference to its
        input (it could read it later) the buffer is left to it and a fresh one used; if it changed its input in
        place (bit for bit against the point) the buffer is restored. Either way the next call sees exactly
        what ``numeric_grad`` would give it.
    counted : callable, optional
        Called after each call of ``value_of``.
    """
    from explorer.core import check_eps, get_scheme
    from explorer.core._dtypes import complex_dtype, work_dtype

    sch, h = get_scheme(scheme), check_eps(eps)
    storage = x.dtype
    work = work_dtype(storage)
    base = x.astype(complex_dtype(storage) if sch.is_complex else storage)
    out = np.empty(x.shape, dtype=storage)
    if not base.size:
        return out
    flat_base, flat_out = base.reshape(-1), out.reshape(-1)
    # Each stencil point's perturbed value of every element: numeric_grad's expression, vectorised.
    points: list[tuple[float, np.ndarray | None]] = []
    for o, wgt in [(1.0, 1)] if sch.is_complex else sch.stencil:
        if o == 0.0:
            points.append((wgt, None))
            continue
        step: float | complex = 1j * h if sch.is_complex else o * h
        start = base if sch.is_complex else base.astype(work)
        dt = (start.reshape(-1)[0] + step).dtype
        points.append((wgt, (start.astype(dt) + np.asarray(step, dtype=dt)).astype(base.dtype).reshape(-1)))
    bits = _bits_view(base)
    equal = np.empty(bits.shape, dtype=bool)  # scratch for the check that the code left its input alone
    buffer = base.copy()
    flat = buffer.reshape(-1)

    def call(k: int = -1, value: object = None) -> complex:
        """The loss with element ``k`` (none if -1) set to ``value``; the buffer equals the point afterwards."""
        nonlocal buffer, flat
        if k >= 0:
            flat[k] = value
        before = sys.getrefcount(buffer)
        result = value_of(buffer)
        if counted is not None:
            counted()
        if shared and sys.getrefcount(buffer) != before:  # the code kept its input: leave that buffer to it
            buffer = base.copy()
            flat = buffer.reshape(-1)
            return result
        if k >= 0:
            flat[k] = flat_base[k]
        if shared and not np.equal(_bits_view(buffer), bits, out=equal).all():  # it changed its input in place
            np.copyto(buffer, base)
        return result

    f0 = call() if any(values is None for _, values in points) else 0j
    for k in range(flat_base.size):
        if sch.is_complex:
            flat_out[k] = call(k, points[0][1][k]).imag / h  # type: ignore[index]
            continue
        total = 0.0
        for wgt, values in points:
            fv = f0 if values is None else call(k, values[k])
            total += wgt * fv.real
        flat_out[k] = total / (sch.divisor * h)
    return out


def _bits_view(a: np.ndarray) -> np.ndarray:
    """``a``'s bytes as unsigned integers of its item size (equal views: the same bits, NaNs and signed zeros
    included)."""
    unit = {1: np.uint8, 2: np.uint16, 4: np.uint32, 8: np.uint64}.get(a.dtype.itemsize)
    return a.view(unit) if unit is not None else a.view(np.uint8)


class _Differences:
    """The numeric gradient at one or more steps: by columns while the loss is per row (checked each time),
    else element by element (:func:`element_gradient`, the bits of :func:`explorer.core.numeric_grad`);
    records the path, why, and the calls, and reports the calls made and planned to ``progress``."""

    def __init__(self, loss_of: Callable[[np.ndarray], complex], rows_of: Callable[[np.ndarray], np.ndarray],
                 x: np.ndarray, scheme: str, columns: bool, shared: bool = False, steps: int = 1,
                 progress: Progress | None = None):  # fmt: skip
        self.x, self.scheme, self.shared, self.steps = x, scheme, shared, steps
        self.reason = "per_row" if columns else "off"
        self.paths: list[str] = []
        self.calls = 0
        self.progress = progress or Progress()
        self.loss_of, self._rows_of = loss_of, rows_of

    def _count(self) -> None:
        self.calls += 1
        self.progress.tick()

    def rows_of(self, v: np.ndarray) -> np.ndarray:
        self.progress.tick()
        return self._rows_of(v)

    def element_calls(self) -> int:
        """Calls of the loss :func:`element_gradient` makes at one step."""
        from explorer.core import get_scheme

        sch = get_scheme(self.scheme)
        if sch.is_complex:
            return int(self.x.size)
        points = sum(1 for o in sch.offsets if o != 0.0)
        return int(self.x.size) * points + (1 if 0.0 in sch.offsets else 0)

    def gradient(self, eps: float) -> np.ndarray:
        left = max(1, self.steps - len(self.paths))  # this step and the ones after it
        if self.reason == "per_row":  # never tried, or per row at the steps so far
            by_columns = ColumnDifferences(self.rows_of, self.x, eps, self.scheme)
            self.progress.plan(self.progress.done + left * by_columns.planned_calls)
            numeric, self.reason = by_columns.gradient()
            self.calls += by_columns.calls
            if numeric is not None:
                self.paths.append("columns")
                return numeric
        self.progress.plan(self.progress.done + left * self.element_calls())
        self.paths.append("elements")
        return element_gradient(self.loss_of, self.x, eps, self.scheme, self.shared, self._count)

    @property
    def path(self) -> str:
        """The path: "columns", "elements", or "mixed" (by columns at a first step, not at a later one)."""
        kinds = set(self.paths)
        return kinds.pop() if len(kinds) == 1 else "mixed"


def _check(request: dict, logits: np.ndarray, labels: np.ndarray, progress: Progress | None = None) -> bytes:
    """Run the user's functions; the results as NPZ bytes, or :class:`_Failure`.

    The logits reach the user's code in the check's dtype (``request["dtype"]``, bfloat16 included) as the
    framework's own array type; what it returns is converted back to NumPy here. Without a ``grad`` name the
    gradient is the framework's autodiff of ``loss`` (what a custom backward or ``custom_vjp`` feeds).
    """
    from explorer.core import resolve_dtype

    filename, loss_name, grad_name = request["filename"], request["loss"], request["grad"]
    x = logits.astype(resolve_dtype(request.get("dtype", "float64")))
    namespace: dict = {"__name__": "user_code", "__file__": filename, "classes": int(logits.shape[1])}
    try:
        exec(compile(request["source"], filename, "exec"), namespace)  # the user's own code, by design
    except ModuleNotFoundError as exc:
        failure = _not_installed(exc)
        if failure is not None:
            raise failure from None
        raise _Failure("exception", _raised("your code", exc, " while loading"), _user_traceback(filename)) from None
    except Exception as exc:
        raise _Failure("exception", _raised("your code", exc, " while loading"),
                       _user_traceback(filename)) from None  # fmt: skip
    try:
        fw = _framework(request["source"], namespace)
    except ModuleNotFoundError as exc:  # a helper module imported a framework that is not there
        raise (_not_installed(exc) or _Failure("exception", _raised("your code", exc))) from None
    found = defined_functions(request["source"])
    names = [("loss", loss_name)] + ([("grad", grad_name)] if grad_name else [])
    functions = []
    for _, name in names:
        fn = namespace.get(name)
        if not callable(fn):
            listing = f"; it defines {', '.join(found)}" if found else "; it defines no functions"
            raise _Failure("missing", f"your code defines no function named {name!r}{listing}")
        functions.append(fn)
    loss_fn = functions[0]
    grad_fn = functions[1] if grad_name else None
    attempts = [("(N,)", labels), ("(N, 1)", labels[:, None])]
    chosen, last, refused = None, None, None
    for shape, y_np in attempts:
        try:
            base = _scalar(loss_fn(fw.logits(x), fw.labels(y_np)), loss_name, int(x.shape[0]))
            chosen = (shape, y_np)
            break
        except _Failure as failure:
            if failure.kind != "shape":
                raise
            refused = refused or failure  # code written for (N, 1) labels may broadcast (N,) ones to a matrix
        except Exception as exc:
            last = (exc, _user_traceback(filename))
    if chosen is None:
        if refused is not None:
            raise refused
        assert last is not None
        raise _Failure("exception", _raised(loss_name, last[0]), last[1])
    shape, y_np = chosen
    y = fw.labels(y_np)
    who = grad_name or f"{AUTODIFF.get(fw.name, 'autodiff')} of {loss_name}"
    try:
        if grad_fn is not None:
            grad = _as_numpy(grad_fn(fw.logits(x), y))
        else:
            grad = fw.autodiff(loss_fn, x, y, loss_name)
    except _Failure:
        raise
    except Exception as exc:
        raise _Failure("exception", _raised(who, exc), _user_traceback(filename)) from None
    if grad.dtype.kind not in "biuf":
        raise _Failure("dtype", f"{who} returned values of dtype {grad.dtype}, not real numbers")
    if grad.shape != logits.shape:
        raise _Failure("shape", f"{who} returned an array of shape {grad.shape}; "
                                f"the logits have shape {logits.shape}")  # fmt: skip

    quiet = _quiet(fw)
    evaluate = fw.evaluator(loss_fn, y)

    n_rows = int(x.shape[0])

    def loss_of(v: np.ndarray) -> complex:
        with quiet():
            return _scalar(evaluate(fw.logits(v)), loss_name, n_rows)

    def rows_of(v: np.ndarray) -> np.ndarray:
        with quiet():
            return _as_numpy(evaluate(fw.logits(v)))

    shared = fw.share(x[:1]) is not None

    def loss_of_shared(v: np.ndarray) -> complex:
        """The loss at ``v`` itself (no copy), its value formed before returning (see element_gradient)."""
        with quiet():
            return _scalar(evaluate(fw.share(v)), loss_name, n_rows)

    eps = request["eps"]
    extra: dict[str, Any] = {}
    differences = _Differences(loss_of_shared if shared else loss_of, rows_of, x, request["scheme"],
                               bool(request.get("columns", True)), shared, 2 if request.get("noise") else 1,
                               progress)  # fmt: skip
    try:
        with np.errstate(all="ignore"):
            numeric = differences.gradient(eps)
            if request.get("noise"):  # the same at 2 eps: Richardson's estimate of the truncation error
                extra["numeric_2h"] = differences.gradient(2.0 * eps).astype(np.float64)
            shifted = (x.astype(np.float64) + eps).astype(x.dtype)
            pitfall = (loss_of(shifted) - base).real / eps
    except _Failure:
        raise
    except Exception as exc:
        hint = ""
        if request["scheme"] == "complex" and "omplex" in str(exc):
            hint = " (the complex step needs a loss that accepts complex logits; choose another scheme)"
        raise _Failure("exception", _raised(loss_name, exc, " on perturbed logits") + hint,
                       _user_traceback(filename)) from None  # fmt: skip
    if request.get("sweep_cell") is not None:
        extra.update(_cell_sweep(loss_of, x, tuple(request["sweep_cell"]), np.asarray(request["sweep_eps"]),
                                 float(np.asarray(grad, dtype=np.float64)[tuple(request["sweep_cell"])])))  # fmt: skip
    out = io.BytesIO()
    np.savez(out, grad=grad.astype(np.float64), numeric=numeric.astype(np.float64),
             loss=np.float64(base.real), pitfall=np.float64(pitfall), labels_shape=np.array(shape),
             framework=np.array(fw.name), numeric_path=np.array(differences.path),
             numeric_reason=np.array(differences.reason), loss_calls=np.float64(differences.calls),
             **extra)  # fmt: skip
    return out.getvalue()


def _quiet(fw: Framework) -> Callable[[], Any]:
    """A context for the many loss evaluations of the finite differences: no autograd graph under PyTorch."""
    if fw.name == "torch":
        import torch

        return torch.no_grad
    import contextlib

    return contextlib.nullcontext


def _read_request(fd: int) -> tuple[dict, np.ndarray, np.ndarray]:
    with os.fdopen(fd, "rb") as f:  # closed before the user's code runs
        raw = f.read()
    with np.load(io.BytesIO(raw), allow_pickle=False) as z:
        request = json.loads(z["request"].tobytes().decode("utf-8"))
        return request, z["logits"], z["labels"]


#: How often the child checks that the app (its parent) is still there.
ORPHAN_POLL_S = 0.25


def _stop_when_orphaned(parent: int) -> None:
    """If the app dies (killed, Ctrl-C, a CI job cancelled), stop this process group at once: the time limit is
    the parent's to enforce, so an orphaned child would otherwise run on. A daemon thread, started before the
    user's code runs."""
    import signal
    import threading
    import time

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(ORPHAN_POLL_S)
        try:
            os.killpg(0, signal.SIGKILL)
        finally:
            os._exit(EXIT_ORPHANED)

    threading.Thread(target=watch, name="orphan-watch", daemon=True).start()


def main(argv: list[str]) -> int:
    """``argv``: the request pipe's and the result pipe's file descriptors."""
    _stop_when_orphaned(os.getppid())
    request_fd, result_fd = int(argv[0]), int(argv[1])
    os.set_inheritable(result_fd, False)  # programs the user's code starts do not get the result pipe
    request, logits, labels = _read_request(request_fd)
    token = request.pop("token")
    if request.get("folder"):  # the user's file's folder, so their helper modules import (never the cwd)
        sys.path.insert(0, request["folder"])
    sys.argv = [request["filename"]]
    try:
        kind, payload = KIND_RESULT, _check(request, logits, labels, Progress(result_fd, token))
    except _Failure as failure:
        details = cap_text(failure.details, MAX_OUTPUT_BYTES)
        text = {"kind": failure.kind, "message": shorten(failure.message), "details": details}
        kind, payload = KIND_ERROR, json.dumps(text).encode("utf-8")
    try:
        with os.fdopen(result_fd, "wb") as f:
            f.write(frame(token, kind, payload))
    except OSError as exc:
        print(f"gradient-explorer: cannot send the results (your code closed or replaced the result pipe): {exc}",
              file=sys.stderr)  # fmt: skip
        return EXIT_NO_CHANNEL
    return 0
