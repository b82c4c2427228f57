"""The visited table's fingerprint set against a plain dictionary, batch by batch."""

from __future__ import annotations

import pickle

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from model_checker.visited import VisitedTable

INT64 = st.integers(-(2**63), 2**63 - 1)
# A small pool, 0 and the extremes included, so that batches repeat fingerprints across and within.
FINGERPRINTS = st.lists(
    st.one_of(st.sampled_from([0, 1, -1, 2**63 - 1, -(2**63)]), INT64), min_size=1, max_size=40, unique=True
).flatmap(lambda pool: st.lists(st.lists(st.sampled_from(pool), max_size=300), min_size=1, max_size=12))


@settings(max_examples=60, deadline=None)
@given(FINGERPRINTS, st.lists(st.one_of(st.none(), st.integers(0, 50)), min_size=12, max_size=12))
def test_batches_enter_first_occurrences_in_order_with_ids_as_a_dictionary_would(
    batches: list[list[int]], limits: list[int | None]
) -> None:
    table = VisitedTable(with_ids=True)
    known: dict[int, int] = {}
    for batch, limit in zip(batches, limits, strict=False):
        fps = np.array(batch, dtype=np.int64)
        positions, ids, dropped = table.insert_new(fps, limit, with_ids=True)
        expected_positions: list[int] = []
        expected_ids: list[int] = []
        left_out = False
        for position, fp in enumerate(batch):
            if fp not in known and (limit is None or len(expected_positions) < limit):
                known[fp] = len(table) + len(expected_positions)
                expected_positions.append(position)
            left_out |= fp not in known
            expected_ids.append(known.get(fp, -1))
        assert positions.tolist() == expected_positions and dropped == left_out
        assert ids is not None and ids.tolist() == expected_ids
        table.record(fps[positions], np.zeros(len(positions), dtype=np.int32))
    assert len(table) == len(known)
    assert sorted(table.fps_by_id.view.tolist()) == sorted(known)


def test_the_set_grows_past_its_first_slots_and_keeps_every_fingerprint() -> None:
    table = VisitedTable()
    rng = np.random.default_rng(7)
    fps = rng.integers(-(2**63), 2**63 - 1, size=50_000, dtype=np.int64)
    for batch in np.array_split(fps, 25):
        positions, _, _ = table.insert_new(batch)
        table.record(batch[positions], np.zeros(len(positions), dtype=np.int32))
    assert len(table) == len(np.unique(fps))
    again, _, dropped = table.insert_new(fps, limit=0)
    assert len(again) == 0 and not dropped


def test_a_pickled_table_answers_as_the_original() -> None:
    """Checkpoints pickle the table as it is."""
    table = VisitedTable(with_ids=True)
    fps = np.unique(np.random.default_rng(3).integers(-(2**63), 2**63 - 1, size=1_000, dtype=np.int64))
    positions, _, _ = table.insert_new(fps)
    table.record(fps[positions], np.zeros(len(positions), dtype=np.int32))
    copy = pickle.loads(pickle.dumps(table))
    _, ids, _ = copy.insert_new(fps[::-1].copy(), with_ids=True)
    assert ids is not None and ids.tolist() == list(range(len(fps)))[::-1]
