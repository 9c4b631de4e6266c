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

import io
import json
import os
import sys
import traceback

import numpy as np

from explorer.usercode.sandbox import MAX_OUTPUT_BYTES, cap_text

MAGIC = b"GRADEXP-RESULT-1"
KIND_RESULT, KIND_ERROR = b"R", b"E"
LENGTH_BYTES = 8
MAX_LINE_CHARS = 2000  # one line of a message or traceback (a 2 MB exception text is cut to this)
EXIT_NO_CHANNEL = 3  # the user's code closed or replaced the result pipe


def frame(token: str, kind: bytes, payload: bytes) -> bytes:
    """One message on the result pipe: magic, token, kind, payload length (8 bytes, little-endian), payload."""
    return MAGIC + token.encode("ascii") + kind + len(payload).to_bytes(LENGTH_BYTES, "little") + payload


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


def _scalar(value: object, name: str) -> complex:
    arr = np.asarray(value)
    if arr.dtype.kind not in "biufc":
        raise _Failure("dtype", f"{name} returned {type(value).__name__} values of dtype {arr.dtype}, not numbers")
    return complex(arr.sum())  # a per-row vector of losses is summed, as in the origin question


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
            out = np.empty(steps.shape)
            for k, h in enumerate(steps):
                out[k] = abs(float(numeric_grad(along_cell, point, float(h), name)[0]) - target)
            errors[f"sweep_{name}"] = out
    return errors


def _check(request: dict, logits: np.ndarray, labels: np.ndarray) -> bytes:
    """Run the user's functions; the results as NPZ bytes, or :class:`_Failure`."""
    from explorer.core import numeric_grad

    filename = request["filename"]
    namespace: dict = {"__name__": "user_code", "__file__": filename, "classes": int(logits.shape[1])}
    try:
        exec(compile(request["source"], filename, "exec"), namespace)  # the user's own code, by design
    except Exception as exc:
        raise _Failure("exception", _raised("your code", exc, " while loading"),
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
        raise _Failure("exception", _raised(request["loss"], last[0]), last[1])
    shape, y = chosen
    try:
        grad = np.asarray(grad_fn(logits.copy(), y))
    except Exception as exc:
        raise _Failure("exception", _raised(request["grad"], exc),
                       _user_traceback(filename)) from None  # fmt: skip
    if grad.dtype.kind not in "biuf":
        raise _Failure("dtype", f"{request['grad']} returned values of dtype {grad.dtype}, not real numbers")
    if grad.shape != logits.shape:
        raise _Failure("shape", f"{request['grad']} returned an array of shape {grad.shape}; "
                                f"the logits have shape {logits.shape}")  # fmt: skip

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
        raise _Failure("exception", _raised(request["loss"], exc, " on perturbed logits"),
                       _user_traceback(filename)) from None  # fmt: skip
    extra = {}
    if request.get("sweep_cell") is not None:
        extra = _cell_sweep(loss_of, logits, tuple(request["sweep_cell"]), np.asarray(request["sweep_eps"]),
                            float(np.asarray(grad, dtype=np.float64)[tuple(request["sweep_cell"])]))  # fmt: skip
    out = io.BytesIO()
    np.savez(out, grad=grad.astype(np.float64), numeric=numeric.astype(np.float64),
             loss=np.float64(base.real), pitfall=np.float64(pitfall), labels_shape=np.array(shape),
             **extra)  # fmt: skip
    return out.getvalue()


def _read_request(fd: int) -> tuple[dict, np.ndarray, np.ndarray]:
    with os.fdopen(fd, "rb") as f:  # closed before the user's code runs
        raw = f.read()
    with np.load(io.BytesIO(raw), allow_pickle=False) as z:
        request = json.loads(z["request"].tobytes().decode("utf-8"))
        return request, z["logits"], z["labels"]


def main(argv: list[str]) -> int:
    """``argv``: the request pipe's and the result pipe's file descriptors."""
    request_fd, result_fd = int(argv[0]), int(argv[1])
    os.set_inheritable(result_fd, False)  # programs the user's code starts do not get the result pipe
    request, logits, labels = _read_request(request_fd)
    token = request.pop("token")
    if request.get("folder"):  # the user's file's folder, so their helper modules import (never the cwd)
        sys.path.insert(0, request["folder"])
    sys.argv = [request["filename"]]
    try:
        kind, payload = KIND_RESULT, _check(request, logits, labels)
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
