"""Check a user's own loss and gradient functions, safely: in a separate process with a time limit.

No Qt. The user's code runs with the user's own rights (it is their code, on their machine); a
separate process keeps an exception, an endless loop or a crash from touching the app.

The child (:mod:`explorer.usercode.child`, started by :mod:`explorer.usercode.sandbox` in an isolated
interpreter, in a session of its own, with stdin closed) loads the source with ``classes`` set to C
(so the origin question's code works as pasted), calls ``grad(logits, labels)``, and forms the
finite-difference gradient of ``loss`` element by element (a per-row vector loss is summed; when the loss
returns one value per row and is checked to be row-separable, by columns: every row of a column perturbed in one
call, the same quotients, bit for bit, with N times fewer calls). Labels
are passed with shape (N,), or (N, 1) if the code only accepts that (as the origin question's does).
At the time limit, on cancel and when the child ends, its whole process tree is stopped. Results come
back on a private pipe, framed with a per-run secret token; every field is validated, and anything
malformed is reported as the code interfering with the runner.
"""

from __future__ import annotations

import io
import json
import math
import os
import secrets
import stat
import struct
import sys
import threading
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from numpy.typing import ArrayLike, NDArray

from explorer.core import (
    SCHEMES,
    CheckSettings,
    Report,
    Sweep,
    compare,
    cross_entropy_grad,
    eps_grid,
    estimate_noise,
    noise_tolerance,
    resolve_dtype,
)
from explorer.core.sweep import SweepResult, cell_error_model, measured_best
from explorer.usercode import child as protocol
from explorer.usercode.sandbox import MAX_OUTPUT_BYTES, ProcessOutcome, cap_text, run_in_session

__all__ = [
    "DEFAULT_TIMEOUT_S",
    "MAX_SOURCE_BYTES",
    "MAX_TIMEOUT_S",
    "NUMERIC_PATHS",
    "NUMERIC_REASONS",
    "Progress",
    "UserCheck",
    "UserCode",
    "UserCodeError",
    "UserOutcome",
    "UserResult",
    "check_user_code",
    "gradient_source",
    "read_source_capped",
    "run_user_check",
    "run_user_code",
    "suggested_limit",
    "timeout_message",
    "user_report",
    "user_sweep",
]

DEFAULT_TIMEOUT_S = 10.0
MAX_TIMEOUT_S = 24 * 3600.0
MAX_SOURCE_BYTES = 4 * 1024 * 1024  # a --loss/--grad file larger than this is refused
MAX_MESSAGE_CHARS = 4000  # the one-line message of a failure, as the parent accepts it from the child
_ERROR_FRAME_BYTES = 4 * MAX_OUTPUT_BYTES + 2 * MAX_MESSAGE_CHARS + 4096  # JSON may escape each byte as \uXXXX
_ROOTS = tuple(dict.fromkeys(str(Path(f).resolve().parents[n]) for f, n in ((protocol.__file__, 2), (np.__file__, 1))))
_BOOTSTRAP = "import sys; sys.path[0:0] = sys.argv[3:]; from explorer.usercode.child import main; " + (
    "sys.exit(main(sys.argv[1:3]))"
)
KINDS = ("exception", "timeout", "crash", "missing", "shape", "dtype", "nan", "cancelled", "interfered", "bad",
         "framework")  # fmt: skip
_CHILD_KINDS = frozenset({"exception", "missing", "shape", "dtype", "framework"})  # what the child may report itself
#: How the child formed the numeric gradient, in words (``UserResult.numeric_path``).
NUMERIC_PATHS = {
    "columns": "differenced by columns (the loss is per row)",
    "elements": "differenced element by element",
    "mixed": "differenced by columns at eps, element by element at 2 eps",
}
#: Why (``UserResult.numeric_reason``): the loss was per row, or why the element path was taken.
NUMERIC_REASONS = {
    "per_row": "",
    "scalar": "the loss returns one number",
    "shape": "the loss returns neither one number nor a vector of one per row",
    "coupled": "the loss is not per row: a row's value changed with another row's logits",
    "raised": "the loss failed on a whole perturbed column",
    "small": "too small to gain from differencing by columns",
    "off": "as asked",
}


def read_source_capped(path: str | os.PathLike[str], max_bytes: int = MAX_SOURCE_BYTES) -> str:
    """The text of a regular file of at most ``max_bytes`` bytes, in UTF-8; never blocks on a FIFO or a device.

    Raises
    ------
    ValueError
        One sentence naming the file: not a regular file, too large, unreadable or not UTF-8.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        raise ValueError(f"{path}: {exc.strerror or exc}") from None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise ValueError(f"{path}: not a regular file")
        chunks, size = [], 0
        while size <= max_bytes:
            chunk = os.read(fd, min(1 << 20, max_bytes + 1 - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
    except OSError as exc:
        raise ValueError(f"{path}: {exc.strerror or exc}") from None
    finally:
        os.close(fd)
    if size > max_bytes:
        raise ValueError(f"{path}: larger than {max_bytes // (1024 * 1024)} MiB; is it really your code?")
    try:
        return b"".join(chunks).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(f"{path}: not UTF-8 text (byte {exc.start})") from None


@dataclass(frozen=True)
class UserCode:
    """Source text defining ``loss(logits, labels)`` and ``grad(logits, labels)`` (names configurable).

    The code may be NumPy, PyTorch or JAX (found from what it imports). An empty ``grad_name`` checks the
    framework's own autodiff of ``loss`` (``torch.autograd.grad``, ``jax.grad``): what a custom ``backward``
    or ``custom_vjp`` computes.

    ``folder``, when given, is put first on the child's ``sys.path`` so the user's helper modules import
    (the working folder never is).
    """

    source: str
    loss_name: str = "loss"
    grad_name: str = "grad"
    filename: str = "<your code>"
    folder: str | None = None

    @classmethod
    def from_spec(cls, loss_spec: str, grad_spec: str | None = None) -> UserCode:
        """From ``FILE:FUNC`` pairs (the command line); both must name the same regular file. Without
        ``grad_spec`` the framework's autodiff of the loss is checked."""
        loss_file, _, loss_name = loss_spec.rpartition(":")
        grad_file, _, grad_name = (grad_spec or f"{loss_file}:").rpartition(":")
        if not loss_file or not loss_name or not grad_file or (grad_spec is not None and not grad_name):
            raise ValueError("--loss and --grad take FILE:FUNCTION, for example mycode.py:loss")
        if Path(loss_file).resolve() != Path(grad_file).resolve():
            raise ValueError("--loss and --grad must name functions in the same file")
        path = Path(loss_file)
        source = read_source_capped(path)
        return cls(source, loss_name, grad_name, str(path), str(path.resolve().parent))


class UserCodeError(Exception):
    """The user's code could not be checked. ``kind`` is one of :data:`KINDS`: exception, timeout, crash,
    missing, shape, dtype, nan, cancelled, interfered (it wrote into the runner's result pipe), bad (bad
    input); ``message`` is one sentence; ``details`` a traceback or output, if any; ``stdout``/``stderr``
    the tails of what the code printed (capped). After a time-out, ``progress`` says how far the numeric gradient
    got (None if it had not begun) and ``suggested_timeout_s`` a time limit that would do (None if unknown)."""

    def __init__(self, kind: str, message: str, details: str = "", stdout: str = "", stderr: str = ""):
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.details = details
        self.stdout = stdout
        self.stderr = stderr
        self.progress: Progress | None = None
        self.suggested_timeout_s: float | None = None


@dataclass(frozen=True)
class UserResult:
    """What the user's code gave: their gradient, the finite differences of their loss, and more.

    ``stdout``/``stderr`` hold the tails (at most 64 KiB each, with a note when cut) of what it printed.
    ``framework`` is "numpy", "torch" or "jax"; ``gradient`` says which gradient was checked (their function,
    or the framework's autodiff of their loss); ``dtype`` the dtype their code received;
    ``grad_numeric_2h`` the finite differences at twice the step (for the noise-aware verdict), if asked for.
    ``numeric_path`` says how the loss was differenced: "columns" (a per-row loss, checked to be row-separable
    bit for bit: every row of a column perturbed in one call, the same quotients as one element at a time),
    "elements", or "mixed"; ``numeric_reason`` why (a key of :data:`NUMERIC_REASONS`); ``loss_calls`` how many
    times the loss was called for the numeric gradient(s). :attr:`numeric_method` says it in words.
    """

    grad_user: NDArray
    grad_numeric: NDArray
    loss: float
    whole_matrix_quotient: float
    labels_shape: str
    duration_s: float
    sweep_cell: tuple[int, int] | None = None
    sweep_eps: NDArray | None = None
    sweep_errors: dict[str, NDArray] | None = None
    stdout: str = field(default="", repr=False)
    stderr: str = field(default="", repr=False)
    framework: str = "numpy"
    gradient: str = "your grad function"
    dtype: str = "float64"
    grad_numeric_2h: NDArray | None = field(default=None, repr=False)
    numeric_path: str = "elements"
    numeric_reason: str = "off"
    loss_calls: int = 0

    @property
    def numeric_method(self) -> str:
        """How the numeric gradient was formed, in words, for the panel and the CLI.

        Examples
        --------
        >>> r = UserResult(np.zeros((1, 1)), np.zeros((1, 1)), 0.0, 0.0, "(N,)", 0.0, numeric_path="columns",
        ...                numeric_reason="per_row", loss_calls=1030)
        >>> r.numeric_method
        'differenced by columns (the loss is per row): 1030 calls of your loss'
        """
        why = NUMERIC_REASONS.get(self.numeric_reason, "")
        path = NUMERIC_PATHS.get(self.numeric_path, self.numeric_path)
        return f"{path}{f' ({why})' if why else ''}: {self.loss_calls} calls of your loss"


@dataclass(frozen=True)
class UserOutcome:
    """One run of the user's code: exactly one of ``result`` and ``error`` is set."""

    result: UserResult | None
    error: UserCodeError | None

    @property
    def message(self) -> str:
        """One sentence: what went wrong, or that the code ran."""
        if self.error is not None:
            return self.error.message
        assert self.result is not None
        return f"your code ran in {self.result.duration_s:.2f} s"


class _Interfered(Exception):
    """The result pipe held something the child never sends."""


def _interfered(what: str, run: ProcessOutcome) -> UserCodeError:
    return UserCodeError("interfered", f"your code interfered with the runner ({what}); nothing was checked. "
                         "Do not write to file descriptors you did not open.", _output(run), run.stdout,
                         run.stderr)  # fmt: skip


def _output(run: ProcessOutcome) -> str:
    parts = [f"{name}:\n{text.rstrip()}" for name, text in (("stdout", run.stdout), ("stderr", run.stderr)) if text]
    return "\n".join(parts)


_ALLOWED_DTYPES = {np.dtype(np.float64).str, *(np.dtype(f"<U{n}").str for n in range(3, 9))}


def _read_npz(payload: bytes) -> dict[str, np.ndarray]:
    """The arrays of an uncompressed NPZ written by the child, refusing anything it would not write."""
    arrays = {}
    try:
        with zipfile.ZipFile(io.BytesIO(payload)) as zf:
            for info in zf.infolist():
                if info.compress_type != zipfile.ZIP_STORED or not info.filename.endswith(".npy"):
                    raise _Interfered(f"unexpected member {info.filename[:80]!r}")
                with zf.open(info) as f:
                    version = np.lib.format.read_magic(f)
                    if version == (1, 0):
                        shape, _, dtype = np.lib.format.read_array_header_1_0(f)
                    else:
                        shape, _, dtype = np.lib.format.read_array_header_2_0(f)
                    if dtype.str not in _ALLOWED_DTYPES or len(shape) > 2:
                        raise _Interfered(f"unexpected array type in {info.filename[:80]!r}")
                    if math.prod(shape) * dtype.itemsize > info.file_size:
                        raise _Interfered(f"truncated array {info.filename[:80]!r}")
                with zf.open(info) as f:
                    arrays[info.filename.removesuffix(".npy")] = np.lib.format.read_array(f, allow_pickle=False)
    except (zipfile.BadZipFile, ValueError, OSError, EOFError, RuntimeError, NotImplementedError) as exc:
        raise _Interfered(f"unreadable results: {type(exc).__name__}") from None
    return arrays


def _parse_result(arrays: dict[str, np.ndarray], shape: tuple[int, int], sweep_len: int) -> dict:
    """Checks every field the parent reads: names, dtypes, shapes, values."""
    expected = {"grad", "numeric", "loss", "pitfall", "labels_shape", "framework", "numeric_path", "numeric_reason",
                "loss_calls"}  # fmt: skip
    optional = {f"sweep_{name}" for name in SCHEMES} | {"numeric_2h"}
    sweep_keys = optional - {"numeric_2h"}
    if not expected <= arrays.keys() or not arrays.keys() <= expected | optional:
        raise _Interfered("the results have the wrong fields")
    for key in ("grad", "numeric", "loss", "pitfall", "loss_calls", *(arrays.keys() & optional)):
        if arrays[key].dtype != np.float64:
            raise _Interfered(f"{key} is not float64")
    if arrays["numeric"].shape != shape or arrays["loss"].shape != () or arrays["pitfall"].shape != ():
        raise _Interfered("the results have the wrong shapes")
    numeric_2h = arrays.get("numeric_2h")
    if numeric_2h is not None and numeric_2h.shape != shape:
        raise _Interfered("the results have the wrong shapes")
    framework = arrays["framework"]
    if framework.shape != () or framework.dtype.kind != "U" or str(framework) not in protocol.FRAMEWORKS:
        raise _Interfered("the framework's name is garbled")
    labels_shape = arrays["labels_shape"]
    if labels_shape.shape != () or labels_shape.dtype.kind != "U" or str(labels_shape) not in ("(N,)", "(N, 1)"):
        raise _Interfered("the labels' shape is garbled")
    path, reason, calls = arrays["numeric_path"], arrays["numeric_reason"], arrays["loss_calls"]
    if path.shape != () or path.dtype.kind != "U" or str(path) not in NUMERIC_PATHS:
        raise _Interfered("the numeric path is garbled")
    if reason.shape != () or reason.dtype.kind != "U" or str(reason) not in NUMERIC_REASONS:
        raise _Interfered("the numeric path is garbled")
    if calls.shape != () or not (np.isfinite(calls) and 0 <= calls < 2**53 and calls == np.floor(calls)):
        raise _Interfered("the count of loss calls is garbled")
    sweep = {k.removeprefix("sweep_"): arrays[k] for k in sorted(arrays.keys() & sweep_keys)}
    if sweep and (set(sweep) != set(SCHEMES) or any(v.shape != (sweep_len,) for v in sweep.values())):
        raise _Interfered("the error-versus-eps curves are garbled")
    return {"grad": arrays["grad"], "numeric": arrays["numeric"], "loss": float(arrays["loss"]),
            "pitfall": float(arrays["pitfall"]), "labels_shape": str(labels_shape), "sweep": sweep,
            "framework": str(framework), "numeric_2h": numeric_2h, "numeric_path": str(path),
            "numeric_reason": str(reason), "loss_calls": int(calls)}  # fmt: skip


def _parse_error(payload: bytes) -> tuple[str, str, str]:
    try:
        err = json.loads(payload.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise _Interfered("unreadable error report") from None
    if not isinstance(err, dict) or set(err) != {"kind", "message", "details"}:
        raise _Interfered("the error report has the wrong fields")
    kind, message, details = err["kind"], err["message"], err["details"]
    if kind not in _CHILD_KINDS or not isinstance(message, str) or not isinstance(details, str):
        raise _Interfered("the error report is garbled")
    return kind, cap_text(message, MAX_MESSAGE_CHARS), cap_text(details, MAX_OUTPUT_BYTES)


@dataclass(frozen=True)
class Progress:
    """How far the numeric gradient got: calls of the loss made and planned, seconds since the differencing began
    and since the child started (from the child's last progress frame)."""

    done: int
    planned: int
    differencing_s: float
    child_s: float


_PROGRESS_BYTES = struct.calcsize(protocol.PROGRESS_FORMAT)


def _progress_frame(channel: bytes | bytearray, start: int, token: str) -> tuple[Progress, int] | None:
    """The progress frame at ``start`` and the offset after it, or None (another kind, incomplete or garbled)."""
    head = protocol.MAGIC + token.encode("ascii") + protocol.KIND_PROGRESS
    n = len(head) + protocol.LENGTH_BYTES
    end = start + n + _PROGRESS_BYTES
    if len(channel) < end or channel[start : start + len(head)] != head:
        return None
    if int.from_bytes(channel[start + len(head) : start + n], "little") != _PROGRESS_BYTES:
        return None
    done, planned, differencing_s, child_s = struct.unpack(protocol.PROGRESS_FORMAT, channel[start + n : end])
    if not (done <= planned < 2**53 and math.isfinite(differencing_s + child_s)):
        return None
    return Progress(int(done), int(planned), float(differencing_s), float(child_s)), end


def _split_frame(channel: bytes, token: str) -> tuple[Progress | None, bytes, bytes]:
    """(the last progress, the result's kind, its payload): progress frames, then exactly one result frame."""
    progress, start = None, 0
    while (found := _progress_frame(channel, start, token)) is not None:
        progress, start = found
    channel = channel[start:]
    head = protocol.MAGIC + token.encode("ascii")
    n = len(head) + 1 + protocol.LENGTH_BYTES
    if not channel and progress is not None:
        return progress, b"", b""
    if len(channel) < n or not channel.startswith(protocol.MAGIC):
        raise _Interfered("no valid result frame")
    if channel[: len(head)] != head:
        raise _Interfered("a result frame with the wrong token")
    kind = channel[len(head) : len(head) + 1]
    length = int.from_bytes(channel[len(head) + 1 : n], "little")
    if kind not in (protocol.KIND_RESULT, protocol.KIND_ERROR) or length != len(channel) - n:
        raise _Interfered("a garbled result frame")
    return progress, kind, channel[n:]


class _ProgressReader:
    """Reads progress frames from the result pipe as they arrive and reports each to ``report(done, planned)``."""

    def __init__(self, token: str, report: Callable[[int, int], None]):
        self.token, self.report = token, report
        self.data, self.start = bytearray(), 0

    def __call__(self, chunk: bytes) -> None:
        self.data.extend(chunk)
        last = None
        while (found := _progress_frame(self.data, self.start, self.token)) is not None:
            last, self.start = found
        if last is not None:
            self.report(last.done, last.planned)


def _child_command() -> list[str]:
    return [sys.executable, "-I", "-c", _BOOTSTRAP, "{request_fd}", "{result_fd}", *_ROOTS]


def run_user_code(
    code: UserCode,
    logits: ArrayLike,
    labels: ArrayLike,
    eps: float,
    scheme: str = "central",
    timeout_s: float = DEFAULT_TIMEOUT_S,
    sweep_cell: tuple[int, int] | None = None,
    cancel: threading.Event | None = None,
    *,
    dtype: str = "float64",
    noise: bool = False,
    columns: bool = True,
    progress: Callable[[int, int], None] | None = None,
) -> UserOutcome:
    """Run the user's functions in a child process; every way it can go wrong is an outcome with a message.

    Parameters
    ----------
    code : UserCode
    logits : array_like, shape (N, C)
    labels : array_like, shape (N,)
    eps : float
        The finite-difference step.
    scheme : str
        One of the core's scheme names.
    timeout_s : float
        Wall-clock limit; then the child and every process it started are stopped.
    sweep_cell : (int, int), optional
        Also sweep eps at this cell, for every scheme, with the user's loss.
    cancel : threading.Event, optional
        Set it from any thread (window closed, Esc) to stop the run and its processes within ~50 ms.
    dtype : str
        The check's dtype: the logits reach the user's code rounded to it, as the framework's dtype
        (``torch.bfloat16``, ``jnp.bfloat16``, ml_dtypes' bfloat16 for NumPy code).
    noise : bool
        Also difference the loss at ``2 * eps`` (``grad_numeric_2h``), for the noise-aware verdict.
    columns : bool
        Difference a per-row loss (one value per row, checked to be row-separable bit for bit) by columns:
        C calls per stencil point instead of N C, the same numbers. False always differences element by
        element (for comparisons and benchmarks).
    progress : callable, optional
        Called (on the calling thread, at most about twice a second) with the calls of the loss made and planned
        for the numeric gradient(s), while the run goes on.

    Returns
    -------
    UserOutcome
        ``result`` (validated) or ``error`` (a :class:`UserCodeError` with kind, message, details and the
        captured output). Only programming errors raise.
    """
    x = np.asarray(logits, dtype=np.float64)
    y = np.asarray(labels, dtype=np.int64)
    if not (isinstance(timeout_s, int | float) and math.isfinite(timeout_s) and 0 < timeout_s <= MAX_TIMEOUT_S):
        return UserOutcome(None, UserCodeError("bad", f"the time limit must be between 0 and {MAX_TIMEOUT_S:g} s"))
    if x.ndim != 2 or y.ndim < 1 or len(y) != len(x):
        return UserOutcome(None, UserCodeError("bad", f"logits {x.shape} and labels {y.shape} do not fit"))
    try:
        resolve_dtype(dtype)
    except (ValueError, TypeError) as exc:
        return UserOutcome(None, UserCodeError("bad", str(exc)))
    token = secrets.token_hex(16)
    sweep_eps = np.union1d(eps_grid(), [float(eps)]) if math.isfinite(eps) and eps > 0 else eps_grid()
    request = {"source": code.source, "loss": code.loss_name, "grad": code.grad_name, "filename": code.filename,
               "folder": code.folder, "eps": float(eps), "scheme": scheme, "token": token,
               "sweep_cell": None if sweep_cell is None else [int(v) for v in sweep_cell],
               "sweep_eps": sweep_eps.tolist(), "dtype": str(dtype), "noise": bool(noise),
               "columns": bool(columns)}  # fmt: skip
    buffer = io.BytesIO()
    np.savez(buffer, logits=x, labels=y, request=np.frombuffer(json.dumps(request).encode("utf-8"), np.uint8))
    progress_frames = int(timeout_s / protocol.PROGRESS_EVERY_S) + 64  # throttled in the child, + its plans
    cap = 3 * x.nbytes + len(SCHEMES) * sweep_eps.nbytes + (1 << 20) + _ERROR_FRAME_BYTES
    cap += progress_frames * (len(protocol.frame(token, protocol.KIND_PROGRESS, b"")) + _PROGRESS_BYTES)
    reader = None if progress is None else _ProgressReader(token, progress)
    try:
        run = run_in_session(_child_command(), buffer.getvalue(), float(timeout_s), cancel=cancel,
                             max_channel_bytes=cap, on_channel=reader)  # fmt: skip
    except OSError as exc:  # no process could be started (too many open files, no memory)
        return UserOutcome(None, UserCodeError("crash", f"could not start a process for your code: {exc}"))
    return UserOutcome(*_outcome(run, token, code, x.shape, sweep_cell, sweep_eps, timeout_s, str(dtype)))


def _outcome(run: ProcessOutcome, token: str, code: UserCode, shape: tuple[int, int],
             sweep_cell: tuple[int, int] | None, sweep_eps: NDArray, timeout_s: float, dtype: str,
             ) -> tuple[UserResult | None, UserCodeError | None]:  # fmt: skip
    def error(kind: str, message: str, details: str | None = None) -> tuple[None, UserCodeError]:
        return None, UserCodeError(kind, message, _output(run) if details is None else details, run.stdout,
                                   run.stderr)  # fmt: skip

    if run.cancelled:
        return error("cancelled", "the check of your code was cancelled and its processes were stopped")
    if run.timed_out:
        try:
            stopped_at, _, _ = _split_frame(run.channel, token)
        except _Interfered:
            stopped_at = None
        message, suggested = timeout_message(timeout_s, stopped_at, run.duration_s)
        out = error("timeout", message)
        out[1].progress, out[1].suggested_timeout_s = stopped_at, suggested
        return out
    if run.channel_overflow:
        return None, _interfered("far more data than results on the result pipe", run)
    if not run.channel:
        how = f"signal {-run.returncode}" if run.returncode < 0 else f"exit code {run.returncode}"
        return error("crash", f"the process running your code ended unexpectedly ({how})")
    try:
        _, kind, payload = _split_frame(run.channel, token)
        if not kind:
            how = f"signal {-run.returncode}" if run.returncode < 0 else f"exit code {run.returncode}"
            return error("crash", f"the process running your code ended unexpectedly ({how})")
        if kind == protocol.KIND_ERROR:
            err_kind, message, details = _parse_error(payload)
            return error(err_kind, message, details)
        fields = _parse_result(_read_npz(payload), shape, len(sweep_eps))
    except _Interfered as exc:
        return None, _interfered(str(exc), run)
    grad_user = fields["grad"]
    # Without a grad function the gradient is the framework's autodiff of the loss: say so by name.
    who = code.grad_name or f"the autodiff gradient of {code.loss_name}"
    if grad_user.shape != shape:
        return error("shape", f"{who} returned an array of shape {grad_user.shape}; "
                              f"the logits have shape {shape}", "")  # fmt: skip
    bad = np.argwhere(~np.isfinite(grad_user))
    if bad.size:
        i, j = bad[0]
        loss_value = float(np.asarray(fields["loss"]).real) if np.size(fields["loss"]) == 1 else 0.0
        cause = f" ({code.loss_name} itself returned {loss_value})" if not np.isfinite(loss_value) else ""
        return error("nan", f"{who} is {grad_user[i, j]} at sample {i}, class {j} "
                            f"({len(bad)} non-finite values){cause}", "")  # fmt: skip
    sweep = fields["sweep"]
    common = (grad_user, fields["numeric"], fields["loss"], fields["pitfall"], fields["labels_shape"],
              run.duration_s)  # fmt: skip
    framework = fields["framework"]
    more = {"stdout": run.stdout, "stderr": run.stderr, "framework": framework, "dtype": str(dtype),
            "gradient": gradient_source(code, framework), "grad_numeric_2h": fields["numeric_2h"],
            "numeric_path": fields["numeric_path"], "numeric_reason": fields["numeric_reason"],
            "loss_calls": fields["loss_calls"]}  # fmt: skip
    if sweep_cell is None or not sweep:
        return UserResult(*common, **more), None
    cell = (int(sweep_cell[0]), int(sweep_cell[1]))
    return UserResult(*common, cell, sweep_eps, sweep, **more), None


def suggested_limit(seconds: float) -> float:
    """A round time limit of at least ``seconds`` plus a fifth (the machine may be busier next time).

    Examples
    --------
    >>> suggested_limit(32.0), suggested_limit(3.0), suggested_limit(700.0)
    (40.0, 5.0, 900.0)
    """
    want = 1.2 * seconds + 1.0
    unit = 5.0 if want <= 60 else 10.0 if want <= 600 else 60.0
    return min(MAX_TIMEOUT_S, unit * math.ceil(want / unit))


def timeout_message(timeout_s: float, progress: Progress | None, duration_s: float) -> tuple[str, float | None]:
    """What a run stopped at its time limit tells the user, and the limit it suggests (None if it cannot tell).

    ``progress`` is the child's last report (calls of the loss made and planned for the numeric gradient, and
    how long the differencing had run); the rest of the check (the error-versus-eps curve at one cell) is a few
    hundred calls more and is left out of the estimate.

    Examples
    --------
    >>> message, limit = timeout_message(10.0, Progress(20000, 131073, 8.0, 9.5), 10.0)
    >>> message.split(": ", 1)[1].split("; ")[0]
    '20,000 of the 131,073 calls of your loss that the finite differences need were done (15%, 0.4 ms a call)'
    >>> message.split("; ")[1], limit
    ('the whole check needs about 54 s: set the time limit to 70 s or more', 70.0)
    """
    head = f"your code did not finish within {timeout_s:g} s and was stopped"
    if progress is None:
        return (f"{head} before the finite differences of your loss began (loading your code, its first calls and "
                "its gradient took that long)"), None  # fmt: skip
    if progress.done == 0 or progress.differencing_s <= 0:
        return f"{head} as the {progress.planned:,} calls of your loss for the finite differences began", None
    per_call = progress.differencing_s / progress.done
    left = (progress.planned - progress.done) * per_call
    if progress.child_s + 5 * left + 1.0 < timeout_s:
        # At the pace of its calls the rest was due long before the limit: something else held the process
        # (a thread left running, a call that waits, code after the calls), and a longer limit would not help.
        return (f"{head}: its {progress.planned:,} calls of your loss would have been done after about "
                f"{progress.child_s + left:.2g} s at {per_call * 1e3:.2g} ms a call, but the process went on: does "
                "your code leave a thread running, or wait for something?"), None  # fmt: skip
    whole = max(duration_s, timeout_s) + left
    suggested = suggested_limit(whole)
    share = 100.0 * progress.done / max(1, progress.planned)
    return (f"{head}: {progress.done:,} of the {progress.planned:,} calls of your loss that the finite differences "
            f"need were done ({share:.0f}%, {per_call * 1e3:.2g} ms a call); the whole check needs about "
            f"{whole:.0f} s: set the time limit to {suggested:g} s or more"), suggested  # fmt: skip


def gradient_source(code: UserCode, framework: str) -> str:
    """Which gradient is checked, in words: the user's function, or the framework's autodiff of their loss.

    Examples
    --------
    >>> gradient_source(UserCode("", "loss", ""), "torch")
    'torch.autograd.grad of loss (PyTorch autodiff: your custom backward, if any)'
    >>> gradient_source(UserCode("", "loss", "grad"), "numpy")
    'your function grad (NumPy)'
    """
    names = {"numpy": "NumPy", "torch": "PyTorch", "jax": "JAX"}
    if code.grad_name:
        return f"your function {code.grad_name} ({names.get(framework, framework)})"
    what = "custom_vjp" if framework == "jax" else "custom backward"
    return (
        f"{protocol.AUTODIFF.get(framework, 'autodiff')} of {code.loss_name} ({names.get(framework, framework)} "
        f"autodiff: your {what}, if any)"
    )


def run_user_check(
    code: UserCode,
    logits: ArrayLike,
    labels: ArrayLike,
    eps: float,
    scheme: str = "central",
    timeout_s: float = DEFAULT_TIMEOUT_S,
    sweep_cell: tuple[int, int] | None = None,
    cancel: threading.Event | None = None,
    *,
    dtype: str = "float64",
    noise: bool = False,
    columns: bool = True,
    progress: Callable[[int, int], None] | None = None,
) -> UserResult:
    """Run the user's functions in a child process and return their results, validated.

    As :func:`run_user_code`, raising its error.

    Raises
    ------
    UserCodeError
        For an exception in their code (with its traceback), a time-out or a cancel (the process tree is
        stopped), a crash of the process, a missing function, a gradient of the wrong shape, type, or with
        NaN, or code that interfered with the runner's result pipe.
    """
    outcome = run_user_code(code, logits, labels, eps, scheme, timeout_s, sweep_cell, cancel, dtype=dtype, noise=noise,
                            columns=columns, progress=progress)  # fmt: skip
    if outcome.error is not None:
        raise outcome.error
    assert outcome.result is not None
    return outcome.result


def user_sweep(result: UserResult, logits: ArrayLike, labels: ArrayLike, settings: CheckSettings) -> SweepResult | None:
    """The user's error-versus-eps curves at one cell (the textbook lines are those of the built-in loss)."""
    if result.sweep_errors is None or result.sweep_eps is None or result.sweep_cell is None:
        return None
    x = np.asarray(logits, dtype=np.float64)
    cell = result.sweep_cell
    models = {name: cell_error_model(x, labels, cell, name, None, False, **settings.loss_kwargs)
              for name in result.sweep_errors}  # fmt: skip
    best = {name: measured_best(result.sweep_eps, errs) for name, errs in result.sweep_errors.items()}
    sweep = Sweep(result.sweep_eps, result.sweep_errors, models, {k: v[0] for k, v in best.items()},
                  {k: v[1] for k, v in best.items()}, cell, "float64")  # fmt: skip
    return SweepResult("cell", cell, {"float64": sweep}, "float64", settings.scheme, settings.eps, False, user=True)


def user_report(result: UserResult, logits: ArrayLike, labels: ArrayLike, settings: CheckSettings) -> Report:
    """A Report whose "analytic" gradient is the user's and whose numeric one differences the user's loss.

    The verdict is the settings' own: "fixed" (``atol + rtol |yours|``), or "noise" when the run has the
    differences at two steps: the core's black-box estimate (:func:`explorer.core.estimate_noise`, Richardson's
    truncation plus the rounding of the loss values at their size) times the stated multiple.
    """
    x = np.asarray(logits, dtype=np.float64).astype(resolve_dtype(result.dtype)).astype(np.float64)
    atol, rtol = settings.tolerances
    expected = None
    with np.errstate(invalid="ignore", over="ignore"):
        if settings.tolerance == "noise" and result.grad_numeric_2h is not None:
            expected = estimate_noise(result.grad_numeric, result.grad_numeric_2h, settings.eps, abs(result.loss),
                                      settings.scheme, result.dtype)  # fmt: skip
            comparison = compare(result.grad_numeric, result.grad_user, atol, rtol,
                                 tolerance=noise_tolerance(expected, result.dtype))  # fmt: skip
        else:
            comparison = compare(result.grad_numeric, result.grad_user, atol, rtol)
    return Report(settings, x, np.asarray(labels), result.loss, result.grad_user, result.grad_numeric, comparison,
                  result.grad_user.sum(axis=1), expected)  # fmt: skip


@dataclass(frozen=True)
class UserCheck:
    """Everything the window shows after checking the user's code (computed off the GUI thread)."""

    code: UserCode
    result: UserResult
    report: Report
    sweep: SweepResult | None
    builtin_difference: float | None


def check_user_code(
    code: UserCode,
    logits: NDArray,
    labels: NDArray,
    settings: CheckSettings,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    sweep_cell: tuple[int, int] | None = None,
    cancel: threading.Event | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> UserCheck:
    """Run the user's code and derive the report, the cell sweep and the difference from the built-in gradient.

    Raises :class:`UserCodeError` as :func:`run_user_check`; set ``cancel`` from any thread to stop it;
    ``progress(done, planned)`` is called with the calls of the loss as the run goes on (see :func:`run_user_code`).
    """
    result = run_user_check(code, logits, labels, settings.eps, settings.scheme, timeout_s, sweep_cell, cancel,
                            dtype=settings.dtype, noise=settings.tolerance == "noise",
                            progress=progress)  # fmt: skip
    diff = builtin_difference(result, logits, labels, settings) if np.asarray(labels).ndim == 1 else None
    return UserCheck(code, result, user_report(result, logits, labels, settings),
                     user_sweep(result, logits, labels, settings), diff)  # fmt: skip


def builtin_difference(result: UserResult, logits: ArrayLike, labels: ArrayLike, settings: CheckSettings) -> float:
    """max |user gradient - built-in analytic gradient| (meaningful when their loss matches the settings)."""
    ours = cross_entropy_grad(np.asarray(logits, dtype=np.float64), labels, **settings.loss_kwargs)  # type: ignore[arg-type]
    return float(np.max(np.abs(result.grad_user - ours)))
