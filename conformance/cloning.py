"""Copy-on-write for the conformance bridges: a deep copy that shares what cannot change.

A bridge forks its implementation at every branch of the spec's state graph
(``PbftBridge.fork``) and copies a replica only when a stimulus is about to step
it. ``clone`` is that copy: ``copy.deepcopy`` without visiting immutable values
(atoms, enums, frozen dataclasses such as every protocol message) or the
objects the caller names as shared (configuration, keys), which is what makes
a fork cheap enough to walk millions of transitions.
"""

from __future__ import annotations

from copy import deepcopy
from enum import Enum
from typing import Any

_ATOMS = frozenset({int, bool, float, str, bytes, type(None)})
_IMMUTABLE: dict[type, bool] = {}
"""Per type seen by ``clone``: whether its values are immutable (atoms, enums, frozen dataclasses)."""


def _immutable(kind: type) -> bool:
    known = _IMMUTABLE.get(kind)
    if known is None:
        params = getattr(kind, "__dataclass_params__", None)
        known = _IMMUTABLE[kind] = kind in _ATOMS or issubclass(kind, Enum) or bool(params and params.frozen)
    return known


def clone(value: Any, shared: frozenset[int] = frozenset(), memo: dict[int, Any] | None = None) -> Any:
    """A deep copy of ``value`` that shares what cannot change, and the objects whose ids are in
    ``shared``: ``copy.deepcopy`` with immutable values (atoms, enums and frozen dataclasses, such
    as every message) returned as they are instead of visited. Containers and objects are copied
    once each (``memo``, so aliases stay aliases); set elements and dict keys are hashable, so
    shared. Anything else (slots, subclasses of containers) falls back to ``deepcopy``."""
    kind = type(value)
    if _immutable(kind) or id(value) in shared:
        return value
    memo = {} if memo is None else memo
    if kind is tuple:
        return tuple(clone(item, shared, memo) for item in value)
    copied = memo.get(id(value))
    if copied is not None:
        return copied
    if kind is dict:
        copied = memo[id(value)] = {}
        copied.update((key, clone(item, shared, memo)) for key, item in value.items())
    elif kind is list:
        copied = memo[id(value)] = []
        copied.extend(clone(item, shared, memo) for item in value)
    elif kind is set:
        copied = memo[id(value)] = set(value)
    elif hasattr(value, "__dict__") and not isinstance(value, dict | list | set | tuple):
        copied = memo[id(value)] = object.__new__(kind)
        copied.__dict__.update((name, clone(item, shared, memo)) for name, item in vars(value).items())
    else:
        copied = memo[id(value)] = deepcopy(value)
    return copied
