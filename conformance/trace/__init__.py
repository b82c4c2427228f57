"""Trace validation (conformance mode 3): the event logs of a real run checked against the spec.

``validate_directory(path)`` reads a cluster directory and returns a
``TraceReport``; ``python -m conformance.trace DIR [--json]`` does the same
from the shell.
"""

from __future__ import annotations

from pathlib import Path

from conformance.trace.observed import Observed, RunLogs, TraceInputError, load_cluster_run, load_logs
from conformance.trace.validate import TraceReport, TraceValidator, Unmatched, validate_run


def validate_directory(directory: Path, max_expansions: int | None = None) -> TraceReport:
    """Validate the run recorded in a cluster directory (raises ``TraceInputError`` if unreadable)."""
    run = load_cluster_run(directory)
    return validate_run(run) if max_expansions is None else validate_run(run, max_expansions)


__all__ = [
    "Observed",
    "RunLogs",
    "TraceInputError",
    "TraceReport",
    "TraceValidator",
    "Unmatched",
    "load_cluster_run",
    "load_logs",
    "validate_directory",
    "validate_run",
]
