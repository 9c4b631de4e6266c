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
import math
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from explorer import __version__

__all__ = ["EXIT_BAD_INPUT", "EXIT_FAILED", "EXIT_OK", "build_parser", "main"]

_START = time.perf_counter()

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT = 0, 1, 2
PLOT_SUFFIXES = (".png", ".svg", ".pdf")
PLOT_WHATS = ("dashboard", "analytic", "numeric", "error", "sweep")


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


def _add_inputs(p: argparse.ArgumentParser) -> None:
    from explorer.core import DTYPE_NAMES, REDUCTIONS, SCHEME_NAMES

    src = p.add_mutually_exclusive_group()
    src.add_argument("--preset", metavar="NAME", help="a shipped problem (default: origin)")
    src.add_argument("--logits", metavar="FILE", help="logits from .npy, .npz, .csv, .tsv or .txt")
    src.add_argument("--session", metavar="FILE", help="a session file saved by the window")
    p.add_argument("--labels", metavar="FILE", help="labels from a second file (with --logits)")
    p.add_argument("--labels-column", metavar="NAME", help="labels from a named CSV/TSV column (with --logits)")
    p.add_argument("--eps", type=_positive_float, help="the step (default: the preset's, or the scheme's default)")
    p.add_argument("--scheme", choices=SCHEME_NAMES, help="difference scheme")
    p.add_argument("--dtype", choices=DTYPE_NAMES, help="precision of the check")
    p.add_argument("--reduction", choices=REDUCTIONS, help="loss reduction")
    p.add_argument("--label-smoothing", type=_nonneg_float, help="label smoothing in [0, 1]")
    p.add_argument("--perturb", choices=("element", "row", "all"), help="pitfall modes: row or all at once")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="gradient-explorer",
        description=(
            "Gradient Explorer: edit logits and labels, and see where the finite-difference gradient of "
            "softmax cross-entropy agrees with the analytic one, and why it does not. Without a command, "
            "opens the window."
        ),
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("--preset", metavar="NAME", help="start the window with a preset (origin, uniform, ...)")
    parser.add_argument("--no-restore", action="store_true", help="ignore the settings saved by the last run")
    parser.add_argument("--quit-after-first-draw", action="store_true", help=argparse.SUPPRESS)
    sub = parser.add_subparsers(dest="command", metavar="{check,export}")
    check = sub.add_parser(
        "check",
        help="print the worst cells and a verdict; exit 0 if every element passes, 1 if not, 2 on bad input",
        description="Compare the numeric and analytic gradients without a window. "
        "Exit code 0: pass, 1: fail, 2: bad input.",
    )
    _add_inputs(check)
    check.add_argument("--atol", type=_nonneg_float, help="absolute tolerance (default: per dtype)")
    check.add_argument("--rtol", type=_nonneg_float, help="relative tolerance (default: per dtype)")
    check.add_argument("--top", type=int, default=5, help="worst cells to list (default 5)")
    check.add_argument("--loss", metavar="FILE:FUNC", help="check your own code: its loss(logits, labels) ...")
    check.add_argument("--grad", metavar="FILE:FUNC", help="... against its grad(logits, labels)")
    check.add_argument("--timeout", type=_positive_float, default=10.0, help="seconds your code may take (default 10)")
    export = sub.add_parser(
        "export",
        help="write a plot (PNG, SVG, PDF) or the data (CSV, NPZ), by OUT's suffix",
        description="Write a plot (PNG, SVG, PDF) or the data (CSV, NPZ) without a window, by OUT's suffix.",
    )
    export.add_argument("out", metavar="OUT", help="output file: .png, .svg, .pdf, .csv or .npz")
    _add_inputs(export)
    export.add_argument("--what", choices=PLOT_WHATS, default="dashboard", help="which plot (default: dashboard)")
    export.add_argument("--width", type=int, default=1600, help="PNG width in pixels (default 1600)")
    for sp in (check, export):
        sp.error = parser.error  # type: ignore[method-assign]
    return parser


def _problem(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    """Logits, labels and CheckSettings from the input flags (raises ValueError with a message)."""
    import numpy as np

    from explorer.core import CheckSettings, default_eps
    from explorer.files.io import load_logits, load_session
    from explorer.files.presets import get_preset

    overrides = {
        k: getattr(args, k)
        for k in ("eps", "scheme", "dtype", "reduction", "label_smoothing", "perturb")
        if getattr(args, k, None) is not None
    }
    for k in ("atol", "rtol"):
        if getattr(args, k, None) is not None:
            overrides[k] = getattr(args, k)
    if args.session:
        s = load_session(args.session)
        logits, labels, base = s.logits, s.labels, dict(vars(s.settings))
    elif args.logits:
        logits, labels = load_logits(args.logits, labels_path=args.labels, labels_column=args.labels_column)
        if labels is None:
            raise ValueError("no labels: give --labels FILE, --labels-column NAME, or an NPZ with a 'labels' entry")
        base = {"reduction": "sum"}
    else:
        if args.labels or args.labels_column:
            raise ValueError("--labels and --labels-column go with --logits")
        p = get_preset(args.preset or "origin")
        logits, labels, base = p.logits, p.labels, dict(p.settings)
    if not np.all(np.isfinite(logits)):
        raise ValueError("the logits contain values that are not finite numbers")
    merged = {**base, **overrides}
    if "eps" not in merged:
        merged["eps"] = default_eps(merged.get("scheme", "central"), merged.get("dtype", "float64"))
    weight = merged.get("weight")
    if weight is not None:
        merged["weight"] = tuple(weight)
    return logits, labels, CheckSettings(**merged)


def _user_check(args: argparse.Namespace, logits, labels, settings):  # type: ignore[no-untyped-def]
    """Run the user's functions; returns the Report to print (their gradient as the analytic one)."""
    from explorer.usercode.runner import UserCode, UserCodeError, builtin_difference, run_user_check, user_report

    if not (args.loss and args.grad):
        raise ValueError("--loss and --grad go together: give both as FILE:FUNCTION")
    code = UserCode.from_spec(args.loss, args.grad)
    try:
        result = run_user_check(code, logits, labels, settings.eps, settings.scheme, args.timeout)
    except UserCodeError as exc:
        details = f"\n{exc.details.rstrip()}" if exc.details and exc.kind == "exception" else ""
        raise _UserFailure(f"{code.filename}: {exc.message}{details}") from None
    print(f"your code: {code.filename}, loss={code.loss_name}, grad={code.grad_name}, labels passed as "
          f"{result.labels_shape}, {result.duration_s:.2f} s")  # fmt: skip
    print(
        f"whole-matrix quotient (L(x + eps) - L(x)) / eps = {result.whole_matrix_quotient:.3g} "
        "(about 0 by shift invariance: not a gradient)"
    )
    if labels.ndim == 1:
        print(f"max |your grad - built-in gradient ({settings.reduction})| = "
              f"{builtin_difference(result, logits, labels, settings):.3g}")  # fmt: skip
    return user_report(result, logits, labels, settings)


class _UserFailure(Exception):
    pass


def _run_check(args: argparse.Namespace) -> int:
    import numpy as np

    from explorer.core import check_gradient

    logits, labels, settings = _problem(args)
    if args.loss or args.grad:
        report = _user_check(args, logits, labels, settings)
    else:
        report = check_gradient(logits, labels, settings)
    cmp = report.comparison
    atol, rtol = settings.tolerances
    n, c = report.logits.shape
    print(f"{n} x {c}, {settings.dtype}, {settings.scheme}, eps={settings.eps:g}, reduction={settings.reduction}, "
          f"perturb={settings.perturb}")  # fmt: skip
    print(f"loss {report.loss:.10g}   max |num - ana| {cmp.max_abs_err:.3g}   max relative {cmp.max_rel_err:.3g}")
    margin = np.where(np.isnan(cmp.abs_err), np.inf, cmp.abs_err - rtol * np.abs(report.grad_analytic.astype(float)))
    order = np.argsort(margin, axis=None)[::-1][: max(0, args.top)]
    print(f"{'sample':>7} {'class':>6} {'analytic':>14} {'numeric':>14} {'abs err':>10} {'rel err':>10}  pass")
    for flat in order:
        i, j = np.unravel_index(flat, cmp.abs_err.shape)
        print(
            f"{i:>7} {j:>6} {float(report.grad_analytic[i, j]):>14.7g} {float(report.grad_numeric[i, j]):>14.7g} "
            f"{cmp.abs_err[i, j]:>10.3g} {cmp.rel_err[i, j]:>10.3g}  {'yes' if cmp.passed[i, j] else 'NO'}"
        )
    verdict = "PASS" if cmp.ok else f"FAIL ({cmp.n_failed} of {cmp.passed.size} elements)"
    print(f"verdict: {verdict} with |num - ana| <= atol + rtol*|ana|, atol={atol:g}, rtol={rtol:g}")
    return EXIT_OK if cmp.ok else EXIT_FAILED


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
    if args.width < 16 or args.width > 20000:
        raise ValueError(f"--width {args.width} is outside 16..20000 pixels")
    logits, labels, settings = _problem(args)
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
        export_figure(out, report, args.what, width=args.width)
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
        if args.preset is not None:
            from explorer.files.presets import get_preset

            get_preset(args.preset)
    except _BadInput as exc:
        print(f"gradient-explorer: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except (ValueError, OSError) as exc:
        print(f"gradient-explorer: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except _UserFailure as exc:  # the user's own traceback follows the one-line error
        print(f"gradient-explorer: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    from explorer.gui.app import run

    return run(args, _START)


if __name__ == "__main__":
    sys.exit(main())
