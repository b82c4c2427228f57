"""ITF documents read back by an independent reader: itf-py, Informal Systems' own.

itf-py accepts any JSON number and turns ``#unserializable`` into an object, so reading
alone proves little. Each value it reads is therefore written back by itf-py too: a strict
document (every int a ``#bigint``, no ``#unserializable``) comes back as it was, up to the
order of set items and map pairs, which ITF leaves free.

One false alarm is possible: itf-py reads a record as a namedtuple, equal to a plain tuple of
the same items, so a set (or map) holding a dataclass record beside such a tuple reads back
smaller there.
"""

from __future__ import annotations

import json
from typing import Any

import itf_py


def assert_valid_itf(document: dict[str, Any]) -> None:
    """Fail unless ``document`` is strict ITF (ADR-015) as itf-py reads and writes it."""
    raw = json.loads(json.dumps(document))
    trace = itf_py.trace_from_json(raw)
    assert trace.vars and all(isinstance(name, str) for name in trace.vars), trace.vars
    assert trace.states, "an ITF trace has at least one state"
    assert trace.loop is None or 0 <= trace.loop < len(trace.states), trace.loop
    for index, (written, state) in enumerate(zip(raw["states"], trace.states, strict=True)):
        assert state.meta.get("index") == index, state.meta
        assert set(state.values) == set(trace.vars), f"state {index} defines {sorted(state.values)}"
        for name in trace.vars:
            rewritten = itf_py.value_to_json(state.values[name])
            assert _unordered(rewritten) == _unordered(written[name]), f"state {index}: {name}"


def _unordered(value: Any) -> Any:
    """``value`` with set items and map pairs in one order, so that equal ITF values compare equal."""
    if isinstance(value, list):
        return [_unordered(item) for item in value]
    if not isinstance(value, dict):
        return value
    if "#set" in value:
        return {"#set": sorted((_unordered(item) for item in value["#set"]), key=_text)}
    if "#map" in value:
        return {"#map": sorted(([_unordered(k), _unordered(v)] for k, v in value["#map"]), key=_text)}
    return {key: _unordered(item) for key, item in value.items()}


def _text(value: Any) -> str:
    """A sort key; ``repr`` stands in for the objects itf-py makes of what it cannot write."""
    return json.dumps(value, sort_keys=True, default=repr)
