"""What a search costs in memory, measured rather than counted.

The visited table, the liveness graph and the encoded frontier have exact
sizes; everything else Python holds does not, so it is reported as what is
left of the process's peak resident set size once those and the resident size
at the start are taken off.
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
    frontier_bytes: int = 0
    """The most bytes of encoded frontier held in memory at once."""
    spilled_bytes: int = 0
    """Bytes of frontier written to disk past the memory budget (not part of RSS)."""

    @property
    def grown(self) -> int:
        """Peak RSS above what the process held when the search began."""
        return max(self.peak_rss - self.start_rss, 0)

    @property
    def other(self) -> int:
        """What grew besides the arrays and the encoded frontier: decoded chunks, caches, allocator."""
        return max(self.grown - self.visited_table - self.graph - self.frontier_bytes, 0)

    def per_state(self, distinct: int) -> dict[str, float]:
        """Bytes per distinct state, by part."""
        per = max(distinct, 1)
        return {
            "total": self.grown / per,
            "visited_table": self.visited_table / per,
            "graph": self.graph / per,
            "frontier": self.frontier_bytes / per,
            "other": self.other / per,
        }

    def to_json(self, distinct: int) -> dict[str, Any]:
        return {
            "peak_rss_bytes": self.peak_rss,
            "start_rss_bytes": self.start_rss,
            "peak_frontier_states": self.peak_frontier_states,
            "frontier_bytes": self.frontier_bytes,
            "spilled_bytes": self.spilled_bytes,
            "bytes_per_state": {k: round(v, 1) for k, v in self.per_state(distinct).items()},
        }

    def _frontier_part(self, per: dict[str, float]) -> str:
        if self.frontier_bytes or self.spilled_bytes:
            return f"encoded frontier {per['frontier']:,.0f}, other {per['other']:,.0f}"
        return f"frontier and other objects {per['other']:,.0f}"

    def describe(self, distinct: int) -> str:
        """One line for the text report."""
        per = self.per_state(distinct)
        graph = f", graph {per['graph']:.0f}" if self.graph else ""
        spilled = (
            f"; {self.spilled_bytes / 2**20:,.1f} MiB of frontier spilled to disk"
            if self.spilled_bytes
            else ""
        )
        return (
            f"peak RSS {self.peak_rss / 2**20:,.0f} MiB; {per['total']:,.0f} B per state above the "
            f"{self.start_rss / 2**20:,.0f} MiB at start (visited table {per['visited_table']:.0f}{graph}, "
            f"{self._frontier_part(per)}){spilled}"
        )
