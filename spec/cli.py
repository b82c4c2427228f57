"""Subcommands of `pot` provided by `spec`: prove."""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict
from typing import Any

from spec.prove import Outcome, prove_all

SCHEMA = "pot-prove/1"
"""The ``schema`` of ``pot prove --json`` (pot/schemas/prove.schema.json)."""


def register(sub: argparse._SubParsersAction[Any]) -> None:
    """Add this package's subcommands to `pot`."""
    parser = sub.add_parser(
        "prove",
        help="prove the quorum facts for every f >= 1 and n >= 3f+1 with z3",
        description="Prove with z3, for all f >= 1 and n >= 3f + 1 (unbounded), the quorum facts the "
        "spec's invariants rely on, using the spec's own threshold functions (spec/quorum.py). "
        "Exit 0 when every fact is proved, 1 with a counterexample (n, f) otherwise.",
    )
    parser.add_argument("--json", action="store_true", help="print a JSON report instead of text")
    parser.set_defaults(run=run_prove)


def run_prove(args: argparse.Namespace) -> int:
    """Prove every fact; print text or JSON; 0 when all hold."""
    outcomes = prove_all()
    verdict = prove_verdict(outcomes)
    if args.json:
        report = {"schema": SCHEMA, "verdict": verdict, "facts": [asdict(o) for o in outcomes]}
        print(json.dumps(report, indent=2))
    else:
        for o in outcomes:
            if o.proved:
                print(f"PROVED  {o.name}  [{o.domain}]: {o.doc}")
            elif o.counterexample is not None:
                witness = ", ".join(f"{k} = {v}" for k, v in o.counterexample.items())
                print(f"FAILED  {o.name}  [{o.domain}]: {o.doc}\n        counterexample: {witness}")
            else:
                print(f"UNKNOWN {o.name}  [{o.domain}]: {o.doc}\n        z3: {o.unknown}")
        failed = sum(not o.proved for o in outcomes)
        print(f"{len(outcomes) - failed} of {len(outcomes)} facts proved for all n, f in their domains")
    return 0 if verdict == "ok" else 1


def prove_verdict(outcomes: list[Outcome]) -> str:
    """``violation`` if a fact has a counterexample, ``incomplete`` if z3 left one undecided, else ``ok``."""
    if any(o.counterexample is not None for o in outcomes):
        return "violation"
    return "ok" if all(o.proved for o in outcomes) else "incomplete"
