"""Speed-up of ``pot check --workers N`` over one process, and of ``--ray local``, in the same run.

Run: ``.venv/bin/python -m benchmarks.bench_workers [--repeat N] [--quick]``. Prints a table and writes
``benchmarks/results/workers.json``. Each configuration runs in a fresh process, the worker
counts interleaved; the best wall time of each is kept (workers trade CPU for wall time, so
wall time is the figure); peak RSS of the master and of the largest worker. Counts must be
identical for every worker count. With Ray installed, a local Ray instance runs the same search
with as many actors as the largest worker count (Ray started before the clock), and its time is
compared with the processes' at that count; the target is at most 1.3x.

On a larger machine: ``--workers 1,2,4,8,16`` sets the worker counts (default 1, min(cpus, 2) and
cpus), ``--model NAME[:KEY=VALUE...][@N,N...]`` (repeatable) replaces the configurations, the ``@``
list running that model at those counts only, in that order (say ``pbft-window@16,8`` where one
process would take too long); a speed-up is then over the smallest count run (``speedup_over``).
``--no-ray`` skips Ray, ``--timeout S`` ends a run (its whole process group) after S seconds and
records it as timed out, and ``--out PATH`` writes elsewhere; the file is rewritten after every run,
so a run cut short keeps what it measured. ``benchmarks/results/workers_16_cores.json`` was
measured so, on a 16-core machine, and ``benchmarks/results/workers_pbft_window.json`` on this
one (their ``notes`` give the command).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import resource
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks.bench_checker import RESULTS, environment, run_worker

CONFIGURATIONS: tuple[tuple[str, dict[str, Any]], ...] = (("two-phase", {"RM": 7}), ("pbft", {}))

Setup = tuple[str, int]


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


def _run(
    name: str, constants: dict[str, Any], workers: int, backend: str, timeout: float | None
) -> dict[str, Any]:
    args = (name, json.dumps(constants), str(workers), backend)
    return run_worker("benchmarks.bench_workers", *args, timeout=timeout)


def _counts(text: str) -> list[int]:
    return sorted({int(n) for n in text.split(",") if n.strip()})


def _model(spec: str) -> tuple[str, dict[str, Any], list[int] | None]:
    """``NAME[:KEY=VALUE...][@N,N...]``: the model, its constants, and its worker counts in order."""
    spec, _, at = spec.partition("@")
    name, _, assignments = spec.partition(":")
    constants: dict[str, Any] = {}
    for assignment in filter(None, assignments.split(":")):
        key, _, value = assignment.partition("=")
        constants[key] = json.loads(value) if value[:1].isdigit() or value[:1] in "[{-" else value
    order = [int(n) for n in at.split(",") if n.strip()] if at else None
    return name, constants, order


def _rows(
    name: str, constants: dict[str, Any], setups: list[Setup], runs: dict[Setup, list[dict[str, Any]]]
) -> list[dict[str, Any]]:
    """One row per setup run so far (its best run), the speed-up over the fewest processes run."""
    done = [setup for setup in setups if runs[setup] and not runs[setup][0].get("timed_out")]
    best = {setup: min(runs[setup], key=lambda r: r["seconds"]) for setup in done}
    if len({tuple(figures["counts"]) for figures in best.values()}) > 1:
        raise SystemExit(f"{name}: counts differ between setups: {best}")
    processes = sorted(n for backend, n in done if backend == "processes")
    base = processes[0] if processes else None
    rows = []
    for backend, n in setups:
        row: dict[str, Any] = {"model": name, "constants": constants, "backend": backend, "workers": n}
        if (backend, n) not in best:
            if runs[backend, n]:
                rows.append({**row, **runs[backend, n][0]})
            continue
        figures = best[backend, n]
        row.update(figures)
        if backend == "ray" and ("processes", n) in best:
            row["over_processes"] = figures["seconds"] / best["processes", n]["seconds"]
        if base is not None:
            row["speedup"] = best["processes", base]["seconds"] / figures["seconds"]
            if base != 1:
                row["speedup_over"] = base
        rows.append(row)
    return rows


def _print(row: dict[str, Any]) -> None:
    label = row["model"] + "".join(f" {k}={v}" for k, v in row["constants"].items())
    start = f"{label:<16} {row['backend']:>9} {row['workers']:>7}"
    if row.get("timed_out"):
        print(f"{start} timed out after {row['seconds']:.0f} s")
        return
    speedup = f"{row['speedup']:>8.2f}x" if "speedup" in row else f"{'':>9}"
    if "speedup_over" in row:
        speedup += f" (over {row['speedup_over']})"
    print(
        f"{start} {row['counts'][0]:>9,} {row['seconds']:>8.2f} {speedup} {row['peak_rss_mb']:>7.0f} "
        f"{row['worker_peak_rss_mb']:>9.0f}"
        + (f"  {row['over_processes']:.2f}x the processes' time" if "over_processes" in row else "")
    )


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=2, help="runs per configuration and worker count")
    parser.add_argument("--quick", action="store_true", help="TwoPhase only, one run each")
    parser.add_argument("--workers", type=_counts, help="worker counts, say 1,2,4,8,16")
    parser.add_argument(
        "--model",
        action="append",
        type=_model,
        metavar="NAME[:KEY=VALUE...][@N,N...]",
        help="a configuration (repeatable; replaces the default ones), at the given worker counts",
    )
    parser.add_argument("--no-ray", action="store_true", help="skip the Ray comparison")
    parser.add_argument("--timeout", type=float, help="seconds a run may take (default: no limit)")
    parser.add_argument("--out", type=Path, default=RESULTS / "workers.json", help="the JSON written")
    parser.add_argument("--worker", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        name, constants, workers, backend = args.worker
        _worker(name, json.loads(constants), int(workers), backend)
        return 0
    repeat = 1 if args.quick else args.repeat
    cpus = os.cpu_count() or 1
    counts = args.workers or sorted({1, min(cpus, 2), cpus})
    ray = not args.no_ray and importlib.util.find_spec("ray") is not None
    configurations: list[tuple[str, dict[str, Any], list[int] | None]] = args.model or [
        (name, constants, None) for name, constants in (CONFIGURATIONS[:1] if args.quick else CONFIGURATIONS)
    ]
    rows: list[dict[str, Any]] = []
    print(f"pot check --workers N, safety only, best wall time of {repeat} interleaved runs")
    header = f"{'model':<16} {'backend':>9} {'workers':>7} {'distinct':>9} {'seconds':>8} {'speed-up':>9}"
    print(f"{header} {'RSS MB':>7} {'worker MB':>9}", flush=True)
    for name, constants, order in configurations:
        setups: list[Setup] = [("processes", n) for n in (order or counts)]
        if ray:
            setups.append(("ray", max(n for _, n in setups)))
        runs: dict[Setup, list[dict[str, Any]]] = {setup: [] for setup in setups}
        for _ in range(repeat):
            for backend, n in setups:
                if runs[backend, n] and runs[backend, n][0].get("timed_out"):
                    continue
                figures = _run(name, constants, n, backend, args.timeout)
                runs[backend, n].append(figures)
                print(f"  {name} {backend} {n}: {figures['seconds']:.2f} s", file=sys.stderr, flush=True)
                partial = rows + _rows(name, constants, setups, runs)
                document = {"benchmark": "workers", "environment": environment(), "rows": partial}
                args.out.parent.mkdir(parents=True, exist_ok=True)
                args.out.write_text(json.dumps(document, indent=2) + "\n")
        config_rows = _rows(name, constants, setups, runs)
        for row in config_rows:
            _print(row)
        sys.stdout.flush()
        rows += config_rows
    print(f"written {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
