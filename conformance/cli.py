"""Subcommands of `pot` provided by `conformance`: `pot conform` and `pot audit`."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from typing import Any

from conformance import audit as audit_module
from conformance import runner
from conformance.audit import add_arguments as add_audit_arguments
from conformance.audit import audit_command
from conformance.runner import add_arguments as add_conform_arguments
from conformance.runner import conform_command

HtmlWriter = Callable[[dict[str, Any]], None]
HtmlReport = Callable[[str], HtmlWriter]
"""Behind ``--html FILE``: given FILE, checks that it can be written (a ValueError says why) and
returns the function that writes a run's JSON document there as one HTML page."""


def register(sub: argparse._SubParsersAction[Any], html: HtmlReport | None = None) -> None:
    """Add this package's subcommands to `pot`; ``html``, when given, is the `--html` writer."""
    conform = sub.add_parser(
        "conform",
        help="run the conformance suite: the spec drives the real implementation",
        description="Drive the implementation from the spec (replay of a transition cover, stateful "
        "testing, trace validation of a cluster's logs) and compare abstract(implementation) with the "
        "spec state after every step. Exit 0 when it conforms, 1 otherwise, 2 on usage errors.",
    )
    add_conform_arguments(conform)
    conform.set_defaults(run=_with_html(conform, conform_command, html, runner.SCHEMA))
    audit = sub.add_parser(
        "audit",
        help="judge an implementation change by running the conformance suite on it",
        description="Apply a git revision or a patch to a temporary copy of the repository, run the "
        "fast conformance tier against that copy, and accept or reject the change.",
    )
    add_audit_arguments(audit)
    audit.set_defaults(run=_with_html(audit, audit_command, html, audit_module.SCHEMA))


def _with_html(
    parser: argparse.ArgumentParser,
    command: Callable[[argparse.Namespace, HtmlWriter | None], int],
    html: HtmlReport | None,
    schema: str,
) -> Callable[[argparse.Namespace], int]:
    """``command`` as `pot` runs it: with ``--html FILE`` when there is a writer, FILE checked
    before the run (a usage error, exit 2, like the command's own)."""
    if html is None:
        return lambda args: command(args, None)
    parser.add_argument("--html", metavar="FILE", help="also write the run's report as one HTML page")

    def run(args: argparse.Namespace) -> int:
        try:
            write_html = None if args.html is None else html(args.html)
        except ValueError as error:
            message = f"--html {error}"
            if args.json:
                print(json.dumps({"schema": schema, "verdict": "error", "error": message}))
            print(f"{parser.prog}: {message}", file=sys.stderr)
            return 2
        return command(args, write_html)

    return run
