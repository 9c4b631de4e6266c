"""Check a user's own loss and gradient functions, safely: in a separate process with a time limit.

No Qt. The user's code runs with the user's own rights (it is their code, on their machine); a
separate process keeps an exception, an endless loop or a crash from touching the app.

The child (``python -m explorer.usercode.child DIR``) loads the source with ``classes`` set to C
(so the origin question's code works as pasted), calls ``grad(logits, labels)``, and forms the
finite-difference gradient of ``loss`` element by element (a per-row vector loss is summed). Labels
are passed with shape (N,), or (N, 1) if the code only accepts that (as the origin question's does).
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import ArrayLike, NDArray

from explorer.core import CheckSettings, Report, Sweep, compare, cross_entropy_grad, eps_grid
from explorer.core.sweep import SweepResult, cell_error_model, measured_best

__all__ = [
    "DEFAULT_TIMEOUT_S",
    "UserCheck",
    "UserCode",
    "UserCodeError",
    "UserResult",
    "check_user_code",
    "run_user_check",
    "user_report",
    "user_sweep",
]

DEFAULT_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class UserCode:
    """Source text defining ``loss(logits, labels)`` and ``grad(logits, labels)`` (names configurable)."""

    source: str
    loss_name: str = "loss"
    grad_name: str = "grad"
    filename: str = "<your code>"

    @classmethod
    def from_spec(cls, loss_spec: str, grad_spec: str) -> UserCode:
        """From ``FILE:FUNC`` pairs (the command line); both must name the same file."""
        loss_file, _, loss_name = loss_spec.rpartition(":")
        grad_file, _, grad_name = grad_spec.rpartition(":")
        if not loss_file or not loss_name or not grad_file or not grad_name:
            raise ValueError("--loss and --grad take FILE:FUNCTION, for example mycode.py:loss")
        if Path(loss_file).resolve() != Path(grad_file).resolve():
            raise ValueError("--loss and --grad must name functions in the same file")
        path = Path(loss_file)
        try:
            source = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ValueError(f"{path}: {exc.strerror or exc}") from None
        return cls(source, loss_name, grad_name, str(path))


class UserCodeError(Exception):
    """The user's code could not be checked. ``kind`` is one of: exception, timeout, crash, missing,
    shape, dtype, nan; ``message`` is one sentence; ``details`` a traceback or output, if any."""

    def __init__(self, kind: str, message: str, details: str = ""):
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.details = details


@dataclass(frozen=True)
class UserResult:
    """What the user's code gave: their gradient, the finite differences of their loss, and more."""

    grad_user: NDArray
    grad_numeric: NDArray
    loss: float
    whole_matrix_quotient: float
    labels_shape: str
    duration_s: float
    sweep_cell: tuple[int, int] | None = None
    sweep_eps: NDArray | None = None
    sweep_errors: dict[str, NDArray] | None = None


def run_user_check(
    code: UserCode,
    logits: ArrayLike,
    labels: ArrayLike,
    eps: float,
    scheme: str = "central",
    timeout_s: float = DEFAULT_TIMEOUT_S,
    sweep_cell: tuple[int, int] | None = None,
) -> UserResult:
    """Run the user's functions in a child process and return their results, validated.

    Raises
    ------
    UserCodeError
        For an exception in their code (with its traceback), a time-out (the process is stopped),
        a crash of the process, a missing function, or a gradient of the wrong shape, type, or with NaN.
    """
    x = np.asarray(logits, dtype=np.float64)
    y = np.asarray(labels, dtype=np.int64)
    with tempfile.TemporaryDirectory(prefix="gradexp-user-") as tmp:
        folder = Path(tmp)
        np.savez(folder / "request.npz", logits=x, labels=y)
        request = {"source": code.source, "loss": code.loss_name, "grad": code.grad_name,
                   "filename": code.filename, "eps": float(eps), "scheme": scheme,
                   "sweep_cell": None if sweep_cell is None else [int(v) for v in sweep_cell],
                   "sweep_eps": eps_grid().tolist()}  # fmt: skip
        (folder / "request.json").write_text(json.dumps(request), encoding="utf-8")
        start = time.perf_counter()
        try:
            proc = subprocess.run([sys.executable, "-m", "explorer.usercode.child", str(folder)],
                                  capture_output=True, text=True, timeout=timeout_s)  # fmt: skip
        except subprocess.TimeoutExpired as exc:
            raise UserCodeError("timeout", f"your code did not finish within {timeout_s:g} s and was stopped",
                                (exc.stdout or "") if isinstance(exc.stdout, str) else "") from None  # fmt: skip
        duration = time.perf_counter() - start
        error_file, result_file = folder / "error.json", folder / "result.npz"
        if error_file.exists():
            err = json.loads(error_file.read_text(encoding="utf-8"))
            raise UserCodeError(err["kind"], err["message"], err.get("details", ""))
        if proc.returncode != 0 or not result_file.exists():
            how = f"signal {-proc.returncode}" if proc.returncode < 0 else f"exit code {proc.returncode}"
            raise UserCodeError("crash", f"the process running your code ended unexpectedly ({how})",
                                (proc.stdout + proc.stderr)[-4000:])  # fmt: skip
        with np.load(result_file, allow_pickle=False) as z:
            grad_user, grad_numeric = z["grad"], z["numeric"]
            loss, quotient, shape = float(z["loss"]), float(z["pitfall"]), str(z["labels_shape"])
            sweep = {k.removeprefix("sweep_"): z[k] for k in z.files if k.startswith("sweep_")}
    if grad_user.shape != x.shape:
        raise UserCodeError("shape", f"{code.grad_name} returned an array of shape {grad_user.shape}; "
                                     f"the logits have shape {x.shape}")  # fmt: skip
    bad = np.argwhere(~np.isfinite(grad_user))
    if bad.size:
        i, j = bad[0]
        raise UserCodeError("nan", f"{code.grad_name} returned {grad_user[i, j]} at sample {i}, class {j} "
                                   f"({len(bad)} non-finite values)")  # fmt: skip
    if sweep_cell is None or not sweep:
        return UserResult(grad_user, grad_numeric, loss, quotient, shape, duration)
    return UserResult(grad_user, grad_numeric, loss, quotient, shape, duration, tuple(sweep_cell), eps_grid(), sweep)


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
    """A Report whose "analytic" gradient is the user's and whose numeric one differences the user's loss."""
    x = np.asarray(logits, dtype=np.float64)
    atol, rtol = settings.tolerances
    with np.errstate(invalid="ignore", over="ignore"):
        comparison = compare(result.grad_numeric, result.grad_user, atol, rtol)
    return Report(settings, x, np.asarray(labels), result.loss, result.grad_user, result.grad_numeric, comparison,
                  result.grad_user.sum(axis=1))  # fmt: skip


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
) -> UserCheck:
    """Run the user's code and derive the report, the cell sweep and the difference from the built-in gradient."""
    result = run_user_check(code, logits, labels, settings.eps, settings.scheme, timeout_s, sweep_cell)
    diff = builtin_difference(result, logits, labels, settings) if np.asarray(labels).ndim == 1 else None
    return UserCheck(code, result, user_report(result, logits, labels, settings),
                     user_sweep(result, logits, labels, settings), diff)  # fmt: skip


def builtin_difference(result: UserResult, logits: ArrayLike, labels: ArrayLike, settings: CheckSettings) -> float:
    """max |user gradient - built-in analytic gradient| (meaningful when their loss matches the settings)."""
    ours = cross_entropy_grad(np.asarray(logits, dtype=np.float64), labels, **settings.loss_kwargs)  # type: ignore[arg-type]
    return float(np.max(np.abs(result.grad_user - ours)))
