"""``python -m conformance.mutants.probe MODE CASES...``: one conformance mode, run inside a (patched) copy.

The mutation runner starts this in a subprocess whose ``PYTHONPATH`` is the
copy, so whatever ``pot_impl`` it imports is the mutant. It prints one JSON
object: the ``pot_impl`` it actually imported (the runner checks it is the
copy's) and, per case, whether the implementation conformed, how many events
it got through and why it failed.

Modes:
* ``sim-trace``: cases are seeds of the crash-only simulator scenarios; each
  run passes the simulator's own checks and trace validation against the spec.
* ``sim-adversary``: cases are ``ADVERSARY:SEED``; a fault-free simulation with
  one of ``conformance.trace.sim.ADVERSARIES`` as the first primary, checked
  the same way.
* ``new-view-plan``: cases are seeds; ``PLAN_TRIALS`` random V sets on which
  the implementation's O must equal the spec's (``plan_differential``).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from typing import Any

import pot_impl
from conformance.mutants.plan_differential import compare
from conformance.trace.sim import SimCheck, check_adversary, check_seed


def _sim_outcome(case: str, check: SimCheck) -> dict[str, Any]:
    trace = check.trace
    reasons = list(check.violations)
    if trace.unmatched is not None:
        reasons.append(f"trace: event {trace.unmatched.event.describe()}: {trace.unmatched.reason}")
    # An inconclusive trace (a search bound reached) is no evidence against the implementation.
    ok = not check.violations and trace.verdict != "diverges"
    return {"case": case, "ok": ok, "steps": trace.matched, "detail": "; ".join(reasons)[:500]}


def _sim_trace(case: str) -> dict[str, Any]:
    return _sim_outcome(case, check_seed(int(case)))


def _sim_adversary(case: str) -> dict[str, Any]:
    adversary, _, seed = case.rpartition(":")
    return _sim_outcome(case, check_adversary(int(seed), adversary))


def _new_view_plan(case: str) -> dict[str, Any]:
    agreed, mismatch = compare(PLAN_TRIALS, int(case))
    detail = (
        ""
        if mismatch is None
        else f"V #{mismatch.trial}: spec (min-s, O) {mismatch.spec}, impl {mismatch.impl}"
    )
    return {"case": case, "ok": mismatch is None, "steps": agreed, "detail": detail[:500]}


PLAN_TRIALS = 500
PROBES: dict[str, Callable[[str], dict[str, Any]]] = {
    "sim-trace": _sim_trace,
    "sim-adversary": _sim_adversary,
    "new-view-plan": _new_view_plan,
}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m conformance.mutants.probe", description=__doc__)
    parser.add_argument("mode", choices=sorted(PROBES))
    parser.add_argument("cases", nargs="+")
    parser.add_argument("--stop-at-first", action="store_true", help="stop after the first failing case")
    args = parser.parse_args(argv)
    probe = PROBES[args.mode]
    results = []
    for case in args.cases:
        try:
            outcome = probe(case)
        except Exception as exc:  # a mutant may crash the implementation: that is a detection too
            outcome = {"case": case, "ok": False, "steps": 0, "detail": f"raised {type(exc).__name__}: {exc}"}
        results.append(outcome)
        if args.stop_at_first and not outcome["ok"]:
            break
    print(json.dumps({"pot_impl": pot_impl.__file__, "results": results}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
