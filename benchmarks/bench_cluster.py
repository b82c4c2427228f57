"""Throughput and latency of real loopback clusters (n = 4, 7, 10, 16), against ANCHORS.md.

Run: ``.venv/bin/python -m benchmarks.bench_cluster [--quick]``. Prints a table and writes
``benchmarks/results/cluster.json``.

For each n, one cluster of n replica processes (default protocol settings: view change armed at
2 s, a checkpoint every 16 batches, SQLite ``synchronous=FULL``) and one load-generator process
(this one) with many logical clients, each with one request outstanding, signing every request:

1. saturation: closed-loop load; committed (f+1-accepted) transactions per second;
2. latency at ~80% of saturation: open-loop load at 0.8 x (1) for p50/p99;
3. time to resume after SIGKILL of the primary under load: from the kill to the first request
   accepted in a later view (bounded below by the client retry and view-change timeouts);
4. (1) and (2) again with one crashed backup (the killed old primary is a backup from then on).

Counters read from every replica give inter-replica messages and signature checks per
committed batch. The machine has 2 cores shared by all n replicas, the load generator and
whatever else runs there; the load average is recorded next to the figures, and the ratios
to the prototype reference and to the targets are of figures measured in this run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import resource
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from pot_impl.runtime.client import cluster_status
from pot_impl.runtime.cluster import LocalCluster
from pot_impl.runtime.config import Config
from pot_impl.runtime.crypto import KeyPair, PublicKeyCache
from pot_impl.runtime.load import LoadResult

RESULTS = Path(__file__).resolve().parent / "results"

PROTOTYPE_TX_S = {4: (1300.0, 1700.0), 16: (190.0, 230.0)}
"""Minimal normal-case-only Python PBFT prototype on this machine class (ANCHORS.md)."""
TARGET_TX_S = {4: 3000.0, 16: 500.0}
"""Throughput targets on this 2-core machine, with view change, checkpoints and every admission
limit enabled."""
BEFORE_REPLY_FRAMES = {
    16.3: {4: {"tx_s": 2068.0, "cpu_ms_per_tx": 0.86}, 16: {"tx_s": 400.0, "cpu_ms_per_tx": 4.74}},
    18.7: {4: {"tx_s": 1863.0, "cpu_ms_per_tx": 0.99}, 16: {"tx_s": 405.0, "cpu_ms_per_tx": 4.69}},
}
"""This benchmark (``--quick``) at dff021f, the last revision that signed every reply on its own
(and whose load generator used fresh keys, whose registrations the ledger refused), on this
machine on 2026-12-04, keyed by how long PyNaCl took to sign then (us): the machine's speed
varies with other tenants by a fifth, so a run is compared with the reference measured at the
nearest signing speed."""
LOAD_ACCOUNTS = 8192
"""Funded accounts of the load generator: replicas order only requests of accounts the ledger
knows, and the open-loop runs need one per request in flight."""
PYNACL_US = {"sign": (24.0, 31.0), "verify": (63.0, 72.0)}


# ------------------------------------------------------------ signatures


def time_per_call(call: Any, repeat: int) -> float:
    """Microseconds per call, best of three rounds."""
    rounds = []
    for _ in range(3):
        started = time.perf_counter()
        for _ in range(repeat):
            call()
        rounds.append((time.perf_counter() - started) / repeat * 1e6)
    return min(rounds)


def measure_signatures(repeat: int) -> dict[str, float]:
    """Ed25519 with PyNaCl as the runtime uses it (cached key objects). ``cryptography`` is not a
    dependency here; ANCHORS.md has it at about 1.5-2x PyNaCl's cost, which decided the choice."""
    payload = os.urandom(200)
    pair = KeyPair.generate()
    keys = PublicKeyCache()
    signature = pair.sign(payload)
    return {
        "pynacl_sign_us": time_per_call(lambda: pair.sign(payload), repeat),
        "pynacl_verify_us": time_per_call(lambda: keys.verify(pair.public, payload, signature), repeat),
    }


# ------------------------------------------------------------ cluster phases


def totals(reports: dict[int, dict[str, Any] | str]) -> dict[str, float]:
    """Counters summed over the replicas that answered, and the highest view and sequence number."""
    live = [r for r in reports.values() if isinstance(r, dict)]
    return {
        "messages": sum(sum(link["sent"] for link in r["links"].values()) for r in live),
        "verifications": sum(r["counters"]["pool_verifications"] + r["verifier"]["checks"] for r in live),
        "executed": max(r["last_executed"] for r in live),
        "view": max(r["view"] for r in live),
    }


def replica_cpu_s(cluster: LocalCluster) -> float:
    """CPU seconds (user + system, all threads) used so far by the running replica processes."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for process in cluster.processes.values():
        if process.poll() is None:
            fields = Path(f"/proc/{process.pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / ticks
    return total


def own_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def saturate(cluster: LocalCluster, config: Config, clients: int, seconds: float) -> dict[str, Any]:
    """Closed-loop load; throughput, per-batch costs and CPU per transaction over the window."""
    before = totals(await cluster_status(config))
    replicas_cpu, client_cpu = replica_cpu_s(cluster), own_cpu_s()
    result = await cluster.load(clients, duration_s=seconds, timeout_s=30.0)
    replicas_cpu, client_cpu = replica_cpu_s(cluster) - replicas_cpu, own_cpu_s() - client_cpu
    after = totals(await cluster_status(config))
    batches = max(1.0, after["executed"] - before["executed"])
    accepted = max(1, len(result.outcomes))
    cpu_per_tx = (replicas_cpu + client_cpu) / accepted
    return {
        "tx_per_s": result.throughput,
        "accepted": len(result.outcomes),
        "timeouts": result.timeouts,
        "batches": int(batches),
        "tx_per_batch": len(result.outcomes) / batches,
        "messages_per_batch": (after["messages"] - before["messages"]) / batches,
        "verifications_per_batch": (after["verifications"] - before["verifications"]) / batches,
        "view_changes": int(after["view"] - before["view"]),
        "replicas_cpu_ms_per_tx": replicas_cpu / accepted * 1e3,
        "load_generator_cpu_ms_per_tx": client_cpu / accepted * 1e3,
        "cpu_share_used": (replicas_cpu + client_cpu) / (result.elapsed_s * (os.cpu_count() or 1)),
        "cpu_bound_tx_per_s": (os.cpu_count() or 1) / cpu_per_tx,
        "seconds": result.elapsed_s,
    }


def latency_summary(result: LoadResult, rate: float) -> dict[str, Any]:
    return {
        "offered_tx_per_s": rate,
        "achieved_tx_per_s": result.throughput,
        "p50_ms": result.latency_quantile(0.5) * 1e3,
        "p99_ms": result.latency_quantile(0.99) * 1e3,
        "not_served": result.timeouts,
    }


async def latency_at(cluster: LocalCluster, rate: float, seconds: float) -> dict[str, Any]:
    """Open-loop load at ``rate``; enough logical clients that none is needed while busy (three
    seconds' worth, within the funded accounts; a request finding none idle counts as not served)."""
    pool = min(int(rate * 3) + 16, LOAD_ACCOUNTS)
    result = await cluster.load(pool, duration_s=seconds, rate_per_s=rate, timeout_s=30.0)
    return latency_summary(result, rate)


async def resume_after_primary_kill(cluster: LocalCluster, config: Config, seconds: float) -> dict[str, Any]:
    """SIGKILL the primary under closed-loop load; time until a request is accepted in a later view."""
    before = totals(await cluster_status(config))
    primary = config.protocol.primary(int(before["view"]))
    running = asyncio.create_task(cluster.load(64, duration_s=seconds, timeout_s=30.0, retry_s=0.5))
    await asyncio.sleep(1.0)
    killed_at = time.perf_counter()
    cluster.kill(primary)
    result = await running
    resumed = [o.finished_at for o in result.outcomes if o.view > before["view"]]
    return {
        "killed_replica": primary,
        "resume_s": (min(resumed) - killed_at) if resumed else None,
        "accepted_after_kill": len(resumed),
        "view_change_timeout_ms": config.protocol.view_change_timeout_ms,
        "client_retry_ms": 500,
    }


async def measure_n(n: int, seconds: float, clients: int, directory: Path) -> dict[str, Any]:
    cluster = LocalCluster(directory / f"n{n}", n, load_accounts=LOAD_ACCOUNTS)
    config = cluster.create()
    cluster.start(timeout_s=60.0)
    try:
        await cluster.load(32, duration_s=1.0)  # warm-up
        healthy = await saturate(cluster, config, clients, seconds)
        healthy_latency = await latency_at(cluster, 0.8 * healthy["tx_per_s"], seconds * 0.75)
        resume = await resume_after_primary_kill(cluster, config, seconds=max(6.0, seconds))
        crashed = await saturate(cluster, config, clients, seconds * 0.75)
        crashed_latency = await latency_at(cluster, 0.8 * crashed["tx_per_s"], seconds * 0.75)
    finally:
        cluster.stop()
    return {
        "n": n,
        "f": config.f,
        "healthy": {**healthy, "latency_at_80pct": healthy_latency},
        "one_crashed_backup": {**crashed, "latency_at_80pct": crashed_latency},
        "primary_kill": resume,
    }


def ratios(n: int, tx_per_s: float, signatures: dict[str, float]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if n in PROTOTYPE_TX_S:
        low, high = PROTOTYPE_TX_S[n]
        out["vs_prototype"] = tx_per_s / statistics.mean((low, high))
        out["prototype_tx_s"] = [low, high]
    if n in TARGET_TX_S:
        out["vs_target"] = tx_per_s / TARGET_TX_S[n]
        out["target_tx_s"] = TARGET_TX_S[n]
    speed = min(BEFORE_REPLY_FRAMES, key=lambda sign_us: abs(sign_us - signatures["pynacl_sign_us"]))
    before = BEFORE_REPLY_FRAMES[speed]
    if n in before:
        out["vs_before_reply_frames"] = tx_per_s / before[n]["tx_s"]
        out["before_reply_frames"] = {**before[n], "pynacl_sign_us": speed}
    return out


# ------------------------------------------------------------ report


def print_table(runs: list[dict[str, Any]], signatures: dict[str, float]) -> None:
    sign, verify = signatures["pynacl_sign_us"], signatures["pynacl_verify_us"]
    sign_ratio = sign / statistics.mean(PYNACL_US["sign"])
    verify_ratio = verify / statistics.mean(PYNACL_US["verify"])
    print(
        f"Ed25519 with PyNaCl: sign {sign:.1f} us ({sign_ratio:.2f} x ANCHORS), "
        f"verify {verify:.1f} us ({verify_ratio:.2f} x ANCHORS)"
    )
    columns = [
        ("n", 3),
        ("sat tx/s", 9),
        ("p50 ms", 7),
        ("p99 ms", 7),
        ("1 crash tx/s", 12),
        ("p50 ms", 7),
        ("p99 ms", 7),
        ("resume s", 8),
        ("tx/batch", 8),
        ("msgs/batch", 10),
        ("verif/batch", 11),
        ("VCs", 4),
        ("CPU ms/tx", 9),
        ("CPU used", 8),
        ("vs proto", 8),
        ("vs target", 9),
        ("vs before", 9),
    ]
    print(" ".join(f"{name:>{width}}" for name, width in columns))
    for run in runs:
        healthy, crashed = run["healthy"], run["one_crashed_backup"]
        resume = run["primary_kill"]["resume_s"]
        rat = run["ratios"]
        print(
            f"{run['n']:>3} {healthy['tx_per_s']:>9.0f} {healthy['latency_at_80pct']['p50_ms']:>7.0f} "
            f"{healthy['latency_at_80pct']['p99_ms']:>7.0f} {crashed['tx_per_s']:>12.0f} "
            f"{crashed['latency_at_80pct']['p50_ms']:>7.0f} {crashed['latency_at_80pct']['p99_ms']:>7.0f} "
            f"{'-' if resume is None else f'{resume:.2f}':>8} {healthy['tx_per_batch']:>8.1f} "
            f"{healthy['messages_per_batch']:>10.1f} {healthy['verifications_per_batch']:>11.1f} "
            f"{healthy['view_changes'] + crashed['view_changes']:>4} "
            f"{healthy['replicas_cpu_ms_per_tx'] + healthy['load_generator_cpu_ms_per_tx']:>9.2f} "
            f"{healthy['cpu_share_used']:>8.0%} "
            f"{rat.get('vs_prototype', float('nan')):>8.2f} {rat.get('vs_target', float('nan')):>9.2f} "
            f"{rat.get('vs_before_reply_frames', float('nan')):>9.2f}"
        )
    print("VCs: view changes during the saturation windows (spurious: no replica was faulty then,")
    print("except the killed one in the crashed-backup window). Ratios are of saturation tx/s.")
    print("CPU ms/tx: CPU of all replicas and the load generator per accepted transaction; CPU used:")
    print("the share of the machine's cores they got (the rest went to other processes).")
    print(
        "vs before: against BEFORE_REPLY_FRAMES (every reply signed on its own) at the nearest signing speed."
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="n = 4 and 16 only, short windows")
    parser.add_argument("--sizes", type=int, nargs="*", help="cluster sizes (default 4 7 10 16)")
    parser.add_argument("--clients", type=int, default=512, help="logical clients at saturation")
    args = parser.parse_args(argv)
    sizes = args.sizes or ([4, 16] if args.quick else [4, 7, 10, 16])
    seconds = 3.0 if args.quick else 8.0
    started = time.perf_counter()
    load_before = os.getloadavg()
    signatures = measure_signatures(500 if args.quick else 3000)
    runs = []
    with tempfile.TemporaryDirectory(prefix="bench-cluster-") as scratch:
        for n in sizes:
            run = asyncio.run(measure_n(n, seconds, args.clients, Path(scratch)))
            run["ratios"] = ratios(n, run["healthy"]["tx_per_s"], signatures)
            runs.append(run)
            print(f"n={n} done ({time.perf_counter() - started:.0f} s)", flush=True)
    report = {
        "benchmark": "cluster",
        "quick": args.quick,
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "load_average_before": load_before,
            "load_average_after": os.getloadavg(),
        },
        "settings": {"clients_at_saturation": args.clients, "window_s": seconds, "sqlite_sync": "full"},
        "signatures": signatures,
        "anchors": {
            "prototype_tx_s": PROTOTYPE_TX_S,
            "target_tx_s": TARGET_TX_S,
            "before_reply_frames": BEFORE_REPLY_FRAMES,
            "pynacl_us": PYNACL_US,
        },
        "runs": runs,
        "wall_s": time.perf_counter() - started,
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "cluster.json").write_text(json.dumps(report, indent=2))
    print_table(runs, signatures)
    print(f"load average before/after: {load_before} / {report['machine']['load_average_after']}")
    print(f"wrote {RESULTS / 'cluster.json'} in {report['wall_s']:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
