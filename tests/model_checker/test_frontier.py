"""The encoded frontier: first in, first out, whatever the blocks, chunk size and memory budget."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from model_checker import codec
from model_checker.checker import check
from model_checker.examples.two_phase import two_phase
from model_checker.frontier import Frontier, NewStates
from tests.model_checker.helpers import search_figures

STATES = st.tuples(st.integers(), st.frozensets(st.integers(0, 9), max_size=3), st.text(max_size=3))

PLAIN = st.tuples(st.integers(-(2**63), 2**63 - 1), st.frozensets(st.integers(0, 9), max_size=3))
"""States the codec writes itself (``STATES`` hold strings, so their batches are pickled)."""

Block = list[tuple[int, frozenset[int], str]] | list[tuple[int, frozenset[int]]]


BLOCKS = st.tuples(st.one_of(st.lists(STATES, max_size=12), st.lists(PLAIN, max_size=12)), st.booleans())
"""A block of states, and whether it comes encoded."""


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.lists(BLOCKS, max_size=3), max_size=6),
    st.integers(1, 10),
    st.sampled_from([None, 0, 64, 400]),
)
def test_chunks_give_back_every_state_and_id_in_order(
    batches: list[list[tuple[Block, bool]]], size: int, budget: int | None
) -> None:
    """Each batch of new states comes in pieces, some as objects and some already encoded (a
    worker's); the chunks give them all back in order, with their ids."""
    frontier: Frontier[Any] = Frontier(budget)
    every: list[Any] = []
    for batch in batches:
        pieces = [(codec.encode(block) if encoded else block, len(block)) for block, encoded in batch]
        count = sum(len(block) for block, _ in batch)
        frontier.extend(NewStates(pieces), np.arange(len(every), len(every) + count, dtype=np.int32))
        every += [state for block, _ in batch for state in block]
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
