"""Speed-up of ``pot check --workers N`` over one process, and of ``--ray local``, in the same run.

Run: ``.venv/bin/python -m benchmarks.bench_workers [--repeat N] [--quick]``. Prints a table and writes
``benchmarks/results/workers.json``. Each configuration runs in a fresh process, the worker
counts interleaved; the best wall time of each is kept (workers trade CPU for wall time, so
wall time is the figure); peak RSS of the master and of the largest worker. Counts must be
identical for every worker count. With Ray installed, a local Ray instance runs the same search
with as many actors as the largest worker count (Ray started before the clock), and its time is
compared with the processes' at that count; the target is at most 1.3x.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import resource
import sys
import time
from typing import Any

from benchmarks.bench_checker import RESULTS, environment, run_worker

CONFIGURATIONS: tuple[tuple[str, dict[str, Any]], ...] = (("two-phase", {"RM": 7}), ("pbft", {}))


def _worker(name: str, constants: dict[str, Any], workers: int, backend: str) -> None:
    import model_checker.liveness  # noqa: F401 -- imported before the clock starts
    from model_checker.checker import check
    from pot.registry import all_models

    ray = None
    if backend == "ray":
        from model_checker.ray_pool import LOCAL, connect

        connect(LOCAL, workers)
        ray = LOCAL
    model = all_models()[name].instantiate(constants)
    wall = time.perf_counter()
    result = check(model, liveness=False, workers=workers, ray=ray)
    figures = {
        "counts": [result.distinct_states, result.generated_states, result.depth],
        "verdict": result.verdict,
        "seconds": time.perf_counter() - wall,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "worker_peak_rss_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024,
    }
    print(json.dumps(figures))


def _run(name: str, constants: dict[str, Any], workers: int, backend: str) -> dict[str, Any]:
    return run_worker("benchmarks.bench_workers", name, json.dumps(constants), str(workers), backend)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=2, help="runs per configuration and worker count")
    parser.add_argument("--quick", action="store_true", help="TwoPhase only, one run each")
    parser.add_argument("--worker", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        name, constants, workers, backend = args.worker
        _worker(name, json.loads(constants), int(workers), backend)
        return 0
    repeat = 1 if args.quick else args.repeat
    counts = sorted({1, min(os.cpu_count() or 1, 2), os.cpu_count() or 1})
    setups = [("processes", n) for n in counts]
    if importlib.util.find_spec("ray") is not None:
        setups.append(("ray", counts[-1]))
    rows = []
    print(f"pot check --workers N, safety only, best wall time of {repeat} interleaved runs")
    header = f"{'model':<16} {'backend':>9} {'workers':>7} {'distinct':>9} {'seconds':>8} {'speed-up':>9}"
    print(f"{header} {'RSS MB':>7} {'worker MB':>9}")
    for name, constants in CONFIGURATIONS[:1] if args.quick else CONFIGURATIONS:
        runs: dict[tuple[str, int], list[dict[str, Any]]] = {setup: [] for setup in setups}
        for _ in range(repeat):
            for backend, n in setups:
                runs[backend, n].append(_run(name, constants, n, backend))
        best = {setup: min(runs[setup], key=lambda r: r["seconds"]) for setup in setups}
        if len({tuple(figures["counts"]) for figures in best.values()}) != 1:
            raise SystemExit(f"{name}: counts differ between setups: {best}")
        label = name + "".join(f" {k}={v}" for k, v in constants.items())
        one = best["processes", 1]["seconds"]
        for backend, n in setups:
            figures = best[backend, n]
            speedup = one / figures["seconds"]
            row = {"model": name, "constants": constants, "backend": backend, "workers": n, **figures}
            if backend == "ray":
                row["over_processes"] = figures["seconds"] / best["processes", n]["seconds"]
            rows.append({**row, "speedup": speedup})
            print(
                f"{label:<16} {backend:>9} {n:>7} {figures['counts'][0]:>9,} {figures['seconds']:>8.2f} "
                f"{speedup:>8.2f}x {figures['peak_rss_mb']:>7.0f} {figures['worker_peak_rss_mb']:>9.0f}"
                + (f"  {row['over_processes']:.2f}x the processes' time" if backend == "ray" else "")
            )
    RESULTS.mkdir(exist_ok=True)
    document = {"benchmark": "workers", "environment": environment(), "rows": rows}
    (RESULTS / "workers.json").write_text(json.dumps(document, indent=2) + "\n")
    print(f"written {RESULTS / 'workers.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
