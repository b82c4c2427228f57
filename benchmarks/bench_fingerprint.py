"""Fingerprinting by walking the value against Python's ``hash()``, side by side.

Run: ``.venv/bin/python -m benchmarks.bench_fingerprint [--repeat N]``. Prints a table and
writes ``benchmarks/results/fingerprint.json``.

``hash()`` is the unsound reference (it merges -1 with -2 and wraps ints modulo
2**61 - 1); it is switched in for the reference runs only, in their own processes, as the
checker used it: ``np.fromiter`` over ``map(hash, ...)``, where the walker fills a chunk's array in
one call.
Each configuration runs ``--repeat`` times in fresh processes, the two fingerprints
interleaved so that machine load hits both alike; the best CPU time of each is kept and
their ratio reported. Counts must agree (neither model has a ``hash()`` collision). The
soundness row counts distinct fingerprints of all 7-tuples over -3..3.
"""

from __future__ import annotations

import argparse
import itertools
import json
import resource
import sys
import time
from collections.abc import Iterable
from typing import Any

import numpy as np
import numpy.typing as npt

from benchmarks.bench_checker import RESULTS, environment, run_worker

CONFIGURATIONS: tuple[tuple[str, dict[str, Any]], ...] = (("two-phase", {"RM": 7}), ("pbft", {}))
MODES = ("hash", "walk")


def _hash_array(values: Iterable[Any], count: int) -> npt.NDArray[np.int64]:
    """The reference: ``hash`` of each value, one Python int each."""
    return np.fromiter(map(hash, values), np.int64, count)


def _worker(name: str, constants: dict[str, Any], mode: str) -> None:
    """Check one model safety-only with the given fingerprint; print the figures as JSON."""
    import model_checker.engine as engine
    import model_checker.liveness  # noqa: F401 -- imported before the clock starts
    from model_checker.checker import check
    from pot.registry import all_models

    if mode == "hash":
        engine.fingerprint_array = _hash_array  # type: ignore[attr-defined]
    model = all_models()[name].instantiate(constants)
    wall, cpu = time.perf_counter(), time.process_time()
    result = check(model, liveness=False)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    figures = {
        "distinct": result.distinct_states,
        "generated": result.generated_states,
        "depth": result.depth,
        "verdict": result.verdict,
        "seconds": wall,
        "cpu_seconds": cpu,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }
    print(json.dumps(figures))


def _run(name: str, constants: dict[str, Any], mode: str) -> dict[str, Any]:
    return run_worker("benchmarks.bench_fingerprint", name, json.dumps(constants), mode)


def soundness() -> dict[str, int]:
    """Distinct fingerprints of the 823,543 7-tuples over -3..3, under each function."""
    from model_checker.fingerprint import fingerprint

    values = list(itertools.product(range(-3, 4), repeat=7))
    return {
        "values": len(values),
        "hash": len(set(map(hash, values))),
        "walk": len(set(map(fingerprint, values))),
    }


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="runs per configuration and mode")
    parser.add_argument("--quick", action="store_true", help="TwoPhase only, one run of each")
    parser.add_argument("--worker", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.quick:
        args.repeat = 1
    if args.worker:
        name, constants, mode = args.worker
        _worker(name, json.loads(constants), mode)
        return 0
    rows = []
    print(f"Fingerprint cost, safety-only check, best CPU time of {args.repeat} interleaved runs")
    print(f"{'model':<16} {'distinct':>9} {'generated':>10} {'hash() s':>9} {'walk s':>8} {'overhead':>9}")
    for name, constants in CONFIGURATIONS[:1] if args.quick else CONFIGURATIONS:
        runs: dict[str, list[dict[str, Any]]] = {mode: [] for mode in MODES}
        for _ in range(args.repeat):
            for mode in MODES:
                runs[mode].append(_run(name, constants, mode))
        best = {mode: min(runs[mode], key=lambda r: r["cpu_seconds"]) for mode in MODES}
        counts = {
            mode: (best[mode]["distinct"], best[mode]["generated"], best[mode]["depth"]) for mode in MODES
        }
        if counts["hash"] != counts["walk"]:
            raise SystemExit(f"{name}: counts differ between hash() and the walk: {counts}")
        overhead = best["walk"]["cpu_seconds"] / best["hash"]["cpu_seconds"] - 1
        label = name + "".join(f" {k}={v}" for k, v in constants.items())
        rows.append(
            {
                "model": name,
                "constants": constants,
                "distinct": counts["walk"][0],
                "generated": counts["walk"][1],
                "depth": counts["walk"][2],
                "hash": best["hash"],
                "walk": best["walk"],
                "cpu_seconds_all": {mode: [round(r["cpu_seconds"], 3) for r in runs[mode]] for mode in MODES},
                "overhead": overhead,
            }
        )
        print(
            f"{label:<16} {counts['walk'][0]:>9,} {counts['walk'][1]:>10,} "
            f"{best['hash']['cpu_seconds']:>9.2f} {best['walk']['cpu_seconds']:>8.2f} {overhead:>8.1%}"
        )
    merged = soundness()
    print(
        f"7-tuples over -3..3: {merged['values']:,} values, {merged['hash']:,} distinct hash() values, "
        f"{merged['walk']:,} distinct fingerprints"
    )
    RESULTS.mkdir(exist_ok=True)
    document = {"benchmark": "fingerprint", "environment": environment(), "rows": rows, "soundness": merged}
    (RESULTS / "fingerprint.json").write_text(json.dumps(document, indent=2) + "\n")
    print(f"written {RESULTS / 'fingerprint.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
