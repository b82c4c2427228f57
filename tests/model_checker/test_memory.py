"""The memory report: measured peak RSS, by part, per search."""

from __future__ import annotations

import os

import numpy as np
import pytest

from model_checker.checker import check
from model_checker.examples.two_phase import two_phase


def test_parts_add_up_to_what_the_search_grew() -> None:
    result = check(two_phase(5), liveness=True)
    memory = result.memory
    assert memory is not None and memory.peak_rss >= memory.start_rss
    assert memory.visited_table == 24 * result.distinct_states
    assert memory.graph > 0 and memory.grown >= 0
    parts = memory.per_state(result.distinct_states)
    assert parts["total"] >= parts["visited_table"]


@pytest.mark.skipif(not os.path.exists("/proc/self/clear_refs"), reason="peak reset is Linux's")
def test_a_search_reports_its_own_peak_not_an_earlier_one() -> None:
    """``pot check default`` runs its companions in the same process after a larger search."""
    earlier = np.ones(40_000_000)  # 320 MB, handed back to the system when freed
    del earlier
    small = check(two_phase(3), liveness=False)
    assert small.memory is not None and small.memory.grown < 50 * 2**20
