"""The SQLite store is atomic and survives reopening; the event log is parseable JSONL."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pot_impl.runtime.events import EventLog, read_events
from pot_impl.runtime.store import Store, StoreError, WriteBatch, int_key

OPS = st.lists(
    st.tuples(st.sampled_from(["put", "delete", "prune"]), st.integers(0, 20), st.binary(max_size=8)),
    max_size=30,
)


@settings(max_examples=40, deadline=None)
@given(batches=st.lists(OPS, max_size=5))
def test_store_matches_a_dict_model_across_reopen(
    tmp_path_factory: pytest.TempPathFactory, batches: list[list[tuple[str, int, bytes]]]
) -> None:
    directory = tmp_path_factory.mktemp("store")
    model: dict[int, bytes] = {}
    store = Store(directory / "node.db", sync="normal")
    for ops in batches:
        batch = WriteBatch()
        for op, key, value in ops:
            if op == "put":
                batch.put("log", int_key(key), value)
                model[key] = value
            elif op == "delete":
                batch.delete("log", int_key(key))
                model.pop(key, None)
            else:
                batch.prune("log", int_key(key))
                model = {k: v for k, v in model.items() if k >= key}
        store.commit(batch)
    store.close()
    reopened = Store(directory / "node.db")
    assert reopened.scan("log") == [(int_key(k), model[k]) for k in sorted(model)]
    assert reopened.get("log", int_key(999)) is None
    reopened.close()


def test_event_log_lines_are_json_with_identity_fields(tmp_path: Path) -> None:
    log = EventLog(tmp_path / "events.jsonl", node_id=3)
    log.emit("received", sender=1, type="PREPARE", view=0, seq=5, digest=b"\x01\x02")
    log.emit("committed", view=0, seq=5, digest=b"\x01\x02")
    log.close()
    events = read_events(tmp_path / "events.jsonl")
    assert [e["event"] for e in events] == ["received", "committed"]
    assert events[0]["node"] == 3 and events[0]["digest"] == "0102" and events[0]["sender"] == 1
    assert [e["n"] for e in events] == [1, 2]


def test_torn_last_line_is_ignored(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    path.write_text(json.dumps({"event": "started"}) + "\n" + '{"event": "rec')
    assert read_events(path) == [{"event": "started"}]


def test_counter_continues_after_a_crash_that_tore_the_last_line(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    log = EventLog(path, node_id=1)
    for _ in range(3):
        log.emit("started")
    log.close()
    with path.open("a") as torn:
        torn.write('{"node":1,"n":4,"eve')  # SIGKILL in the middle of a write
    restarted = EventLog(path, node_id=1)
    restarted.emit("recovered")
    restarted.close()
    events = read_events(path)
    assert [e["n"] for e in events] == [1, 2, 3, 4]
    assert events[-1]["event"] == "recovered"


def test_a_second_store_on_the_same_database_is_refused_until_the_first_closes(tmp_path: Path) -> None:
    """Two nodes on one store would both act as its replica."""
    first = Store(tmp_path / "node.db")
    with pytest.raises(StoreError, match=rf"in use by another node \(pid {os.getpid()}\)"):
        Store(tmp_path / "node.db")
    first.close()
    Store(tmp_path / "node.db").close()
