"""Conformance figures: trace validation per event, replay throughput and coverage, time to kill mutants.

Run: ``.venv/bin/python -m benchmarks.bench_conformance [--quick] [--sections trace replay mutants]
[--workers N]``. Prints a table and writes ``benchmarks/results/bench_conformance.json``: the
sections run replace theirs, the others keep the figures of the run that measured them.

* Trace validation: a real 4-replica cluster run with a crash and restart of the primary and
  of a backup (``conformance.trace.scenarios``), validated against the spec; and crash-only
  simulator runs. Reported as microseconds per event, and as the ratio of validation time to
  the time the run took to produce the events (ANCHORS.md has no trace-validation figure).
* Replay: ``conformance.runner.benchmark_replay`` on ``ledger-tiny`` (replay of a transition
  cover), ``tiny``, ``pbft-tiny`` and ``default`` (graph walk of the symmetry-reduced graph,
  ``--workers`` processes): transitions covered of which graph, implementation steps per second,
  exploration time and the time to full transition coverage. Divergences do not stop it, so the
  time covers every transition the implementation can take. And one ratio measured in the same
  run: time to full coverage of ``tiny`` by replaying behaviours (unreduced graph, the driver
  before the walk) over the walk's.
* Mutants: for every catalogue mutant, killed or not, by which mode, after how many steps, and
  the seconds from patching to the kill (``conformance.mutants.run_catalogue``).
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from conformance.bridge_core import ForkableBridge
from conformance.mutants import CATALOGUE, run_catalogue
from conformance.replay import replay, walk
from conformance.runner import benchmark_replay, bridge_for, load_model
from conformance.trace import validate_directory
from conformance.trace.scenarios import run_scenario
from conformance.trace.sim import check_seed

RESULTS = Path(__file__).resolve().parent / "results"
QUICK_MUTANTS = ["prepare-quorum-off-by-one", "checkpoint-stable-at-f-plus-1", "two-pre-prepares-accepted"]


def trace_real(repeat: int) -> dict[str, Any]:
    """Validate one real crash-and-restart run ``repeat`` times; the fastest validation counts."""
    with tempfile.TemporaryDirectory(prefix="pot-bench-trace-") as scratch:
        started = time.perf_counter()
        run = run_scenario("crash-restart", Path(scratch) / "run")
        run_seconds = time.perf_counter() - started
        reports = [validate_directory(run.directory) for _ in range(repeat)]
    best = min(reports, key=lambda r: r.seconds)
    return {
        "scenario": "crash-restart",
        "verdict": best.verdict,
        "events": best.events,
        "spec_steps": best.spec_steps,
        "hidden_steps": best.hidden_steps,
        "validation_seconds": best.seconds,
        "us_per_event": 1e6 * best.seconds / max(best.events, 1),
        "run_seconds": run_seconds,
        "validation_to_run_ratio": best.seconds / run_seconds,
    }


def trace_sim(seeds: int) -> dict[str, Any]:
    """Crash-only simulator runs (n = 4): simulation plus validation, and validation alone."""
    events = 0
    validation = 0.0
    conforming = 0
    started = time.perf_counter()
    for seed in range(seeds):
        check = check_seed(seed)
        events += check.trace.events
        validation += check.trace.seconds
        conforming += check.ok
    total = time.perf_counter() - started
    return {
        "seeds": seeds,
        "conforming": conforming,
        "events": events,
        "us_per_event": 1e6 * validation / max(events, 1),
        "seconds_with_simulation": total,
    }


def replay_figures(model: str, workers: int) -> dict[str, Any]:
    """The replay figures of ``model`` (every transition tried, divergences or not)."""
    return benchmark_replay(model, workers=workers, stop_at_first=False)


def behaviours_over_walk(model: str) -> dict[str, Any]:
    """Seconds to full coverage of ``model`` by replaying a transition cover of its unreduced graph
    from the initial state (the driver before the walk), and by the walk, in one run."""
    loaded = load_model(model)
    bridge = bridge_for(loaded)
    assert isinstance(bridge, ForkableBridge)
    drivers = {"behaviours": replay(loaded, bridge), "walk": walk(loaded, bridge)}
    figures = {
        name: {
            "graph": result.graph,
            "transitions_covered": result.transitions_covered,
            "transitions_total": result.transitions_total,
            "steps": result.steps,
            "seconds": result.seconds,
        }
        for name, result in drivers.items()
    }
    return {"model": model, **figures, "ratio": drivers["behaviours"].seconds / drivers["walk"].seconds}


def mutants(quick: bool) -> dict[str, Any]:
    results, calibration = run_catalogue(QUICK_MUTANTS if quick else None)
    return {
        "modes": [m.name for m in calibration.modes],
        "skipped_modes": calibration.skipped,
        "catalogue_size": len(CATALOGUE),
        "killed": sum(r.killed for r in results),
        "results": [r.to_json() for r in results],
    }


def print_trace(real: dict[str, Any], sim: dict[str, Any]) -> None:
    print("trace validation")
    print(f"  {'source':28} {'events':>7} {'us/event':>9} {'verdict':>9}  ratio to run time")
    print(
        f"  {'real cluster, crash-restart':28} {real['events']:7d} {real['us_per_event']:9.1f} "
        f"{real['verdict']:>9}  {real['validation_to_run_ratio']:.4f}"
    )
    print(
        f"  {'simulator, ' + str(sim['seeds']) + ' seeds':28} {sim['events']:7d} {sim['us_per_event']:9.1f} "
        f"{sim['conforming']:>5}/{sim['seeds']:<3}"
    )


def print_replay(rows: list[dict[str, Any]], ratio: dict[str, Any] | None) -> None:
    print("replay through the bridge (pot conform MODEL --mode replay)")
    print(
        f"  {'model':12} {'graph':17} {'covered/total':>19} {'steps':>9} {'steps/s':>8} "
        f"{'explore s':>9} {'total s':>8}  full coverage  divergences gaps"
    )
    for row in rows:
        coverage = f"{row['transitions_covered']}/{row['transitions_total']}"
        full = "yes" if row["seconds_to_full_coverage"] is not None else "no"
        print(
            f"  {row['model']:12} {row['graph']:17} {coverage:>19} {row['steps']:9d} "
            f"{row['steps_per_second']:8.0f} {row['explore_seconds']:9.1f} {row['seconds']:8.1f}  "
            f"{full:13} {row['divergences']:11d} {row['gaps']:4d}"
        )
    if ratio is not None:
        behaviours, walked = ratio["behaviours"], ratio["walk"]
        print(
            f"  {ratio['model']}: behaviours from the initial state {behaviours['seconds']:.1f} s "
            f"({behaviours['transitions_covered']} unreduced transitions), walk {walked['seconds']:.1f} s "
            f"({walked['transitions_covered']} reduced): {ratio['ratio']:.1f}x"
        )


def print_mutants(catalogue: dict[str, Any]) -> None:
    modes = ", ".join(catalogue["modes"])
    print(f"mutants ({catalogue['killed']}/{len(catalogue['results'])} killed; modes {modes})")
    print(f"  {'mutant':36} {'outcome':>9} {'mode':>14} {'steps':>7} {'seconds':>8}")
    for row in catalogue["results"]:
        steps = "" if row["steps"] is None else str(row["steps"])
        mode = row["mode"] or "-"
        print(f"  {row['name']:36} {row['outcome']:>9} {mode:>14} {steps:>7} {row['seconds']:8.1f}")


SECTIONS = ("trace", "replay", "mutants")


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="benchmarks.bench_conformance", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer seeds, three mutants, no default")
    parser.add_argument("--sections", nargs="+", choices=SECTIONS, default=list(SECTIONS))
    parser.add_argument("--workers", type=int, default=2, help="processes of the graph walk")
    args = parser.parse_args(argv)
    target = RESULTS / "bench_conformance.json"
    report: dict[str, Any] = json.loads(target.read_text()) if target.exists() else {}
    report.update(
        machine={"python": platform.python_version(), "processor": platform.machine()}, quick=args.quick
    )
    if "trace" in args.sections:
        report["trace_real"] = trace_real(repeat=3)
        report["trace_sim"] = trace_sim(seeds=5 if args.quick else 20)
        print_trace(report["trace_real"], report["trace_sim"])
    if "replay" in args.sections:
        models = ["ledger-tiny", "tiny", "pbft-tiny"] + ([] if args.quick else ["default"])
        report["replay"] = [replay_figures(model, args.workers) for model in models]
        report["behaviours_over_walk"] = None if args.quick else behaviours_over_walk("tiny")
        print_replay(report["replay"], report["behaviours_over_walk"])
    if "mutants" in args.sections:
        report["mutants"] = mutants(args.quick)
        print_mutants(report["mutants"])
    RESULTS.mkdir(exist_ok=True)
    target.write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
