"""Command line: parses arguments before importing Qt, so ``--help`` works without a display."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence

from explorer import __version__

__all__ = ["build_parser", "main"]

_START = time.perf_counter()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gradient-explorer",
        description=(
            "Gradient Explorer: edit logits and labels, and see where the finite-difference gradient of "
            "softmax cross-entropy agrees with the analytic one, and why it does not."
        ),
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("--preset", metavar="NAME", help="start with a preset (origin, uniform, confident_wrong, ...)")
    parser.add_argument(
        "--no-restore", action="store_true", help="ignore the settings and window layout saved by the last run"
    )
    parser.add_argument("--quit-after-first-draw", action="store_true", help=argparse.SUPPRESS)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``gradient-explorer`` and ``python -m explorer``."""
    args = build_parser().parse_args(argv)
    if args.preset is not None:
        from explorer.problems import get_preset

        try:
            get_preset(args.preset)
        except ValueError as exc:
            print(f"gradient-explorer: error: {exc}", file=sys.stderr)
            return 2
    from explorer.gui.app import run

    return run(args, _START)


if __name__ == "__main__":
    sys.exit(main())
