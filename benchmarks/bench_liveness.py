"""Cost of liveness checking against safety-only checking of the same model, in the same run.

Run: ``.venv/bin/python -m benchmarks.bench_liveness [--quick] [--repeat N]``. TwoPhase with
its two temporal properties under weak fairness (RM = 5 and 7), and the protocol's liveness
models (`default`'s companions: ``pbft-live``, ``pbft-live-gap``, ``ledger``): each once with
``liveness=False`` (invariants and deadlock only), once with liveness (the search records the
state graph, then the SCC analysis runs per property). Prints states, edges, SCCs, seconds,
memory and the ratio; writes ``benchmarks/results/liveness.json``. TLC was reported ~4.6x
slower with liveness than without (ANCHORS.md); the target here is at most 2x.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from benchmarks.bench_checker import RESULTS, check_counts, environment, measure

TLC_LIVENESS_RATIO = 4.6
TARGET_RATIO = 2.0
PROTOCOL_MODELS = ("pbft-live", "pbft-live-gap", "ledger")
"""The models whose temporal properties `pot check default` checks (its companions)."""


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="RM = 5 only")
    parser.add_argument("--repeat", type=int, default=3, help="runs per configuration (best is kept)")
    args = parser.parse_args(argv)
    sizes = (5,) if args.quick else (5, 7)
    configurations: list[tuple[str, dict[str, Any]]] = [("two-phase", {"RM": rm}) for rm in sizes]
    configurations += [(name, {}) for name in PROTOCOL_MODELS[: 1 if args.quick else None]]
    rows: list[dict[str, Any]] = []
    print("Safety-only against safety + liveness on the same model, best of", args.repeat)
    print(
        f"{'model':<14} {'states':>8} {'edges':>9} {'SCCs':>8} {'safety s':>9} {'liveness s':>10} "
        f"{'of which SCC':>12} {'ratio':>6} {'cpu ratio':>9} {'graph MB':>8} {'B/edge':>6} {'RSS MB':>7} "
        f"{'RSS safety':>10}"
    )
    for name, constants in configurations:
        safety = measure(name, constants, liveness=False, repeat=args.repeat)
        live = measure(name, constants, liveness=True, repeat=args.repeat)
        label = name + "".join(f" {k}={v}" for k, v in constants.items())
        if name == "two-phase":
            check_counts(safety)
            check_counts(live)
        if set(live["properties"].values()) != {"holds"}:
            raise SystemExit(f"{label}: expected every property to hold, got {live['properties']}")
        ratio = live["seconds"] / safety["seconds"]
        cpu_ratio = live["cpu_seconds"] / safety["cpu_seconds"]
        row = {
            "model": label,
            "states": live["distinct"],
            "edges": live["graph_edges"],
            "sccs": live["sccs"],
            "temporal_properties": sorted(set(live["properties"]) - set(safety["properties"])),
            "safety_seconds": safety["seconds"],
            "liveness_seconds": live["seconds"],
            "scc_analysis_seconds": live["liveness_seconds"],
            "ratio": ratio,
            "safety_cpu_seconds": safety["cpu_seconds"],
            "liveness_cpu_seconds": live["cpu_seconds"],
            "cpu_ratio": cpu_ratio,
            "tlc_ratio": TLC_LIVENESS_RATIO,
            "target_ratio": TARGET_RATIO,
            "graph_bytes": live["graph_bytes"],
            "graph_bytes_per_edge": live["graph_bytes"] / live["graph_edges"],
            "peak_rss_mb_liveness": live["peak_rss_mb"],
            "peak_rss_mb_safety": safety["peak_rss_mb"],
            "safety_runs": safety["seconds_all"],
            "liveness_runs": live["seconds_all"],
        }
        rows.append(row)
        print(
            f"{label:<14} {row['states']:>8,} {row['edges']:>9,} {row['sccs']:>8,} "
            f"{row['safety_seconds']:>9.2f} "
            f"{row['liveness_seconds']:>10.2f} {row['scc_analysis_seconds']:>12.2f} {ratio:>5.2f}x "
            f"{cpu_ratio:>8.2f}x "
            f"{row['graph_bytes'] / 2**20:>8.1f} {row['graph_bytes_per_edge']:>6.1f} "
            f"{row['peak_rss_mb_liveness']:>7.0f} {row['peak_rss_mb_safety']:>10.0f}"
        )
    print(
        f"ratio = liveness run / safety-only run, wall and CPU seconds "
        f"(TLC: ~{TLC_LIVENESS_RATIO}x; target <= {TARGET_RATIO}x)"
    )
    RESULTS.mkdir(exist_ok=True)
    document = {"benchmark": "liveness", "environment": environment(), "rows": rows}
    (RESULTS / "liveness.json").write_text(json.dumps(document, indent=2) + "\n")
    print(f"written {RESULTS / 'liveness.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
