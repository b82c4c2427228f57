"""``clone``: as independent as ``copy.deepcopy``, sharing only what cannot change or is named shared."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from conformance.cloning import clone


class Colour(Enum):
    RED = 1


@dataclass(frozen=True)
class Message:
    view: int
    payload: tuple[int, ...]


@dataclass
class Holder:
    items: list[Any] = field(default_factory=list)
    index: dict[int, Any] = field(default_factory=dict)
    seen: set[int] = field(default_factory=set)


ATOMS = st.one_of(st.integers(), st.text(max_size=3), st.none(), st.just(Colour.RED), st.binary(max_size=3))
MESSAGES = st.builds(Message, st.integers(0, 3), st.tuples(st.integers(), st.integers()))
VALUES = st.recursive(
    st.one_of(ATOMS, MESSAGES),
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.dictionaries(st.integers(0, 5), inner, max_size=3),
        st.tuples(inner, inner),
        st.builds(Holder, st.lists(inner, max_size=3), st.dictionaries(st.integers(0, 5), inner, max_size=3)),
    ),
    max_leaves=12,
)


@given(VALUES)
def test_a_clone_equals_a_deep_copy_and_mutating_it_leaves_the_original_alone(value: Any) -> None:
    original = copy.deepcopy(value)
    cloned = clone(value)
    assert repr(cloned) == repr(value)
    for node in _mutable_nodes(cloned):
        if isinstance(node, list):
            node.append("new")
        elif isinstance(node, dict):
            node[99] = "new"
        else:
            node.items.append("new")
    assert repr(value) == repr(original)


def test_immutable_values_and_named_objects_are_shared_and_aliases_stay_aliases() -> None:
    message, config = Message(1, (2, 3)), {"keys": [1, 2]}
    inner = [message]
    holder = Holder([inner, inner, config], {0: message}, {4})
    cloned = clone(holder, frozenset({id(config)}))
    assert cloned is not holder and cloned.items[0] is not inner
    assert cloned.items[0] is cloned.items[1]  # one copy of an object reached twice
    assert cloned.items[2] is config and cloned.index[0] is message
    assert cloned.seen == {4} and cloned.seen is not holder.seen


def _mutable_nodes(value: Any) -> list[Any]:
    """Every list, dict and ``Holder`` reachable from ``value``."""
    found: list[Any] = []
    stack = [value]
    while stack:
        node = stack.pop()
        if isinstance(node, list | dict | Holder) and all(node is not seen for seen in found):
            found.append(node)
        if isinstance(node, list | tuple):
            stack.extend(node)
        elif isinstance(node, dict):
            stack.extend(node.values())
        elif isinstance(node, Holder):
            stack.extend([node.items, node.index])
    return found
