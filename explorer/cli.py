"""Command line. Arguments are parsed before Qt is imported, so ``--help``, ``check`` and data
exports work without a display; plot exports use Qt's offscreen platform.

    gradient-explorer [--preset NAME] [--no-restore]          the window
    gradient-explorer check  [inputs] [--atol A] [--rtol R]   exit 0 when every element passes, 1 otherwise
    gradient-explorer check  --loss FILE:FUNC --grad FILE:FUNC [inputs]   check your own gradient code
    gradient-explorer export OUT [inputs] [--what WHAT]       PNG, SVG, PDF, CSV or NPZ by OUT's suffix

Bad flags or files give a one-line error on stderr and exit code 2, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from explorer import __version__

__all__ = ["EXIT_BAD_INPUT", "EXIT_FAILED", "EXIT_OK", "SETTING_OPTIONS", "build_parser", "main", "worst_cells"]

_START = time.perf_counter()

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT = 0, 1, 2
PLOT_SUFFIXES = (".png", ".svg", ".pdf")
PLOT_WHATS = ("dashboard", "analytic", "numeric", "error", "sweep")
#: The JSON report of ``check --format json``: its JSON Schema ships as resources/<JSON_SCHEMA_NAME>.
JSON_SCHEMA_NAME = "check_report.schema.json"
JSON_SCHEMA_ID = "https://gradient-explorer.invalid/schemas/check_report/1"
JSON_SCHEMA_VERSION = 1


class _Parser(argparse.ArgumentParser):
    """argparse that reports errors as one line and exit code 2 (its default usage block is noise in scripts)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise _BadInput(message)


class _BadInput(Exception):
    pass


def _positive_float(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not math.isfinite(v) or v <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be a finite number > 0")
    return v


def _nonneg_float(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not math.isfinite(v) or v < 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be a finite number >= 0")
    return v


@dataclass(frozen=True)
class SettingOption:
    """One command-line option that sets one :class:`~explorer.core.CheckSettings` field.

    Adding a settings field to the CLI is one row of :data:`SETTING_OPTIONS`; rows whose
    field the installed core does not have are skipped. Values are validated by
    ``CheckSettings`` itself (a bad one is a :class:`~explorer.core.SettingsError`, exit 2).
    """

    flag: str
    field: str
    help: str
    type: Callable[[str], object] | None = None
    choices: str | None = None  # name of a tuple in explorer.core, resolved when the parser is built
    metavar: str | None = None


def _weights(text: str) -> tuple[float, ...]:
    """Class weights: a comma/space separated list (``1,2,0.5``) or a text file holding one."""
    from explorer.files.numbers import parse_number

    source = text
    path = Path(text)
    if path.is_file():
        if path.stat().st_size > MAX_WEIGHT_FILE_BYTES:
            raise argparse.ArgumentTypeError(f"{text}: a weights file holds at most {MAX_WEIGHT_FILE_BYTES} bytes")
        try:
            source = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise argparse.ArgumentTypeError(f"{text}: cannot read it ({exc})") from None
    elif os.sep in text or any(c.isalpha() and c not in "eE" for c in text):
        raise argparse.ArgumentTypeError(f"{text}: no such weights file (or give numbers such as 1,2,0.5)")
    tokens = [t for t in source.replace(",", " ").replace(";", " ").split() if t]
    if not tokens:
        raise argparse.ArgumentTypeError(f"{text!r}: no class weights (give numbers such as 1,2,0.5)")
    try:
        return tuple(parse_number(t, what="class weight") for t in tokens)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"class weight {exc}") from None


def _integer(text: str) -> int:
    try:
        return int(text.strip(), 10)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None


MAX_WEIGHT_FILE_BYTES = 16 * 1024 * 1024

#: The options that set CheckSettings fields, in --help order.
SETTING_OPTIONS: tuple[SettingOption, ...] = (
    SettingOption("--eps", "eps", "the step (default: the preset's, or the scheme's default)", _positive_float),
    SettingOption("--scheme", "scheme", "difference scheme", choices="SCHEME_NAMES"),
    SettingOption("--dtype", "dtype", "precision of the check", choices="DTYPE_NAMES"),
    SettingOption("--reduction", "reduction", "loss reduction", choices="REDUCTIONS"),
    SettingOption("--label-smoothing", "label_smoothing", "label smoothing in [0, 1]", _nonneg_float),
    SettingOption(
        "--weight",
        "weight",
        "class weights: a comma list (1,2,0.5) or a file holding one, one per class",
        _weights,
        metavar="W1,W2,...|FILE",
    ),
    SettingOption(
        "--ignore-index", "ignore_index", "label value whose rows are ignored (default -100)", _integer, metavar="INT"
    ),
    SettingOption("--perturb", "perturb", "pitfall modes: a whole row or all logits at once", choices="PERTURB_MODES"),
    SettingOption(
        "--evaluate",
        "evaluate",
        "row: each row's loss (the origin question's way); loss: the whole reduced loss, as gradcheck",
        choices="EVALUATE_MODES",
    ),
    SettingOption(
        "--tolerance",
        "tolerance",
        "noise (default): within 3 x the expected error of the numeric estimate; fixed: atol + rtol*|ana| "
        "(implied by --atol/--rtol)",
        choices="TOLERANCE_MODES",
    ),
    SettingOption("--atol", "atol", "absolute tolerance (default: per dtype)", _nonneg_float),
    SettingOption("--rtol", "rtol", "relative tolerance (default: per dtype)", _nonneg_float),
)


def _setting_options() -> tuple[SettingOption, ...]:
    from explorer.core.settings import FIELD_NAMES

    return tuple(o for o in SETTING_OPTIONS if o.field in FIELD_NAMES)


def _preset_names() -> str:
    from explorer.files.presets import presets

    return ", ".join(p.name for p in presets())


def _add_inputs(p: argparse.ArgumentParser, verdict: bool) -> None:
    import explorer.core as core

    src = p.add_mutually_exclusive_group()
    src.add_argument("--preset", metavar="NAME", help=f"a shipped problem, default origin: {_preset_names()} "
                     "(see the presets command)")  # fmt: skip
    src.add_argument("--logits", metavar="FILE", help="logits from .npy, .npz, .csv, .tsv, .txt or .safetensors")
    src.add_argument("--session", metavar="FILE", help="a session file saved by the window")
    p.add_argument("--labels", metavar="FILE", help="labels from a second file (with --logits)")
    p.add_argument("--labels-column", metavar="NAME", help="labels from a named CSV/TSV column (with --logits)")
    for o in _setting_options():
        if o.field in ("atol", "rtol") and not verdict:
            continue
        kwargs: dict[str, Any] = {"dest": o.field, "help": o.help, "default": None}
        if o.type is not None:
            kwargs["type"] = o.type
        if o.choices is not None:
            kwargs["choices"] = getattr(core, o.choices)
        if o.metavar is not None:
            kwargs["metavar"] = o.metavar
        p.add_argument(o.flag, **kwargs)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (no Qt imported)."""
    parser = _Parser(
        prog="gradient-explorer",
        description=(
            "Gradient Explorer: edit logits and labels, and see where the finite-difference gradient of "
            "softmax cross-entropy agrees with the analytic one, and why it does not. Without a command, "
            "opens the window."
        ),
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("--preset", metavar="NAME", help=f"start the window with a preset: {_preset_names()}")
    parser.add_argument("--no-restore", action="store_true", help="ignore the settings saved by the last run")
    parser.add_argument("--quit-after-first-draw", action="store_true", help=argparse.SUPPRESS)
    sub = parser.add_subparsers(dest="command", metavar="{check,export,presets}")
    check = sub.add_parser(
        "check",
        help="print the worst cells and a verdict; exit 0 if every element passes, 1 if not, 2 on bad input",
        description="Compare the numeric and analytic gradients without a window. "
        "Exit code 0: pass, 1: fail, 2: bad input (one line on stderr).",
    )
    _add_inputs(check, verdict=True)
    check.add_argument("--top", type=int, default=5, help="worst cells to list, failing ones first (default 5)")
    check.add_argument("--format", choices=("text", "json"), default="text",
                       help="text for people, or json: the whole report for CI tools (schema: "
                       f"{JSON_SCHEMA_NAME})")  # fmt: skip
    check.add_argument("--loss", metavar="FILE:FUNC", help="check your own code (NumPy, PyTorch or JAX): its "
                       "loss(logits, labels) ...")  # fmt: skip
    check.add_argument("--grad", metavar="FILE:FUNC", help="... against its grad(logits, labels); without --grad, "
                       "PyTorch or JAX code is checked against the framework's autodiff of the loss (your custom "
                       "backward or custom_vjp)")  # fmt: skip
    check.add_argument("--timeout", type=_positive_float, default=10.0, help="seconds your code may take (default 10)")
    export = sub.add_parser(
        "export",
        help="write a plot (PNG, SVG, PDF) or the data (CSV, NPZ), by OUT's suffix",
        description="Write a plot (PNG, SVG, PDF) or the data (CSV, NPZ) without a window, by OUT's suffix.",
    )
    export.add_argument("out", metavar="OUT", help="output file: .png, .svg, .pdf, .csv or .npz")
    _add_inputs(export, verdict=True)
    export.add_argument("--what", choices=PLOT_WHATS, default="dashboard", help="which plot (default: dashboard)")
    export.add_argument("--width", type=_integer, default=None,
                        help="PNG width in pixels (default: the figure's width at --dpi)")  # fmt: skip
    export.add_argument("--dpi", type=_positive_float, default=96.0,
                        help="PNG resolution; without --width it also scales the image (default 96: "
                        "the figure's own size)")  # fmt: skip
    sub.add_parser("presets", help="list the shipped problems with their descriptions",
                   description="List the shipped problems (for --preset) with their descriptions.")  # fmt: skip
    for sp in sub.choices.values():
        sp.error = parser.error  # type: ignore[method-assign]
    return parser


@contextmanager
def _quiet_numerics() -> Iterator[None]:
    """NumPy's floating-point warnings off: overflow and NaN are reported in the output, not as stderr noise."""
    import numpy as np

    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        yield


def _problem(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    """Logits, labels and CheckSettings from the input flags (raises ValueError with a message)."""
    import numpy as np

    from explorer.core import CheckSettings, default_eps
    from explorer.files.io import load_logits, load_session
    from explorer.files.limits import GRID_LIMITS
    from explorer.files.presets import get_preset

    overrides = {o.field: getattr(args, o.field) for o in _setting_options()
                 if getattr(args, o.field, None) is not None}  # fmt: skip
    if args.session:
        s = load_session(args.session, limits=GRID_LIMITS)
        logits, labels, base = s.logits, s.labels, s.settings.to_mapping()
        source = f"session {args.session}"
    elif args.logits:
        logits, loaded = load_logits(
            args.logits, labels_path=args.labels, labels_column=args.labels_column, limits=GRID_LIMITS
        )
        if loaded is None:
            raise ValueError("no labels: give --labels FILE, --labels-column NAME, or an NPZ with a 'labels' entry")
        labels = loaded
        base = {"reduction": "sum"}
        source = f"logits {args.logits}"
    else:
        if args.labels or args.labels_column:
            raise ValueError("--labels and --labels-column go with --logits")
        p = get_preset(args.preset or "origin")
        logits, labels, base = p.logits, p.labels, dict(p.settings)
        source = f"preset {p.name}"
    if not np.all(np.isfinite(logits)):
        raise ValueError("the logits contain values that are not finite numbers")
    merged = {**base, **overrides}
    # A preset's or session's eps suits its own scheme and dtype; choosing another one (and no --eps) takes
    # that scheme's default step for that dtype (1e-5 in float32 would leave nothing to tell).
    changed = any(k in overrides and overrides[k] != base.get(k) for k in ("scheme", "dtype"))
    if "eps" not in overrides and ("eps" not in merged or changed):
        merged["eps"] = default_eps(merged.get("scheme", "central"), merged.get("dtype", "float64"))
    settings = CheckSettings.from_mapping(merged)  # validates every field; SettingsError is a ValueError
    settings.check_classes(int(np.shape(logits)[1]) if np.ndim(logits) == 2 else 0)
    return logits, labels, settings, source


def _user_check(args: argparse.Namespace, logits, labels, settings, say: Callable[[str], None]):  # type: ignore[no-untyped-def]
    """Run the user's functions; returns the Report (their gradient as the analytic one) and facts about the run."""
    from explorer.usercode.runner import UserCode, UserCodeError, builtin_difference, run_user_check, user_report

    if not args.loss:
        raise ValueError("--grad needs --loss: give the loss as FILE:FUNCTION too")
    code = UserCode.from_spec(args.loss, args.grad)
    try:
        result = run_user_check(code, logits, labels, settings.eps, settings.scheme, args.timeout,
                                dtype=settings.dtype, noise=settings.tolerance == "noise")  # fmt: skip
    except UserCodeError as exc:
        details = f"\n{exc.details.rstrip()}" if exc.details and exc.kind == "exception" else ""
        raise _UserFailure(f"{code.filename}: {exc.message}{details}") from None
    facts: dict[str, Any] = {
        "file": str(code.filename),
        "loss": code.loss_name,
        "grad": code.grad_name,
        "gradient": result.gradient,
        "framework": result.framework,
        "dtype": result.dtype,
        "labels_shape": [len(labels)] if result.labels_shape == "(N,)" else [len(labels), 1],
        "duration_s": result.duration_s,
        "whole_matrix_quotient": _num(result.whole_matrix_quotient),
        "numeric_path": result.numeric_path,
        "numeric_reason": result.numeric_reason,
        "loss_calls": int(result.loss_calls),
    }
    say(f"your code: {code.filename}, loss={code.loss_name}, {result.framework} ({result.dtype}), labels passed as "
        f"{result.labels_shape}, {result.duration_s:.2f} s")  # fmt: skip
    say(f"gradient checked: {result.gradient}")
    say(f"numeric gradient: {result.numeric_method}")
    say(
        f"whole-matrix quotient (L(x + eps) - L(x)) / eps = {result.whole_matrix_quotient:.3g} "
        "(about 0 by shift invariance: not a gradient)"
    )
    if labels.ndim == 1:
        diff = builtin_difference(result, logits, labels, settings)
        facts["max_abs_difference_from_builtin"] = _num(diff)
        say(f"max |your grad - built-in gradient ({settings.reduction})| = {diff:.3g}")
    return user_report(result, logits, labels, settings), facts


class _UserFailure(Exception):
    pass


def worst_cells(report, top: int) -> list[tuple[int, ...]]:  # type: ignore[no-untyped-def]
    """Up to ``top`` cells: failing cells first, each group by |num - ana| largest first (NaN largest).

    The core's ranking (``Comparison.ranked``) when it is there; otherwise the same order with
    argpartition here, so a 4096 x 4096 grid costs no full sort.
    """
    import numpy as np

    cmp = report.comparison
    k = max(0, top)
    ranked = getattr(cmp, "ranked", None)
    if ranked is not None:
        return [tuple(int(v) for v in row) for row in ranked(k)]
    key = np.where(np.isnan(cmp.abs_err), np.inf, cmp.abs_err).ravel()
    failed = ~cmp.passed.ravel()
    out: list[int] = []
    for group in (np.flatnonzero(failed), np.flatnonzero(~failed)):
        m = min(k - len(out), group.size)
        if m <= 0:
            continue
        part = group[np.argpartition(-key[group], m - 1)[:m]] if m < group.size else group
        out.extend(part[np.lexsort((part, -key[part]))].tolist())
    return [tuple(int(v) for v in np.unravel_index(flat, cmp.abs_err.shape)) for flat in out]


def _num(v: float) -> float | None:
    """A float for JSON: non-finite values (overflow, NaN) become null."""
    v = float(v)
    return v if math.isfinite(v) else None


def _notes(report) -> list[str]:  # type: ignore[no-untyped-def]
    from explorer.app.report_text import PITFALL_SENTENCE, extreme_notes

    s = report.settings
    notes = []
    if s.perturb != "element":
        what = "every logit" if s.perturb == "all" else "each whole row"
        notes.append(f"Pitfall mode (perturbing {what} at once): {PITFALL_SENTENCE}")
    notes.extend(extreme_notes(report))
    return notes


def _json_report(report, source: str, top: int, timings: dict[str, float],  # type: ignore[no-untyped-def]
                 user: dict[str, Any] | None) -> dict[str, Any]:  # fmt: skip
    """The whole check as plain JSON values; see resources/check_report.schema.json."""
    import numpy as np

    from explorer.app.report_text import verdict_of
    from explorer.core import NOISE_MULTIPLE

    verdict = verdict_of(report)
    s = report.settings
    cmp = report.comparison
    atol, rtol = s.tolerances
    n, c = report.logits.shape
    cells = []
    for i, j in worst_cells(report, top):
        cells.append(
            {
                "sample": i,
                "class": j,
                "analytic": _num(report.grad_analytic[i, j]),
                "numeric": _num(report.grad_numeric[i, j]),
                "abs_err": _num(cmp.abs_err[i, j]),
                "rel_err": _num(cmp.rel_err[i, j]),
                "passed": bool(cmp.passed[i, j]),
                "tolerance": _num(report.tolerance_map[i, j]),
            }
        )
    row_sum = float(np.max(np.abs(report.row_sums))) if report.row_sums.size else 0.0
    return {
        "schema": JSON_SCHEMA_ID,
        "schema_version": JSON_SCHEMA_VERSION,
        "tool": {"name": "gradient-explorer", "version": __version__},
        "source": source,
        "shape": [int(n), int(c)],
        "settings": s.to_mapping(),
        "tolerances": {
            "mode": report.tolerance_mode,
            "atol": atol,
            "rtol": rtol,
            "rule": _verdict_rule(report),
            "multiple": NOISE_MULTIPLE,
            "blind": int(np.count_nonzero(report.blind)),
        },
        "loss": {"value": _num(report.loss), "reduction": s.reduction},
        "errors": {
            "max_abs": _num(cmp.max_abs_err),
            "max_rel": _num(cmp.max_rel_err),
            "worst": [int(v) for v in cmp.worst],
            "max_abs_row_sum": _num(row_sum),
        },
        "verdict": {
            "ok": verdict.ok,
            "text": verdict.word,
            "n_failed": int(cmp.n_failed),
            "n_elements": int(cmp.passed.size),
        },
        "worst_cells": cells,
        "notes": _notes(report),
        "user_code": user,
        "timings": timings,
    }


def _run_check(args: argparse.Namespace) -> int:
    from explorer.app.report_text import verdict_of
    from explorer.core import check_gradient

    started = time.perf_counter()
    as_json = args.format == "json"
    say: Callable[[str], None] = (lambda _text: None) if as_json else print
    if args.top < 0:
        raise ValueError(f"--top {args.top} must be >= 0")
    logits, labels, settings, source = _problem(args)
    user = None
    with _quiet_numerics():
        t0 = time.perf_counter()
        if args.loss or args.grad:
            report, user = _user_check(args, logits, labels, settings, say)
        else:
            report = check_gradient(logits, labels, settings)
        check_s = time.perf_counter() - t0
        cmp = report.comparison
        if as_json:
            now = time.perf_counter()
            timings = {"check_s": check_s, "total_s": now - started, "since_start_s": now - _START}
            print(json.dumps(_json_report(report, source, args.top, timings, user), indent=2, allow_nan=False))
            return EXIT_OK if verdict_of(report).ok else EXIT_FAILED
        n, c = report.logits.shape
        print(f"{n} x {c}, {settings.dtype}, {settings.scheme}, eps={settings.eps:g}, "
              f"reduction={settings.reduction}, perturb={settings.perturb}")  # fmt: skip
        print(f"loss {report.loss:.10g}   max |num - ana| {cmp.max_abs_err:.3g}   max relative {cmp.max_rel_err:.3g}")
        print(f"{'sample':>7} {'class':>6} {'analytic':>14} {'numeric':>14} {'abs err':>10} {'rel err':>10}  pass")
        for i, j in worst_cells(report, args.top):
            print(
                f"{i:>7} {j:>6} {float(report.grad_analytic[i, j]):>14.7g} "
                f"{float(report.grad_numeric[i, j]):>14.7g} "
                f"{cmp.abs_err[i, j]:>10.3g} {cmp.rel_err[i, j]:>10.3g}  {'yes' if cmp.passed[i, j] else 'NO'}"
            )
        for note in _notes(report):
            print(f"note: {note}")
    verdict = verdict_of(report)
    print(f"verdict: {verdict.text} with {_verdict_rule(report)}")
    return EXIT_OK if verdict.ok else EXIT_FAILED


def _verdict_rule(report) -> str:  # type: ignore[no-untyped-def]
    """The per-element rule of the verdict in force, in words."""
    from explorer.core import NOISE_MULTIPLE

    if report.tolerance_mode == "noise":
        return (f"|num - ana| <= {NOISE_MULTIPLE:g} x the expected error of the numeric estimate (noise verdict; "
                "--atol/--rtol or --tolerance fixed for gradcheck's rule)")  # fmt: skip
    atol, rtol = report.settings.tolerances
    return f"|num - ana| <= atol + rtol*|ana|, atol={atol:g}, rtol={rtol:g} (fixed tolerances)"


def _run_presets() -> int:
    import textwrap

    from explorer.files.presets import presets

    for p in presets():
        print(f"{p.name}: {p.title}")
        print(textwrap.fill(p.description, width=100, initial_indent="    ", subsequent_indent="    "))
    return EXIT_OK


def _run_export(args: argparse.Namespace) -> int:
    from explorer.core import check_gradient
    from explorer.files.io import export_csv, export_npz

    out = Path(args.out)
    suffix = out.suffix.lower()
    if suffix not in (*PLOT_SUFFIXES, ".csv", ".npz"):
        raise ValueError(
            f"{out.name}: unknown output type {out.suffix or '(none)'}; use .png, .svg, .pdf, .csv or .npz"
        )
    if not out.parent.exists():
        raise ValueError(f"folder {out.parent} does not exist")
    if args.width is not None and not 16 <= args.width <= 20000:
        raise ValueError(f"--width {args.width} is outside 16..20000 pixels")
    if not 10 <= args.dpi <= 2400:
        raise ValueError(f"--dpi {args.dpi:g} is outside 10..2400")
    logits, labels, settings, _source = _problem(args)
    with _quiet_numerics():
        report = check_gradient(logits, labels, settings)
        if suffix == ".csv":
            export_csv(out, report)
        elif suffix == ".npz":
            export_npz(out, report)
        else:
            if not os.environ.get("DISPLAY") and "QT_QPA_PLATFORM" not in os.environ:
                os.environ["QT_QPA_PLATFORM"] = "offscreen"
            from PySide6.QtWidgets import QApplication

            from explorer.gui.plot_export import export_figure

            app = QApplication.instance() or QApplication(sys.argv[:1])
            export_figure(out, report, args.what, width=args.width, dpi=args.dpi)
            del app
    print(f"wrote {out}")
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``gradient-explorer`` and ``python -m explorer``."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        if args.command == "check":
            return _run_check(args)
        if args.command == "export":
            return _run_export(args)
        if args.command == "presets":
            return _run_presets()
        if args.preset is not None:
            from explorer.files.presets import get_preset

            get_preset(args.preset)
    except MemoryError:
        print("gradient-explorer: error: not enough memory for this check (a smaller grid, or a narrower dtype, "
              "needs less)", file=sys.stderr)  # fmt: skip
        return EXIT_BAD_INPUT
    except (_BadInput, ValueError, OSError, _UserFailure) as exc:
        # One line (the user's own traceback follows a _UserFailure's line, as their code's output).
        print(f"gradient-explorer: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    from explorer.gui.app import run

    return run(args, _START)


if __name__ == "__main__":
    sys.exit(main())
