"""The encoded frontier: first in, first out, whatever the blocks, chunk size and memory budget."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from model_checker.checker import check
from model_checker.examples.two_phase import two_phase
from model_checker.frontier import Frontier
from tests.model_checker.helpers import search_figures

STATES = st.tuples(st.integers(), st.frozensets(st.integers(0, 9), max_size=3), st.text(max_size=3))


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.lists(STATES, max_size=12), max_size=8),
    st.integers(1, 10),
    st.sampled_from([None, 0, 64, 400]),
)
def test_chunks_give_back_every_state_and_id_in_order(
    blocks: list[list[tuple[int, frozenset[int], str]]], size: int, budget: int | None
) -> None:
    frontier: Frontier[tuple[int, frozenset[int], str]] = Frontier(budget)
    every, first_id = [], 0
    for block in blocks:
        frontier.append(block, np.arange(first_id, first_id + len(block), dtype=np.int32))
        every += block
        first_id += len(block)
    assert len(frontier) == len(every)
    if budget == 0 and every:
        assert frontier.spilled_bytes > 0 and frontier.encoded_bytes == 0
    chunks = list(frontier.chunks(size))
    assert [s for states, _ in chunks for s in states] == every
    assert np.concatenate([ids for _, ids in chunks] or [np.empty(0, np.int32)]).tolist() == list(
        range(len(every))
    )
    assert all(len(states) == size for states, _ in chunks[:-1]) and len(frontier) == 0


@pytest.mark.parametrize("workers", [1, 2])
def test_a_search_spilling_its_frontier_to_disk_is_the_same_search(workers: int) -> None:
    whole = check(two_phase(5), liveness=False, workers=workers)
    spilled = check(two_phase(5), liveness=False, workers=workers, memory_budget=1)
    assert search_figures(spilled) == search_figures(whole)
    assert spilled.memory is not None and whole.memory is not None
    assert spilled.memory.spilled_bytes > 0 and spilled.memory.frontier_bytes == 0
    assert whole.memory.spilled_bytes == 0 and whole.memory.frontier_bytes > 0
