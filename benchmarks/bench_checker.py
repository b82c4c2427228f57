"""Model-checker throughput on TwoPhase (RM = 3, 5, 7) against TLC, side by side or from ANCHORS.md.

Run: ``.venv/bin/python -m benchmarks.bench_checker [--quick] [--repeat N] [--tlc JAR]`` (or with
``TLC_JAR`` naming the jar). Prints a table and writes ``benchmarks/results/checker.json``.
Each configuration runs in a fresh process
(best of ``--repeat`` runs by wall time; CPU time and peak RSS of that process), safety only
(invariants and deadlock). Imports happen before the clock starts. On a shared machine the
CPU seconds are the steadier figure; both are recorded.
The exact distinct/generated/depth counts are asserted: a wrong count is a bug, not a timing.

With ``--tlc`` (a ``tla2tools.jar`` you built from the public tlaplus sources; Java on the path),
TLC checks ``benchmarks/tla/TwoPhase.tla`` with one and with two workers in the same run, each
in a scratch directory, and the ratios are taken against those runs; its counts must be ours.
Without it, the ratios use the TLC seconds of ANCHORS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"

TLC = {
    # RM: (distinct, generated, depth, TLC seconds with one worker) -- ANCHORS.md
    3: (288, 1_146, 11, 1.0),
    5: (8_832, 58_146, 17, 2.0),
    7: (296_448, 2_744_706, 23, 13.0),
}


TLA_SPEC = Path(__file__).resolve().parent / "tla" / "TwoPhase.tla"
TLC_COUNTS = re.compile(r"(\d+) states generated, (\d+) distinct states found")
TLC_DEPTH = re.compile(r"depth of the complete state graph search is (\d+)")


def run_tlc(jar: Path, rm: int, workers: int, repeat: int) -> dict[str, Any]:
    """TLC on ``TLA_SPEC`` with ``RM`` = r1..rRM and ``workers`` workers: the fastest of ``repeat``
    runs, each in a scratch directory (wall and CPU seconds and peak RSS of the Java process)."""
    runs = []
    for _ in range(repeat):
        with tempfile.TemporaryDirectory(prefix="bench-tlc-") as scratch:
            shutil.copy(TLA_SPEC, scratch)
            managers = ", ".join(f"r{i}" for i in range(1, rm + 1))
            config = [f"CONSTANT RM = {{{managers}}}", "INIT TPInit", "NEXT TPNext"]
            config += ["INVARIANT TPTypeOK", "INVARIANT TCConsistent"]
            (Path(scratch) / "TwoPhase.cfg").write_text("\n".join(config) + "\n")
            command = ["java", "-XX:+UseParallelGC", "-cp", str(jar), "tlc2.TLC", "-workers", str(workers)]
            command += ["-metadir", str(Path(scratch) / "states"), "TwoPhase"]
            started = time.perf_counter()
            process = subprocess.Popen(
                command, cwd=scratch, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
            )
            assert process.stdout is not None
            output = process.stdout.read()
            _, status, usage = os.wait4(process.pid, 0)
            process.returncode = os.waitstatus_to_exitcode(status)
            wall = time.perf_counter() - started
        counts, depth = TLC_COUNTS.search(output), TLC_DEPTH.search(output)
        if process.returncode != 0 or counts is None or depth is None:
            raise SystemExit(f"TLC on TwoPhase RM={rm} failed (exit {process.returncode}): {output[-400:]}")
        runs.append(
            {
                "workers": workers,
                "generated": int(counts.group(1)),
                "distinct": int(counts.group(2)),
                "depth": int(depth.group(1)),
                "seconds": wall,
                "cpu_seconds": usage.ru_utime + usage.ru_stime,
                "peak_rss_mb": usage.ru_maxrss / 1024,
            }
        )
    best: dict[str, Any] = min(runs, key=lambda r: r["seconds"])
    best["seconds_all"] = [round(r["seconds"], 3) for r in runs]
    return best


def measure(model: str, constants: dict[str, Any], liveness: bool, repeat: int) -> dict[str, Any]:
    """Run one configuration of a registry model ``repeat`` times, each in a fresh process; the
    figures of the fastest run."""
    command = [
        sys.executable,
        "-m",
        "benchmarks.bench_checker",
        "--worker",
        model,
        json.dumps(constants),
        str(int(liveness)),
    ]
    runs = []
    for _ in range(repeat):
        done = subprocess.run(command, capture_output=True, text=True, check=True)
        runs.append(json.loads(done.stdout))
    best: dict[str, Any] = min(runs, key=lambda r: r["seconds"])
    best["seconds_all"] = [round(r["seconds"], 3) for r in runs]
    return best


def _worker(name: str, constants: dict[str, Any], liveness: bool) -> None:
    """Measure one run and print it as JSON (called in the child process)."""
    import model_checker.liveness  # noqa: F401 -- imported here so that scipy's import is not timed
    from model_checker.checker import check
    from pot.registry import all_models

    model = all_models()[name].instantiate(constants)
    wall, cpu = time.perf_counter(), time.process_time()
    result = check(model, liveness=liveness)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    report = {
        "model": name,
        "constants": constants,
        "rm": constants.get("RM"),
        "liveness": liveness,
        "verdict": result.verdict,
        "distinct": result.distinct_states,
        "generated": result.generated_states,
        "depth": result.depth,
        "seconds": wall,
        "cpu_seconds": cpu,
        "states_per_second": result.distinct_states / wall,
        "bytes_per_state": result.memory.per_state(result.distinct_states)["total"] if result.memory else 0.0,
        "visited_bytes_per_state": result.memory.visited_table / result.distinct_states
        if result.memory
        else 0.0,
        "graph_bytes": result.memory.graph if result.memory else 0,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "properties": {p.name: p.status for p in result.properties},
        **{k: v for k, v in result.stats.items() if isinstance(v, (int, float))},
    }
    print(json.dumps(report))


def run_worker(module: str, *args: str, timeout: float | None = None) -> dict[str, Any]:
    """Run ``python -m module --worker ARGS`` in a fresh process; the JSON object it printed. A run
    past ``timeout`` seconds is killed with its process group (forked workers included) and reported
    as ``{"timed_out": True, "seconds": timeout}``."""
    command = [sys.executable, "-m", module, "--worker", *args]
    process = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=timeout is not None,
    )
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.communicate()
        return {"timed_out": True, "seconds": timeout}
    if process.returncode:
        raise subprocess.CalledProcessError(process.returncode, command, stdout, stderr)
    figures: dict[str, Any] = json.loads(stdout)
    return figures


def check_counts(row: dict[str, Any], tlc_runs: Sequence[dict[str, Any]] = ()) -> None:
    """The counts must be TLC's exactly: the published ones and those of TLC run here."""
    distinct, generated, depth, _ = TLC[row["rm"]]
    got = (row["distinct"], row["generated"], row["depth"])
    if got != (distinct, generated, depth) or row["verdict"] != "ok":
        expected = (distinct, generated, depth)
        raise SystemExit(f"TwoPhase RM={row['rm']}: got {got} / {row['verdict']}, TLC has {expected}")
    for run in tlc_runs:
        if (run["distinct"], run["generated"], run["depth"]) != got:
            raise SystemExit(f"TwoPhase RM={row['rm']}: TLC here counts {run}, we count {got}")


def environment() -> dict[str, Any]:
    """What the figures were measured on (load matters on a shared 2-core machine)."""
    return {
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "load_average": os.getloadavg(),
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="RM = 3 and 5 only")
    parser.add_argument("--repeat", type=int, default=3, help="runs per configuration (best is kept)")
    tlc_jar = os.environ.get("TLC_JAR")
    parser.add_argument(
        "--tlc",
        type=Path,
        default=Path(tlc_jar) if tlc_jar else None,
        help="a tla2tools.jar to run beside our checker (needs java; default: $TLC_JAR)",
    )
    parser.add_argument("--worker", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        name, constants, liveness = args.worker
        _worker(name, json.loads(constants), liveness == "1")
        return 0
    if args.tlc is not None and (not args.tlc.is_file() or shutil.which("java") is None):
        print(
            f"bench_checker: --tlc {args.tlc}: needs an existing tla2tools.jar and java on the path",
            file=sys.stderr,
        )
        return 2
    sizes = (3, 5) if args.quick else (3, 5, 7)
    rows = []
    header = (
        f"{'RM':>3} {'distinct':>9} {'generated':>10} {'depth':>5} {'seconds':>8} {'cpu s':>7} "
        f"{'states/s':>9} {'B/state':>8} {'RSS MB':>7} "
        f"{'TLC s':>6} {'TLC 2w s':>8} {'TLC MB':>7} {'vs TLC':>7}"
    )
    print("TwoPhase, safety (invariants + deadlock), best of", args.repeat)
    print(header)
    for rm in sizes:
        row = measure("two-phase", {"RM": rm}, liveness=False, repeat=args.repeat)
        tlc_runs = [run_tlc(args.tlc, rm, workers, args.repeat) for workers in (1, 2)] if args.tlc else []
        check_counts(row, tlc_runs)
        row["tlc_source"] = "run beside" if tlc_runs else "ANCHORS.md"
        row["tlc_runs"] = tlc_runs
        row["tlc_seconds"] = tlc_runs[0]["seconds"] if tlc_runs else TLC[rm][3]
        row["time_vs_tlc"] = row["seconds"] / row["tlc_seconds"]
        if tlc_runs:
            row["time_vs_tlc_two_workers"] = row["seconds"] / tlc_runs[1]["seconds"]
            row["rss_vs_tlc"] = row["peak_rss_mb"] / tlc_runs[0]["peak_rss_mb"]
        rows.append(row)
        two_workers = f"{tlc_runs[1]['seconds']:>8.2f}" if tlc_runs else f"{'':>8}"
        tlc_rss = f"{tlc_runs[0]['peak_rss_mb']:>7.0f}" if tlc_runs else f"{'':>7}"
        print(
            f"{rm:>3} {row['distinct']:>9,} {row['generated']:>10,} {row['depth']:>5} {row['seconds']:>8.2f} "
            f"{row['cpu_seconds']:>7.2f} {row['states_per_second']:>9,.0f} {row['bytes_per_state']:>8.1f} "
            f"{row['peak_rss_mb']:>7.0f} {row['tlc_seconds']:>6.2f} {two_workers} {tlc_rss} "
            f"{row['time_vs_tlc']:>6.2f}x"
        )
    source = "TLC run beside, one worker" if args.tlc else "TLC's seconds with one worker in ANCHORS.md"
    print(f"vs TLC = our seconds (one process) / {source} (below 1: faster than TLC)")
    RESULTS.mkdir(exist_ok=True)
    document = {"benchmark": "checker", "model": "two-phase", "environment": environment(), "rows": rows}
    (RESULTS / "checker.json").write_text(json.dumps(document, indent=2) + "\n")
    print(f"written {RESULTS / 'checker.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
