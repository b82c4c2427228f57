"""Trace printing (changed fields only, colour on request) and ITF export/import."""

from __future__ import annotations

import io
import json
from enum import IntEnum
from typing import Any, NamedTuple

from hypothesis import given
from hypothesis import strategies as st

from model_checker.checker import check
from model_checker.examples.two_phase import two_phase
from model_checker.trace import (
    Palette,
    Step,
    Trace,
    format_trace,
    from_itf_value,
    read_itf,
    to_itf,
    to_itf_value,
)


def _buggy_trace() -> Trace[Any]:
    trace = check(two_phase(3, commit_needs_all_prepared=False)).counterexample
    assert trace is not None
    return trace


def test_steps_are_numbered_and_show_only_changed_fields() -> None:
    model = two_phase(3, commit_needs_all_prepared=False)
    text = format_trace(model, _buggy_trace())
    lines = text.splitlines()
    assert lines[0].strip() == "1. Initial state"
    assert "   2. TMCommit()" in text
    step_3 = text[text.index("   3.") : text.index("   4.")]
    assert "rmState[1] = ABORTED" in step_3
    assert "tmState" not in step_3 and "msgs" not in step_3
    assert "\x1b[" not in text


def test_colour_only_when_asked() -> None:
    model = two_phase(3, commit_needs_all_prepared=False)
    assert "\x1b[" in format_trace(model, _buggy_trace(), Palette(True))


def test_itf_document_shape() -> None:
    model = two_phase(3, commit_needs_all_prepared=False)
    document = to_itf(model, _buggy_trace())
    assert document["vars"] == ["rmState", "tmState", "tmPrepared", "msgs"]
    assert [s["#meta"]["index"] for s in document["states"]] == list(range(len(document["states"])))
    assert document["states"][1]["#meta"]["action"] == "TMCommit()"
    assert document["states"][1]["tmState"] == "COMMITTED"
    assert document["states"][0]["rmState"] == {"#map": [[1, "WORKING"], [2, "WORKING"], [3, "WORKING"]]}
    assert document["states"][0]["msgs"] == {"#set": []}
    assert "loop" not in document
    json.dumps(document)  # plain JSON


def test_itf_file_round_trip() -> None:
    model = two_phase(3, commit_needs_all_prepared=False)
    trace = _buggy_trace()
    stream = io.StringIO(json.dumps(to_itf(model, trace)))
    variables, states, loop = read_itf(stream)
    assert loop is None and variables == list(model.record(trace.steps[0].state))
    for decoded, step in zip(states, trace.steps, strict=True):
        encoded = {name: to_itf_value(value) for name, value in model.record(step.state).items()}
        assert {name: to_itf_value(value) for name, value in decoded.items()} == encoded
    last = states[-1]
    assert last["tmState"] == "COMMITTED"
    assert frozenset(last["rmState"].values()) == {"ABORTED", "COMMITTED", "WORKING"}


def test_lasso_exports_its_loop() -> None:
    model = two_phase(3)
    steps = tuple(Step(None, s) for s in model.init())
    trace = Trace("P", "eventually", steps, loop=0, stutters=True)
    assert to_itf(model, trace)["loop"] == 0


plain_values = st.recursive(
    st.integers(-(2**70), 2**70) | st.booleans(),
    lambda inner: st.lists(inner, max_size=4).map(tuple) | st.frozensets(inner, max_size=4),
    max_leaves=20,
)


@given(plain_values)
def test_plain_values_round_trip_exactly(value: object) -> None:
    encoded = to_itf_value(value)
    assert from_itf_value(json.loads(json.dumps(encoded))) == value


def test_big_integers_use_bigint() -> None:
    assert to_itf_value(2**60) == {"#bigint": str(2**60)}
    assert to_itf_value(7) == 7


class Colour(IntEnum):
    RED = 1


class Point(NamedTuple):
    x: int
    colour: Colour


def test_records_and_enums() -> None:
    assert to_itf_value(Point(3, Colour.RED)) == {"x": 3, "colour": "RED"}
    assert from_itf_value({"x": 3, "colour": "RED"}) == {"x": 3, "colour": "RED"}


class Replica(NamedTuple):
    view: int
    log: frozenset[int]


def test_changes_are_located_inside_nested_records_and_tuples() -> None:
    from model_checker.model import Action, Label, Model

    start = (Replica(0, frozenset()), Replica(0, frozenset()))
    after = (Replica(0, frozenset()), Replica(1, frozenset({7})))
    model: Model[Any] = Model(
        name="m",
        init=lambda: iter([start]),
        actions=(Action("A", lambda s: iter([])),),
        fields=lambda s: {"replicas": s},
    )
    trace = Trace("P", "invariant", (Step(None, start), Step(Label("A"), after)))
    text = format_trace(model, trace)
    step_2 = text[text.index("   2.") :]
    assert "replicas[1].view = 1  (was 0)" in step_2
    assert "replicas[1].log + {7}" in step_2
    assert "replicas[0]" not in step_2
