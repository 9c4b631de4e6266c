"""Child process of :mod:`explorer.usercode.runner`: runs the user's functions and writes their results.

Writes ``result.npz`` on success or ``error.json`` (kind, message, details) when their code fails.
Anything else (a crash, ``os._exit``) is reported by the parent from the exit code.
"""

from __future__ import annotations

import json
import sys
import traceback
from pathlib import Path

import numpy as np


class _Failure(Exception):
    def __init__(self, kind: str, message: str, details: str = ""):
        super().__init__(message)
        self.kind, self.message, self.details = kind, message, details


def _user_traceback(filename: str) -> str:
    """The traceback from the user's own frames on (the runner's frames are noise to them)."""
    lines = traceback.format_exc().splitlines(keepends=True)
    start = next((k for k, ln in enumerate(lines) if filename in ln), 1)
    return "Traceback (most recent call last):\n" + "".join(lines[start:])


def _scalar(value: object, name: str) -> complex:
    arr = np.asarray(value)
    if arr.dtype.kind not in "biufc":
        raise _Failure("dtype", f"{name} returned {type(value).__name__} values of dtype {arr.dtype}, not numbers")
    return complex(arr.sum())  # a per-row vector of losses is summed, as in the origin question


def _cell_sweep(loss_of, logits: np.ndarray, cell: tuple, steps: np.ndarray, target: float) -> dict:  # type: ignore[no-untyped-def]
    """|quotient - the user's gradient| at one cell, for every scheme and step (the user's loss as a black box)."""
    from explorer.core import SCHEMES

    errors = {}
    with np.errstate(all="ignore"):
        for name, sch in SCHEMES.items():
            out = np.empty(steps.shape)
            for k, h in enumerate(steps):
                if sch.is_complex:
                    xp = logits.astype(np.complex128)
                    xp[cell] += 1j * h
                    q = loss_of(xp).imag / h
                else:
                    total = 0.0
                    for o, w in sch.stencil:
                        xp = logits.copy()
                        xp[cell] = logits[cell] + o * h
                        total += w * loss_of(xp).real
                    q = total / (sch.divisor * h)
                out[k] = abs(q - target)
            errors[f"sweep_{name}"] = out
    return errors


def main(folder: Path) -> int:
    from explorer.core import numeric_grad

    request = json.loads((folder / "request.json").read_text(encoding="utf-8"))
    with np.load(folder / "request.npz", allow_pickle=False) as z:
        logits, labels = z["logits"], z["labels"]
    filename = request["filename"]
    try:
        namespace: dict = {"__name__": "user_code", "__file__": filename, "classes": int(logits.shape[1])}
        try:
            exec(compile(request["source"], filename, "exec"), namespace)  # the user's own code, by design
        except Exception as exc:
            raise _Failure("exception", f"your code raised {type(exc).__name__} while loading: {exc}",
                           _user_traceback(filename)) from None  # fmt: skip
        functions = []
        for key in ("loss", "grad"):
            fn = namespace.get(request[key])
            if not callable(fn):
                raise _Failure("missing", f"your code defines no function named {request[key]!r}")
            functions.append(fn)
        loss_fn, grad_fn = functions
        attempts = [("(N,)", labels), ("(N, 1)", labels[:, None])]
        chosen, last = None, None
        for shape, y in attempts:
            try:
                base = _scalar(loss_fn(logits.copy(), y), request["loss"])
                chosen = (shape, y)
                break
            except _Failure:
                raise
            except Exception as exc:
                last = (exc, _user_traceback(filename))
        if chosen is None:
            assert last is not None
            exc, details = last
            raise _Failure("exception", f"{request['loss']} raised {type(exc).__name__}: {exc}", details)
        shape, y = chosen
        try:
            grad = np.asarray(grad_fn(logits.copy(), y))
        except Exception as exc:
            raise _Failure("exception", f"{request['grad']} raised {type(exc).__name__}: {exc}",
                           _user_traceback(filename)) from None  # fmt: skip
        if grad.dtype.kind not in "biuf":
            raise _Failure("dtype", f"{request['grad']} returned values of dtype {grad.dtype}, not real numbers")

        def loss_of(v: np.ndarray) -> complex:
            return _scalar(loss_fn(v, y), request["loss"])

        eps = request["eps"]
        try:
            with np.errstate(all="ignore"):
                numeric = numeric_grad(loss_of, logits, eps, request["scheme"])
                pitfall = (loss_of(logits + eps) - base).real / eps
        except _Failure:
            raise
        except Exception as exc:
            raise _Failure("exception", f"{request['loss']} raised {type(exc).__name__} on perturbed logits: {exc}",
                           _user_traceback(filename)) from None  # fmt: skip
        extra = {}
        if request.get("sweep_cell") is not None and grad.shape == logits.shape:  # else the parent explains the shape
            extra = _cell_sweep(loss_of, logits, tuple(request["sweep_cell"]), np.asarray(request["sweep_eps"]),
                                float(np.asarray(grad, dtype=np.float64)[tuple(request["sweep_cell"])]))  # fmt: skip
        np.savez(folder / "result.npz", grad=grad.astype(np.float64), numeric=numeric.astype(np.float64),
                 loss=np.float64(base.real), pitfall=np.float64(pitfall), labels_shape=np.array(shape),
                 **extra)  # fmt: skip
    except _Failure as failure:
        payload = {"kind": failure.kind, "message": failure.message, "details": failure.details}
        (folder / "error.json").write_text(json.dumps(payload), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1])))
