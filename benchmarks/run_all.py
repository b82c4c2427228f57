"""Run every benchmark module (``benchmarks/bench_*.py``) in turn: ``make bench``.

Each benchmark runs in its own process so that one's memory and threads do not
colour the next one's figures. Extra arguments (e.g. ``--quick``) are passed on.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path


def benchmark_modules() -> list[str]:
    """Module names of all benchmarks, in a stable order."""
    here = Path(__file__).resolve().parent
    return [f"benchmarks.{path.stem}" for path in sorted(here.glob("bench_*.py"))]


def main(argv: list[str]) -> int:
    failed: list[str] = []
    for module in benchmark_modules():
        print(f"\n=== {module}", flush=True)
        started = time.perf_counter()
        status = subprocess.call([sys.executable, "-m", module, *argv])
        print(f"=== {module}: exit {status} after {time.perf_counter() - started:.0f} s", flush=True)
        if status != 0:
            failed.append(module)
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
