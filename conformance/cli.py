"""Subcommands of `pot` provided by `conformance`: `pot conform` and `pot audit`."""

from __future__ import annotations

import argparse
from typing import Any

from conformance.audit import add_arguments as add_audit_arguments
from conformance.audit import audit_command
from conformance.runner import add_arguments as add_conform_arguments
from conformance.runner import conform_command


def register(sub: argparse._SubParsersAction[Any]) -> None:
    """Add this package's subcommands to `pot`."""
    conform = sub.add_parser(
        "conform",
        help="run the conformance suite: the spec drives the real implementation",
        description="Drive the implementation from the spec (replay of a transition cover, stateful "
        "testing, trace validation of a cluster's logs) and compare abstract(implementation) with the "
        "spec state after every step. Exit 0 when it conforms, 1 otherwise, 2 on usage errors.",
    )
    add_conform_arguments(conform)
    conform.set_defaults(run=conform_command)
    audit = sub.add_parser(
        "audit",
        help="judge an implementation change by running the conformance suite on it",
        description="Apply a git revision or a patch to a temporary copy of the repository, run the "
        "fast conformance tier against that copy, and accept or reject the change.",
    )
    add_audit_arguments(audit)
    audit.set_defaults(run=audit_command)
