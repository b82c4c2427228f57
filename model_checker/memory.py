"""What a search costs in memory, measured rather than counted.

The visited table and the liveness graph are numpy arrays whose sizes are
exact; the frontier and everything else Python holds are not, so they are
reported as what is left of the process's peak resident set size once the
arrays and the resident size at the start are taken off.
"""

from __future__ import annotations

import os
import resource
from dataclasses import dataclass
from typing import Any

_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def peak_rss() -> int:
    """The process's peak resident set size since the last ``reset_peak``, in bytes (Linux's
    VmHWM); the peak over the process's life where /proc is missing."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except (OSError, IndexError, ValueError):
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def reset_peak() -> None:
    """Start a new peak at the current RSS, so a second search in one process (a model's
    companions) reports its own peak, not the first one's. Linux only; elsewhere a no-op."""
    try:
        with open("/proc/self/clear_refs", "w") as clear_refs:
            clear_refs.write("5")
    except OSError:
        pass


def current_rss() -> int:
    """The process's resident set size now, in bytes; the peak where /proc is missing."""
    try:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * _PAGE
    except (OSError, IndexError, ValueError):
        return peak_rss()


@dataclass(frozen=True)
class Memory:
    """A search's memory: peak RSS and the parts of it that are known exactly."""

    start_rss: int
    peak_rss: int
    visited_table: int
    graph: int
    peak_frontier_states: int

    @property
    def grown(self) -> int:
        """Peak RSS above what the process held when the search began."""
        return max(self.peak_rss - self.start_rss, 0)

    @property
    def frontier_and_other(self) -> int:
        """What grew besides the arrays: the frontier's Python objects, chunk buffers, caches."""
        return max(self.grown - self.visited_table - self.graph, 0)

    def per_state(self, distinct: int) -> dict[str, float]:
        """Bytes per distinct state, by part."""
        per = max(distinct, 1)
        return {
            "total": self.grown / per,
            "visited_table": self.visited_table / per,
            "graph": self.graph / per,
            "frontier_and_other": self.frontier_and_other / per,
        }

    def to_json(self, distinct: int) -> dict[str, Any]:
        return {
            "peak_rss_bytes": self.peak_rss,
            "start_rss_bytes": self.start_rss,
            "peak_frontier_states": self.peak_frontier_states,
            "bytes_per_state": {k: round(v, 1) for k, v in self.per_state(distinct).items()},
        }

    def describe(self, distinct: int) -> str:
        """One line for the text report."""
        per = self.per_state(distinct)
        graph = f", graph {per['graph']:.0f}" if self.graph else ""
        return (
            f"peak RSS {self.peak_rss / 2**20:,.0f} MiB; {per['total']:,.0f} B per state above the "
            f"{self.start_rss / 2**20:,.0f} MiB at start (visited table {per['visited_table']:.0f}{graph}, "
            f"frontier and other objects {per['frontier_and_other']:,.0f})"
        )
