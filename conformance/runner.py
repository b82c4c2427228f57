"""Run one conformance mode against whatever ``pot_impl`` is importable, and report.

``run_mode(model_name, mode, seed) -> ConformanceReport`` is the Python API
(the mutation runner and ``pot audit`` call it through a subprocess whose
``PYTHONPATH`` points at a patched copy); ``python -m conformance.runner``
takes the same arguments as ``pot conform`` and prints the same output.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from conformance.bridge_core import Bridge, BridgeError, ForkableBridge
from conformance.checkout import CheckoutError, project_checkout
from conformance.mutants import run_catalogue
from conformance.replay import ReplayReport, replay, walk
from conformance.stateful import stateful_check
from model_checker.cli import UsageError as ConstantUsageError
from model_checker.cli import parse_constants
from model_checker.model import Model, SpecError
from spec import ledger as spec_ledger
from spec import pbft as spec_pbft
from spec.models import MODELS

MODES = ("replay", "stateful", "trace", "all")
DEFAULT_MODEL = "default"
STATEFUL_EXAMPLES = 50
STATEFUL_STEPS = 40


class UsageError(Exception):
    """Something the user asked for that cannot be run (bad model, missing log); exit status 2."""


SCHEMA = "pot-conform/1"
"""The ``schema`` of ``pot conform --json`` (pot/schemas/conform.schema.json)."""
SUMMARY_WORDS = {"ok": "conforms", "violation": "diverges", "incomplete": "inconclusive"}
"""The verdict (the JSON vocabulary) in the words of the text summary."""


@dataclass
class ConformanceReport:
    """The ``pot conform --json`` object (plus gaps and timing, which the contract does not forbid)."""

    model: str
    mode: str
    steps: int = 0
    transitions_covered: int = 0
    transitions_total: int | None = None
    graph: str | None = None
    """Whose transitions ``transitions_total`` counts: ``symmetry-reduced`` or ``unreduced``."""
    divergences: list[dict[str, Any]] = field(default_factory=list)
    mutants: list[dict[str, Any]] = field(default_factory=list)
    gaps: Counter[tuple[str, str]] = field(default_factory=Counter)
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)
    incomplete_reason: str | None = None
    """Why a run ended without a verdict (trace validation reached a search bound)."""

    @property
    def verdict(self) -> str:
        if self.divergences:
            return "violation"
        return "incomplete" if self.incomplete_reason else "ok"

    @property
    def ok(self) -> bool:
        """Exit-status truth: conforms, and every mutant run was killed."""
        return self.verdict == "ok" and all(m["outcome"] == "killed" for m in self.mutants)

    def to_json(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA,
            "model": self.model,
            "mode": self.mode,
            "verdict": self.verdict,
            "incomplete_reason": self.incomplete_reason,
            "steps": self.steps,
            "transitions_covered": self.transitions_covered,
            "transitions_total": self.transitions_total,
            "graph": self.graph,
            "divergences": self.divergences,
            "mutants": self.mutants,
            "gaps": [
                {"action": action, "reason": reason, "count": count}
                for (action, reason), count in self.gaps.most_common()
            ],
            "seconds": round(self.seconds, 3),
            "notes": self.notes,
        }

    def summary(self) -> str:
        total = "?" if self.transitions_total is None else str(self.transitions_total)
        graph = f" of the {self.graph} graph" if self.graph else ""
        lines = [
            f"{self.model} ({self.mode}): {SUMMARY_WORDS[self.verdict]}, "
            f"{self.steps} spec steps, "
            f"transitions covered {self.transitions_covered}/{total}{graph}, {self.seconds:.1f} s"
        ]
        lines += [f"note: {note}" for note in self.notes]
        for (action, reason), count in self.gaps.most_common():
            lines.append(f"gap ({count}x) {action}: {reason}")
        for divergence in self.divergences:
            lines.append(f"diverges at step {divergence['step']}: {divergence['action']}")
            lines += [f"  {d['field']}: spec {d['spec']}  impl {d['impl']}" for d in divergence["diff"]]
            trace = divergence.get("trace") or []
            if trace:
                lines.append("  spec trace: " + " -> ".join(trace))
        for mutant in self.mutants:
            outcome = {
                "killed": f"killed by {mutant['mode']} after {mutant['steps']} steps",
                "survived": "SURVIVED",
                "undecided": f"UNDECIDED ({mutant['detail']})",
            }[mutant["outcome"]]
            lines.append(f"mutant {mutant['name']}: {outcome}")
        return "\n".join(lines)


# --------------------------------------------------------------------------- models and bridges


def load_model(name: str, constants: dict[str, Any] | None = None) -> Model[Any]:
    """The protocol model registered as ``name`` (spec.models), with ``constants`` overridden."""
    spec = MODELS.get(name)
    if spec is None:
        raise UsageError(f"unknown model {name!r}; known: {', '.join(sorted(MODELS))}")
    try:
        return spec.instantiate(constants or {})
    except SpecError as error:
        raise UsageError(f"model {name}: {error}") from None


def bridge_for(model: Model[Any]) -> Bridge:
    """The bridge for the model's layer: its initial state's type says which."""
    initial = next(iter(model.init()))
    if isinstance(initial, spec_ledger.LedgerState):
        from conformance.bridge_ledger import LedgerBridge

        return LedgerBridge(model)
    if isinstance(initial, spec_pbft.State):
        from conformance.bridge_pbft import PbftBridge

        return PbftBridge(model)
    raise UsageError(f"model {model.name}: no bridge for states of type {type(initial).__name__}")


# --------------------------------------------------------------------------- modes


def replay_model(
    model: Model[Any], budget_s: float | None = None, workers: int = 1, stop_at_first: bool = True
) -> ReplayReport:
    """Mode 1 on ``model``: the graph walk where the bridge can fork its implementation (PBFT and
    combined models; with the model's symmetry), else replay of a transition cover (ledger)."""
    bridge = bridge_for(model)
    if isinstance(bridge, ForkableBridge):
        return walk(model, bridge, workers=workers, budget_s=budget_s, stop_at_first=stop_at_first)
    return replay(model, bridge, budget_s=budget_s, stop_at_first=stop_at_first)


def _run_replay(model: Model[Any], report: ConformanceReport, budget_s: float | None, workers: int) -> None:
    result = replay_model(model, budget_s, workers)
    report.transitions_total = result.transitions_total
    report.graph = result.graph
    report.steps += result.steps
    report.transitions_covered = result.transitions_covered
    report.divergences += [d.to_json() for d in result.divergences]
    report.gaps.update(result.gaps)
    if result.out_of_budget:
        report.notes.append(f"replay stopped after its {budget_s} s budget: coverage is partial")


def _run_stateful(model: Model[Any], report: ConformanceReport, seed: int, examples: int) -> None:
    result = stateful_check(
        model, bridge_for(model), examples=examples, steps=STATEFUL_STEPS, seed_value=seed
    )
    report.steps += result.steps
    if report.transitions_total is None:
        report.transitions_covered = max(report.transitions_covered, len(result.transitions))
    if result.divergence is not None:
        report.divergences.append(result.divergence.to_json())
    elif result.failure:
        report.divergences.append({"step": 0, "action": "stateful", "diff": [], "trace": [result.failure]})
    report.gaps.update(result.gaps)


def _run_trace(report: ConformanceReport, log_dir: Path | None) -> None:
    if log_dir is None:
        raise UsageError("--mode trace needs --log DIR (a `pot cluster` directory)")
    try:
        from conformance.trace import TraceInputError, validate_directory
    except ImportError as missing:
        raise UsageError(f"trace validation is not available: {missing}") from None
    try:
        result = validate_directory(log_dir)
    except (TraceInputError, SpecError) as error:
        raise UsageError(f"--log {log_dir}: {error}") from None
    report.steps += result.spec_steps
    if result.inconclusive:
        report.incomplete_reason = f"trace validation reached a search bound after {result.matched} events"
    elif not result.conforms:
        unmatched = result.unmatched
        why = "no spec behaviour explains it"
        report.divergences.append(
            {
                "step": unmatched.index if unmatched else result.matched,
                "action": unmatched.event.describe() if unmatched else "trace",
                "diff": [{"field": "event", "spec": why, "impl": unmatched.reason if unmatched else ""}],
                "trace": result.path,
            }
        )


def run_mode(
    model_name: str,
    mode: str,
    seed: int = 0,
    *,
    log_dir: Path | None = None,
    budget_s: float | None = None,
    examples: int = STATEFUL_EXAMPLES,
    workers: int = 1,
    constants: dict[str, Any] | None = None,
) -> ConformanceReport:
    """Run ``mode`` (replay, stateful, trace or all) of the suite on the registered model ``model_name``
    (with ``constants`` overridden, as ``pot check --const`` does).

    ``all`` runs replay and stateful, and trace validation when ``log_dir`` is given. Raises
    ``UsageError`` for what the caller must fix (unknown model or mode, trace without a log)."""
    if mode not in MODES:
        raise UsageError(f"unknown mode {mode!r}; modes: {', '.join(MODES)}")
    started = time.perf_counter()
    report = ConformanceReport(model_name, mode)
    if mode == "trace":
        _run_trace(report, log_dir)
    else:
        model = load_model(model_name, constants)
        if constants:
            report.notes.append("constants: " + " ".join(f"{k}={v!r}" for k, v in constants.items()))
        try:
            if mode in ("replay", "all"):
                _run_replay(model, report, budget_s, workers)
            if mode in ("stateful", "all") and not report.divergences:
                _run_stateful(model, report, seed, examples)
        except BridgeError as error:
            raise UsageError(f"model {model_name}: {error}") from None
        if mode == "all" and log_dir is not None and not report.divergences:
            _run_trace(report, log_dir)
    report.seconds = time.perf_counter() - started
    return report


def benchmark_replay(
    model_name: str, budget_s: float | None = None, workers: int = 1, stop_at_first: bool = True
) -> dict[str, Any]:
    """Replay figures for benchmarks/bench_conformance.py: which graph and how many of its
    transitions were covered, implementation steps per second, exploration (and cover) time, and
    the time to full transition coverage (None when some transition stayed uncovered: gaps,
    divergences or the budget)."""
    result = replay_model(load_model(model_name), budget_s, workers, stop_at_first)
    full = result.transitions_covered == result.transitions_total and result.conforms and result.complete
    return {
        "model": model_name,
        "driver": "walk" if result.states else "behaviours",
        "graph": result.graph,
        "workers": workers,
        "transitions_total": result.transitions_total,
        "transitions_covered": result.transitions_covered,
        "states_expanded": result.states,
        "behaviours": result.behaviours,
        "steps": result.steps,
        "explore_seconds": result.explore_seconds,
        "seconds": result.seconds,
        "steps_per_second": result.steps / max(result.seconds - result.explore_seconds, 1e-9),
        "seconds_to_full_coverage": result.seconds if full else None,
        "complete": result.complete,
        "divergences": len(result.divergences),
        "gaps": sum(result.gaps.values()),
    }


def _mutants_checkout() -> None:
    """--mutants judges the checkout of the current directory: refuse before any run when there is none."""
    try:
        project_checkout()
    except CheckoutError as error:
        raise UsageError(f"--mutants: {error}") from None


def run_mutant_catalogue(report: ConformanceReport, model_name: str, seed: int) -> None:
    """``--mutants``: the trace & mutants engineer's catalogue (conformance.mutants), on this model."""
    try:
        results, calibration = run_catalogue(model=model_name, seed=seed)
    except CheckoutError as error:
        raise UsageError(f"--mutants: {error}") from None
    report.notes += [f"mutation mode {name} not used: {why}" for name, why in calibration.skipped.items()]
    report.mutants += [
        {
            "name": result.name,
            "outcome": result.outcome,
            "mode": result.mode,
            "steps": result.steps,
            "detail": result.detail,
        }
        for result in results
    ]


# --------------------------------------------------------------------------- command line


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The arguments of ``pot conform`` (also ``python -m conformance.runner``)."""
    parser.add_argument(
        "model", nargs="?", default=DEFAULT_MODEL, help=f"registered model (default {DEFAULT_MODEL})"
    )
    parser.add_argument("--mode", choices=MODES, default="all", help="which way to drive the implementation")
    parser.add_argument(
        "--const", action="append", default=[], metavar="NAME=VALUE", help="override a model constant"
    )
    parser.add_argument("--log", type=Path, help="cluster directory whose event logs --mode trace validates")
    parser.add_argument("--mutants", action="store_true", help="also run the mutation catalogue")
    parser.add_argument("--seed", type=int, default=0, help="seed of the stateful mode (and the mutants)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument(
        "--budget", type=_positive_seconds, help="stop replay after this many seconds (partial coverage)"
    )
    parser.add_argument(
        "--examples", type=_positive, default=STATEFUL_EXAMPLES, help="stateful scenarios to run"
    )
    parser.add_argument(
        "--workers",
        type=_positive,
        default=os.cpu_count() or 1,
        help="processes sharing out the replay's graph walk (PBFT, combined models); default: one per core",
    )


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive whole number, got {text}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text}")
    return value


def _positive_seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {text}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a positive number of seconds, got {text}")
    return value


def conform_command(
    args: argparse.Namespace, write_html: Callable[[dict[str, Any]], None] | None = None
) -> int:
    """Run ``pot conform``; 0 conforms (all mutants killed), 1 otherwise, 2 on usage errors.
    ``write_html`` writes the report's page (``--html``)."""
    try:
        if args.mutants:
            _mutants_checkout()
        try:
            constants = parse_constants(args.const)
        except ConstantUsageError as error:
            raise UsageError(str(error)) from None
        report = run_mode(
            args.model,
            args.mode,
            args.seed,
            log_dir=args.log,
            budget_s=args.budget,
            examples=args.examples,
            workers=args.workers,
            constants=constants,
        )
        if args.mutants:
            run_mutant_catalogue(report, args.model, args.seed)
    except UsageError as error:
        if args.json:
            print(json.dumps({"schema": SCHEMA, "verdict": "error", "error": str(error)}))
        print(f"pot conform: {error}", file=sys.stderr)
        return 2
    print(json.dumps(report.to_json()) if args.json else report.summary())
    if write_html is not None:
        write_html(report.to_json())
    return 0 if report.ok else 1


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m conformance.runner", description=__doc__)
    add_arguments(parser)
    return conform_command(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
