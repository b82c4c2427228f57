"""Entry point of the ``pot`` console command."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from importlib import resources
from typing import NoReturn

import conformance.cli
import model_checker.cli
import pot_impl.cli
import report.cli
import spec.cli
from pot import __version__
from pot.registry import all_models

SCHEMAS = ("check", "conform", "audit", "prove", "models", "status")
"""The commands whose --json output has a schema in pot/schemas/."""


def build_parser() -> argparse.ArgumentParser:
    """The full command tree; each package adds its own subcommands."""
    parser = _Parser(
        prog="pot",
        description="Verification suite for the Proof-of-Training protocol.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    model_checker.cli.register(sub, all_models, html=report.cli.html_report)
    spec.cli.register(sub)
    pot_impl.cli.register(sub)
    conformance.cli.register(sub, html=report.cli.html_report)
    report.cli.register(sub)
    schema = sub.add_parser(
        "schema",
        help="print the JSON Schema of a command's --json output",
        description="Print the versioned JSON Schema (draft 2020-12) that a command's --json output follows.",
    )
    schema.add_argument("name", choices=SCHEMAS, metavar="COMMAND", help=", ".join(SCHEMAS))
    schema.set_defaults(run=_print_schema)
    return parser


class _Parser(argparse.ArgumentParser):
    """Command-line mistakes exit 2 with usage, as argparse's do; with ``--json``, the command's
    error document goes to stdout too, so a script reading JSON gets JSON."""

    json_schema: str | None = None
    """Set by ``main`` when the command line asks for JSON from a command that has a schema."""

    def error(self, message: str) -> NoReturn:
        if _Parser.json_schema is not None:
            error = f"{self.prog}: {message}"
            print(json.dumps({"schema": _Parser.json_schema, "verdict": "error", "error": error}))
        super().error(message)


def _print_schema(args: argparse.Namespace) -> int:
    print(resources.files("pot").joinpath("schemas", f"{args.name}.schema.json").read_text("utf-8"), end="")
    return 0


def _schema_name(command: str) -> str:
    """``pot-COMMAND/VERSION``, the version read from the schema the package ships."""
    text = resources.files("pot").joinpath("schemas", f"{command}.schema.json").read_text("utf-8")
    return f"pot-{command}/{json.loads(text)['$id'].rsplit(':', 1)[1]}"


def main(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv`` and run the chosen command; returns the exit status."""
    words = list(sys.argv[1:] if argv is None else argv)
    command = next((word for word in words if not word.startswith("-")), None)
    _Parser.json_schema = _schema_name(command) if "--json" in words and command in SCHEMAS else None
    args = build_parser().parse_args(words)
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
