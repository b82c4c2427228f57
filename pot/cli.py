"""Entry point of the ``pot`` console command."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

import conformance.cli
import model_checker.cli
import pot_impl.cli
import spec.cli
from pot.registry import all_models


def build_parser() -> argparse.ArgumentParser:
    """The full command tree; each package adds its own subcommands."""
    parser = argparse.ArgumentParser(
        prog="pot",
        description="Verification suite for the Proof-of-Training protocol.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    model_checker.cli.register(sub, all_models)
    spec.cli.register(sub)
    pot_impl.cli.register(sub)
    conformance.cli.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv`` and run the chosen command; returns the exit status."""
    args = build_parser().parse_args(argv)
    try:
        status: int = args.run(args)
    except KeyboardInterrupt:
        print("pot: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader (e.g. `| head`) went away: stop quietly, as Unix tools do.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    return status


if __name__ == "__main__":
    sys.exit(main())
