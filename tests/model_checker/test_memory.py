"""The memory report: measured peak RSS, by part, per search."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from model_checker.checker import check
from model_checker.examples.two_phase import two_phase

_SEARCH_IN_A_FRESH_PROCESS = """
import json
from model_checker.checker import check
from model_checker.examples.two_phase import two_phase
result = check(two_phase(5), liveness=True)
memory = result.memory
print(json.dumps({"distinct": result.distinct_states, "start": memory.start_rss, "peak": memory.peak_rss,
                  "visited": memory.visited_table, "graph": memory.graph,
                  "parts": memory.per_state(result.distinct_states)}))
"""


def test_parts_add_up_to_what_the_search_grew() -> None:
    """In a process of its own: memory that earlier tests freed would be reused without growing."""
    run = subprocess.run([sys.executable, "-c", _SEARCH_IN_A_FRESH_PROCESS], capture_output=True, check=True)
    memory = json.loads(run.stdout)
    assert memory["peak"] >= memory["start"]
    # 8 + 4 bytes a state by id, and the set's slots (a power of two, at most 60% full, and the slot
    # of the fingerprint 0): 8 bytes each, and 4 more for ids since liveness records the graph
    by_slots = memory["visited"] - 12 * memory["distinct"]
    slots = by_slots // 12 - 1
    assert by_slots % 12 == 0 and slots & (slots - 1) == 0 and memory["distinct"] <= 0.6 * slots
    assert memory["graph"] > 0
    parts = memory["parts"]
    assert parts["total"] >= parts["visited_table"] + parts["graph"]


@pytest.mark.skipif(not os.path.exists("/proc/self/clear_refs"), reason="peak reset is Linux's")
def test_a_search_reports_its_own_peak_not_an_earlier_one() -> None:
    """``pot check default`` runs its companions in the same process after a larger search."""
    earlier = np.ones(40_000_000)  # 320 MB, handed back to the system when freed
    del earlier
    small = check(two_phase(3), liveness=False)
    assert small.memory is not None and small.memory.grown < 50 * 2**20
