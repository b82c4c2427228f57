"""The states' codec: values come back equal and of the same types, shared parts stay shared,
anything the C codec does not write goes through pickle, and corrupt bytes are an error."""

from __future__ import annotations

import enum
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, NamedTuple

import pytest
from hypothesis import given
from hypothesis import strategies as st

from model_checker import codec
from model_checker.checker import check
from model_checker.model import Action, Model, SpecError
from tests.model_checker.helpers import Point, nested_values


class Colour(enum.IntEnum):
    RED = 1
    GREEN = 2
    FAR = 1000
    BELOW = -7


class Labelled(tuple[int, ...]):
    """A tuple subclass with an instance dict: pickle keeps its attributes, the codec cannot."""


@dataclass(frozen=True)
class Record:
    a: int


atoms = st.one_of(
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.integers(-3, 3),
    st.booleans(),
    st.sampled_from(Colour),
)
values = nested_values(atoms, max_leaves=25)


def same(a: object, b: object) -> bool:
    """Equal, and of the same types all the way down (True is not 1, Colour.RED is not 1)."""
    if type(a) is not type(b) or a != b:
        return False
    if isinstance(a, tuple):
        assert isinstance(b, tuple)
        return all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, frozenset):
        assert isinstance(b, frozenset)
        return all(any(same(x, y) for y in b if y == x) for x in a)
    return True


@given(st.lists(values, max_size=8))
def test_values_come_back_equal_and_of_the_same_types(states: list[object]) -> None:
    encoded = codec.encode(states)
    assert encoded[1] is not None  # written by the codec, not pickled
    for back in (codec.decode(encoded), codec.loads(codec.dumps(states))):
        assert len(back) == len(states) and all(same(a, b) for a, b in zip(states, back, strict=True))


def test_a_part_shared_by_states_is_shared_when_read_back() -> None:
    shared = frozenset({(1, 2), (3, 4)})
    record = Point(shared, (5, 6))
    back = codec.loads(codec.dumps([(0, shared, record), (1, shared, record)]))
    assert back[0][1] is back[1][1] and back[0][2] is back[1][2]
    assert back[0][2].x is back[0][1]


@pytest.mark.parametrize("odd", [1.5, 2**64, -(2**63) - 1, "text", None, Record(1), Labelled((1, 2))])
def test_a_batch_the_codec_cannot_write_is_pickled(odd: object) -> None:
    states = [(1, frozenset({2})), (odd,)]
    assert codec.encode(states)[1] is None
    assert codec.decode(codec.encode(states)) == states and codec.loads(codec.dumps(states)) == states


@given(st.lists(values, min_size=1, max_size=4), st.data())
def test_corrupt_bytes_are_an_error_never_a_crash(states: list[object], data: st.DataObject) -> None:
    encoded = bytearray(codec.dumps(states))
    start = 5 + int.from_bytes(encoded[1:5], "little")  # past the classes, into the values
    position = data.draw(st.integers(start, len(encoded) - 1))
    cut = data.draw(st.booleans())
    if cut:
        del encoded[position:]
    else:
        encoded[position] = data.draw(st.integers(0, 255))
    try:
        codec.loads(bytes(encoded))
    except ValueError:
        pass
    else:
        assert not cut, "a truncated encoding was read"


def test_bytes_of_neither_kind_are_refused() -> None:
    with pytest.raises(ValueError, match="corrupt state encoding"):
        codec.loads(b"Xjunk")


def _local_class_model() -> Model[Any]:
    class Local(NamedTuple):
        step: int
        k: int

    def spread(s: Local) -> Iterator[tuple[tuple[()], Local]]:
        if s.step == 0:
            for k in range(5_000):  # one level of 5,000 states: a chunk that workers share
                yield (), Local(1, k)

    return Model(name="local", init=lambda: [Local(0, 0)], actions=(Action("Spread", spread),))


def test_states_of_a_local_class_are_searched_in_one_process_and_refused_clearly_across_processes() -> None:
    """The frontier keeps a batch's classes as objects; only a pipe needs them importable."""
    result = check(_local_class_model(), deadlock=False, workers=1)
    assert result.verdict == "ok" and result.distinct_states == 5_001
    with pytest.raises(SpecError, match="need classes defined at module level"):
        check(_local_class_model(), deadlock=False, workers=2)


def test_a_reference_to_a_duplicate_a_set_dropped_reads_the_duplicate() -> None:
    """Corrupt bytes can list two equal items in a set, which keeps one: a later reference to the
    other must still find it alive."""
    int_1, tuple_1, frozenset_2, seen = (0, 2), (4, 1), (6, 2), (7,)
    payload = bytes([2, *frozenset_2, *tuple_1, *int_1, *tuple_1, *int_1, *seen, 1])
    assert codec.decode((payload, ())) == [frozenset({(1,)}), (1,)]
