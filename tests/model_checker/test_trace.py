"""Trace printing (changed fields only, colour on request) and ITF export/import."""

from __future__ import annotations

import enum
import io
import json
from collections.abc import Callable
from dataclasses import dataclass
from enum import IntEnum
from typing import Any, NamedTuple

import pytest
from hypothesis import given
from hypothesis import strategies as st

from model_checker.checker import check
from model_checker.examples.two_phase import two_phase
from model_checker.model import Action, Label, Model, SpecError
from model_checker.trace import (
    FrozenDict,
    Palette,
    Record,
    Step,
    Trace,
    format_trace,
    from_itf_value,
    read_itf,
    to_itf,
    to_itf_value,
)
from tests.itf_reader import assert_valid_itf


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
    rm_state = document["states"][0]["rmState"]
    assert rm_state == {"#map": [[{"#bigint": str(rm)}, "WORKING"] for rm in (1, 2, 3)]}
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


class Colour(IntEnum):
    RED = 1
    GREEN = 2


class Point(NamedTuple):
    x: int
    colour: Colour


class Pair(NamedTuple):
    left: Any
    right: Any


@dataclass(frozen=True)
class Box:
    content: Any


_atoms = (
    st.integers(-(2**70), 2**70)
    | st.booleans()
    | st.sampled_from(Colour)
    | st.text(alphabet="ab-", max_size=3)  # lower case: never an enum member's name
)


def _nested(records: Callable[[st.SearchStrategy[Any]], st.SearchStrategy[Any]]) -> st.SearchStrategy[Any]:
    """Nested values: sets and map keys of hashable values, lists and maps anywhere else."""
    hashable = st.recursive(
        _atoms,
        lambda inner: (
            st.lists(inner, max_size=3).map(tuple)
            | st.lists(inner, max_size=3).map(frozenset)  # no uniqueness filter, whose retries repr it
            | records(inner)
        ),
        max_leaves=12,
    )
    return st.recursive(
        hashable,
        lambda inner: (
            st.lists(inner, max_size=3)
            | st.lists(inner, max_size=3).map(tuple)
            | st.dictionaries(hashable, inner, max_size=3)
            | records(inner)
        ),
        max_leaves=20,
    )


any_values = _nested(lambda inner: st.builds(Pair, inner, inner) | st.builds(Box, inner))
named_tuple_records = _nested(lambda inner: st.builds(Pair, inner, inner))
"""itf-py reads a record as a namedtuple, which equals a plain tuple of the same items: beside
such a tuple in a set or as a map key, a dataclass record would read back merged with it there.
(A NamedTuple equals its tuple in Python already.)"""


def _as_read_back(value: Any) -> Any:
    """What ITF keeps of ``value``: enum members by name, NamedTuples and dataclasses as records."""
    if isinstance(value, enum.Enum):
        return value.name
    if isinstance(value, Pair):
        return Record(left=_as_read_back(value.left), right=_as_read_back(value.right))
    if isinstance(value, Box):
        return Record(content=_as_read_back(value.content))
    if isinstance(value, tuple):
        return tuple(map(_as_read_back, value))
    if isinstance(value, list):
        return list(map(_as_read_back, value))
    if isinstance(value, frozenset):
        return frozenset(map(_as_read_back, value))
    if isinstance(value, dict):
        return FrozenDict((_as_read_back(k), _as_read_back(v)) for k, v in value.items())
    return value


@given(any_values)
def test_values_read_back_as_documented_and_encode_alike(value: Any) -> None:
    encoded = to_itf_value(value)
    decoded = from_itf_value(json.loads(json.dumps(encoded)))
    assert decoded == _as_read_back(value)
    assert to_itf_value(decoded) == encoded  # records stay records, maps stay maps


@given(named_tuple_records)
def test_itf_py_reads_every_value_as_written(value: Any) -> None:
    document = {"vars": ["v"], "states": [{"#meta": {"index": 0}, "v": to_itf_value(value)}]}
    assert_valid_itf(document)


@pytest.mark.parametrize("loose", [7, {"#unserializable": "[1, 2]"}, {"#set": [1.5]}])
def test_the_itf_py_check_refuses_what_is_not_strict_itf(loose: Any) -> None:
    with pytest.raises(AssertionError):
        assert_valid_itf({"vars": ["v"], "states": [{"#meta": {"index": 0}, "v": loose}]})


def test_every_integer_is_a_bigint() -> None:
    assert to_itf_value(7) == {"#bigint": "7"}
    assert to_itf_value(-(2**60)) == {"#bigint": str(-(2**60))}
    big = 2**53  # where JSON numbers stop being exact: one form on both sides of it
    assert to_itf_value((big - 1, big)) == {"#tup": [{"#bigint": str(big - 1)}, {"#bigint": str(big)}]}


def test_records_are_named_tuples_and_dataclasses_and_every_dict_is_a_map() -> None:
    assert to_itf_value(Point(3, Colour.RED)) == {"x": {"#bigint": "3"}, "colour": "RED"}
    assert to_itf_value(Box(True)) == {"content": True}
    assert to_itf_value({"x": 3}) == {"#map": [["x", {"#bigint": "3"}]]}
    assert to_itf_value({}) == {"#map": []}
    decoded = from_itf_value({"x": {"#bigint": "3"}, "colour": "RED"})
    assert isinstance(decoded, Record) and decoded == {"x": 3, "colour": "RED"}


def test_lists_are_json_arrays() -> None:
    assert to_itf_value([1, [True]]) == [{"#bigint": "1"}, [True]]
    assert from_itf_value([{"#bigint": "1"}, [True]]) == [1, [True]]


def test_sets_and_maps_are_sorted_by_value() -> None:
    assert to_itf_value(frozenset({10, 9, -1})) == {"#set": [{"#bigint": n} for n in ("-1", "9", "10")]}
    assert [key for key, _ in to_itf_value({10: 0, 9: 0})["#map"]] == [{"#bigint": "9"}, {"#bigint": "10"}]


def test_a_value_without_an_itf_form_is_refused_where_it_sits() -> None:
    with pytest.raises(SpecError, match=r"value\['a'\]\[1\]: float 1.5 has no ITF form"):
        to_itf_value({"a": (1, 1.5)})
    model: Model[Any] = Model(
        name="m",
        init=lambda: iter([0]),
        actions=(Action("A", lambda s: iter([])),),
        fields=lambda s: {"x": None},
    )
    trace = Trace("P", "invariant", (Step(None, 0),))
    with pytest.raises(SpecError, match="state 0: x: NoneType None has no ITF form"):
        to_itf(model, trace)


class Replica(NamedTuple):
    view: int
    log: frozenset[int]


def test_changes_are_located_inside_nested_records_and_tuples() -> None:
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
