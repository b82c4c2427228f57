"""Fingerprints: a function of the value alone, identical in every process, never merging
distinct values the way ``hash()`` does, and rejecting anything that is not plain."""

from __future__ import annotations

import enum
import itertools
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from model_checker import fingerprint as fingerprint_module
from model_checker.checker import check
from model_checker.examples.two_phase import two_phase
from model_checker.fingerprint import fingerprint, fingerprint_array
from model_checker.model import Action, Model, SpecError
from tests.model_checker.helpers import Point, nested_values

ROOT = Path(__file__).resolve().parents[2]

PROGRAM = """
import hashlib
from model_checker.examples.two_phase import two_phase
from model_checker.graph import explore
graph = explore(two_phase(3))
print(graph.num_states, hashlib.sha256(graph.fingerprints.tobytes()).hexdigest())
print(hashlib.sha256(graph.targets.tobytes() + graph.labels.tobytes()).hexdigest())
"""


def _run(seed: str) -> str:
    env = {**os.environ, "PYTHONHASHSEED": seed}
    done = subprocess.run(
        [sys.executable, "-c", PROGRAM], cwd=ROOT, env=env, capture_output=True, text=True, check=True
    )
    return done.stdout


def test_fingerprints_do_not_depend_on_the_hash_seed() -> None:
    outputs = {_run(seed) for seed in ("0", "1", "4242")}
    assert len(outputs) == 1
    assert outputs.pop().startswith("288 ")


def test_string_hashes_do_differ_so_the_test_can_fail() -> None:
    program = "print(hash('TwoPhase'))"
    outputs = {
        subprocess.run(
            [sys.executable, "-c", program],
            env={**os.environ, "PYTHONHASHSEED": seed},
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        for seed in ("1", "2")
    }
    assert len(outputs) == 2


# -- the fingerprint function itself ---------------------------------------------------------

M64 = 2**64 - 1
K_MIX = 0xD6E8FEB86659FD93
TAGS = {
    "int": 0x243F6A8885A308D3,
    "bigint": 0x13198A2E03707344,
    "tuple": 0xA4093822299F31D0,
    "set": 0x082EFA98EC4E6C89,
    "set_item": 0x452821E638D01377,
    "record": 0xBE5466CF34E90C6C,
}


def _mix(x: int) -> int:
    x ^= x >> 32
    x = (x * K_MIX) & M64
    x ^= x >> 32
    x = (x * K_MIX) & M64
    return x ^ (x >> 32)


def _reference(value: object) -> int:
    """The algorithm of ``_fingerprint.c``, written plainly (unsigned 64-bit)."""
    if isinstance(value, int):
        if -(2**63) <= value < 2**63:
            return _mix((value & M64) ^ TAGS["int"])
        data = value.to_bytes(value.bit_length() // 8 + 1, "little", signed=True)
        h = _mix(TAGS["bigint"] ^ len(data))
        whole = len(data) // 8 * 8
        for start in range(0, whole, 8):
            h = (_mix(h ^ int.from_bytes(data[start : start + 8], "little")) + K_MIX) & M64
        return _mix(h ^ int.from_bytes(data[whole:], "little"))
    if isinstance(value, tuple):
        h = _mix(TAGS["tuple"] ^ len(value))
        for item in value:
            h = (_mix(h ^ _reference(item)) + K_MIX) & M64
        return _mix(h)
    if isinstance(value, frozenset):
        total = sum(_mix(_reference(item) ^ TAGS["set_item"]) for item in value) & M64
        return _mix(_mix(TAGS["set"] ^ len(value)) ^ total)
    layout = fingerprint_module._record_layout(type(value))
    assert layout is not None
    seed, names = layout
    h = _mix(TAGS["record"] ^ seed ^ len(names))
    for name in names:
        h = (_mix(h ^ _reference(getattr(value, name))) + K_MIX) & M64
    return _mix(h)


def _signed(unsigned: int) -> int:
    return unsigned - 2**64 if unsigned >= 2**63 else unsigned


class Colour(enum.IntEnum):
    RED = 1
    GREEN = 2


@dataclass(frozen=True)
class Record:
    a: int
    b: frozenset[int]
    note: int = field(default=0, compare=False)


@dataclass(frozen=True)
class OtherRecord:
    a: int
    b: frozenset[int]


atoms = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70),
    st.integers(-3, 3),
    st.booleans(),
    st.sampled_from(Colour),
)
records = st.builds(Record, st.integers(-5, 5), st.frozensets(st.integers(-5, 5), max_size=4))
plain_values = nested_values(atoms, records, max_leaves=20)


def _respelled(value: object) -> object:
    """A value equal to ``value`` under == but built from other types and in another order."""
    if isinstance(value, (bool, enum.IntEnum)):
        return int(value)
    if isinstance(value, int):
        return Colour(value) if value in (1, 2) else value
    if isinstance(value, Record):
        return Record(value.a, frozenset(reversed(sorted(value.b))), note=value.note + 1)
    if isinstance(value, tuple):
        items = tuple(_respelled(item) for item in value)
        if isinstance(value, Point) or len(items) != 2:
            return tuple(items)
        return Point(*items)
    assert isinstance(value, frozenset)
    return frozenset(_respelled(item) for item in reversed(list(value)))


@given(plain_values)
def test_the_compiled_walker_is_the_documented_algorithm(value: object) -> None:
    assert fingerprint(value) == _signed(_reference(value))


@given(plain_values)
def test_equal_values_have_equal_fingerprints(value: object) -> None:
    other = _respelled(value)
    assert other == value
    assert fingerprint(other) == fingerprint(value)


@given(st.lists(plain_values, min_size=2, max_size=30))
def test_distinct_values_have_distinct_fingerprints(values: list[object]) -> None:
    unequal: list[object] = []
    for value in values:
        if all(value != other for other in unequal):
            unequal.append(value)
    assert len({fingerprint(v) for v in unequal}) == len(unequal)


@given(st.lists(plain_values, max_size=30), st.integers(0, 40))
def test_a_batch_is_each_value_fingerprinted_in_order(values: list[object], count: int) -> None:
    """``count`` only sizes the buffer: fewer or more values than it still come back, in order."""
    expected = [fingerprint(v) for v in values]
    assert fingerprint_array(values, count).tolist() == expected
    assert fingerprint_array(iter(values), count).tolist() == expected


def test_a_batch_rejects_what_a_single_fingerprint_rejects() -> None:
    with pytest.raises(TypeError, match="float is not a plain immutable value"):
        fingerprint_array([(1, 2), (3, 1.5)], 2)
    with pytest.raises(ZeroDivisionError):
        fingerprint_array((1 // (2 - i) for i in range(3)), 3)
    with pytest.raises(ValueError, match="negative"):
        fingerprint_array([], -1)


def test_ints_hash_merges_are_distinct_fingerprints() -> None:
    assert hash(-1) == hash(-2) and fingerprint(-1) != fingerprint(-2)
    big, wrapped = 2**64, 2**64 + 2**61 - 1
    assert hash(big) == hash(wrapped) and fingerprint(big) != fingerprint(wrapped)
    values = list(itertools.product(range(-3, 4), repeat=7))
    assert len(set(map(fingerprint, values))) == len(values) == 823_543


def test_fingerprints_are_pinned_across_runs_and_builds() -> None:
    """Stored fingerprints (checkpoints, trace files) must mean the same thing tomorrow."""
    pinned: tuple[object, ...] = (0, -1, (), frozenset(), (1, frozenset({2, 3})), 2**64)
    assert [fingerprint(v) for v in pinned] == [_signed(_reference(v)) for v in pinned]
    assert fingerprint(0) == -8306530803511323929
    assert fingerprint(-1) == -6946150760883570027


def test_sets_reused_at_recycled_addresses_keep_their_own_fingerprints() -> None:
    """The identity memo holds what it caches, so a freed set's address never aliases."""
    for start in range(20_000):
        value = frozenset(range(start, start + 4))
        assert fingerprint((value,)) == _signed(_reference((value,)))


def test_records_depend_on_class_and_compared_fields_only() -> None:
    assert fingerprint(Record(1, frozenset({2}), note=5)) == fingerprint(Record(1, frozenset({2})))
    assert fingerprint(Record(1, frozenset({2}))) != fingerprint(OtherRecord(1, frozenset({2})))


@dataclass
class Mutable:
    a: int


@dataclass(frozen=True, eq=False)
class ByIdentity:
    a: int


class Shade(enum.Enum):
    DARK = 1


@pytest.mark.parametrize(
    "value",
    [
        "text",
        1.5,
        None,
        [1],
        {1: 2},
        {1},
        Mutable(1),
        ByIdentity(1),
        Shade.DARK,
        b"x",
        (1, frozenset({(2, "x")})),
    ],
)
def test_anything_not_plain_is_rejected_wherever_it_sits(value: object) -> None:
    with pytest.raises(TypeError, match="not a plain immutable value"):
        fingerprint((0, value))


def _negative_model() -> Model[int]:
    def dec(s: int) -> Iterator[tuple[tuple[()], int]]:
        if s > -5:
            yield (), s - 1

    return Model(
        name="neg",
        init=lambda: [0],
        actions=(Action("Dec", dec),),
        invariants={"NotMinus4": lambda s: s != -4},
    )


def test_a_violation_hash_would_merge_away_is_found() -> None:
    result = check(_negative_model())
    assert result.verdict == "violation"
    example = result.counterexample
    assert example is not None and [step.state for step in example.steps] == [0, -1, -2, -3, -4]


def test_every_count_is_exact_without_the_violation() -> None:
    model = _negative_model()
    result = check(Model(name=model.name, init=model.init, actions=model.actions), deadlock=False)
    assert result.verdict == "ok" and result.distinct_states == 6 and result.depth == 6


def test_a_non_plain_successor_is_named_by_its_field() -> None:
    def step(s: tuple[int, object]) -> Iterator[tuple[tuple[()], tuple[int, object]]]:
        if s[0] < 3:
            yield (), (s[0] + 1, "text" if s[0] == 2 else 0)

    model = Model(name="strings", init=lambda: [(0, 0)], actions=(Action("Step", step),))
    with pytest.raises(SpecError, match=r"\[1\]: str value 'text'"):
        check(model, deadlock=False)


def test_collision_estimates_follow_tlc() -> None:
    result = check(two_phase(3))
    assert result.collisions is not None
    assert result.collisions.optimistic == pytest.approx(288 * (1_146 - 288) / 2**64)
    assert 0 < result.collisions.observed < 1e-6


def test_the_memo_keeps_shared_parts_and_not_small_tuples_of_ints() -> None:
    """A memoised part gains the memo's reference. A large flat set shared by successors must be
    memoised (walking it again would cost a thousand mixes); a small tuple of ints, new in most
    successors, is walked again instead, so it leaves the slots to such parts."""
    shared = frozenset(range(1_000))
    small = tuple(range(7))
    before = sys.getrefcount(shared), sys.getrefcount(small)
    fingerprint((shared, small, 0))
    assert (sys.getrefcount(shared), sys.getrefcount(small)) == (before[0] + 1, before[1])
