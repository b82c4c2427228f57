"""Real documents for the report tests: `pot check --json` runs with a safety trace and a lasso."""

from __future__ import annotations

import contextlib
import io
import json
from typing import Any

import pytest

from pot.cli import main

SAFETY = ["check", "pbft", "--const", "bug=commit_at_f_plus_1", "--no-deadlock", "--workers", "1"]
"""A planted PBFT bug: Agreement fails on an 11-state trace."""
LASSO = ["check", "mutex", "--const", "enter=weak", "--no-deadlock"]
"""Weak fairness on Enter: WaitingLeadsToCritical fails on a lasso."""


def pot_json(argv: list[str]) -> dict[str, Any]:
    """The one JSON object `pot ARGV --json` prints."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        main([*argv, "--json"])
    document: dict[str, Any] = json.loads(out.getvalue())
    return document


@pytest.fixture(scope="session")
def safety_check() -> dict[str, Any]:
    document = pot_json(SAFETY)
    assert document["verdict"] == "violation" and document["counterexample"]["states"]
    return document


@pytest.fixture(scope="session")
def lasso_check() -> dict[str, Any]:
    document = pot_json(LASSO)
    assert document["verdict"] == "violation" and "loop" in document["counterexample"]
    return document
