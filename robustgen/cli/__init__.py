"""``robustgen`` command line, one module per command: the only place that prints or exits."""

from __future__ import annotations

import argparse
import sys
import warnings

from ..checkpoint import CheckpointError
from ..data import DataError
from ..runs import RunError
from ..training.config import ConfigError
from . import attack, compare, detect, eval, export, models, reproduce, train

EXIT_USAGE = 2
COMMANDS = {m.__name__.rsplit(".", 1)[1]: m for m in (train, eval, attack, detect, compare, export, models, reproduce)}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="robustgen", description=(
        "Style-memory networks (Wiyatno & Orchard, 2018): train a generative classifier, "
        "detect adversarial inputs, reproduce the paper."))
    sub = parser.add_subparsers(dest="command", required=True)
    for module in COMMANDS.values():
        module.add_parser(sub)
    return parser


def _warning_printer(command: str):
    """showwarning for the CLI: robustgen's own warnings as one plain line, others as Python prints them."""
    from ..detectors.detector import ThresholdTieWarning

    default = warnings.showwarning

    def show(message, category, filename, lineno, file=None, line=None):
        if issubclass(category, ThresholdTieWarning):
            print(f"robustgen {command}: warning: {message}", file=sys.stderr)
        else:
            default(message, category, filename, lineno, file, line)

    return show


def main(argv: list[str] | None = None) -> int:
    try:  # a bad option value: argparse has printed the usage and a one-line error naming it
        args = build_parser().parse_args(argv)
    except SystemExit as e:
        return e.code if isinstance(e.code, int) else EXIT_USAGE
    try:
        with warnings.catch_warnings():
            warnings.showwarning = _warning_printer(args.command)
            return COMMANDS[args.command].run(args)
    except (ConfigError, DataError, CheckpointError, RunError, ValueError, FileNotFoundError, FileExistsError) as e:
        print(f"robustgen {args.command}: error: {e}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        hint = " (resume training with `robustgen train --resume RUN`)" if args.command == "train" else ""
        print(f"robustgen {args.command}: interrupted{hint}", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
