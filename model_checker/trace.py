"""Traces: rebuilding them from fingerprints, printing them, exporting them as ITF.

The visited table holds fingerprints only, so a trace is recovered by
replaying the model: from the initial state whose fingerprint matches, each
step re-runs the actions of the current state and keeps the successor whose
fingerprint is the next one on the path. That costs one expansion per step,
nothing per visited state.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import reprlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TextIO

from model_checker.engine import fingerprint
from model_checker.model import Label, Model, S, SpecError

ITF_SPEC = "https://apalache-mc.org/docs/adr/015adr-trace.html"


@dataclass(frozen=True)
class Step(Generic[S]):
    """One state of a trace and the action that led to it (``None`` for the initial state)."""

    label: Label | None
    state: S


@dataclass(frozen=True)
class Trace(Generic[S]):
    """A counterexample: a finite path, or a lasso when ``loop`` is set.

    For a lasso the behaviour is ``steps[0..] , steps[loop..], steps[loop..], ...``:
    after the last state it continues with the state at index ``loop`` (the
    last step's successor is ``steps[loop].state``). ``loop == len(steps) - 1``
    with ``stutters`` means the behaviour stays in the last state forever.
    """

    property: str
    kind: str
    steps: tuple[Step[S], ...]
    loop: int | None = None
    stutters: bool = False
    loop_label: Label | None = None
    """The action closing the cycle (from the last state back to ``steps[loop]``)."""

    def __len__(self) -> int:
        return len(self.steps)


def replay(
    model: Model[S],
    fingerprints: Sequence[int],
    label_keys: Sequence[tuple[int, tuple[Any, ...]] | None] | None = None,
) -> list[Step[S]]:
    """The states along a path given by fingerprints (and optionally the label of each step).

    ``label_keys[i]`` (``(action index, parameter values)``) restricts step ``i``
    to that action instance; ``None`` accepts any action.
    """

    initial = next((s for s in model.init() if fingerprint(model, s) == fingerprints[0]), None)
    if initial is None:
        raise SpecError("no initial state has the trace's first fingerprint (is the model deterministic?)")
    steps: list[Step[S]] = [Step(None, initial)]
    for index, target in enumerate(fingerprints[1:]):
        wanted = None if label_keys is None else label_keys[index]
        found = successor_with(model, steps[-1].state, target, wanted)
        if found is None:
            raise SpecError(
                f"replaying a trace: no successor of step {index + 1} has the recorded fingerprint "
                "(actions must be deterministic functions of the state)"
            )
        steps.append(found)
    return steps


def successor_with(
    model: Model[S],
    state: S,
    target: int,
    wanted: tuple[int, tuple[Any, ...]] | None,
) -> Step[S] | None:
    """The step from ``state`` to its successor with fingerprint ``target``, taken by the
    action instance ``wanted`` (``(action index, parameter values)``; ``None``: any)."""
    for action_index, action in enumerate(model.actions):
        if wanted is not None and wanted[0] != action_index:
            continue
        for values, successor in action.step(state):
            if (wanted is None or wanted[1] == values) and fingerprint(model, successor) == target:
                return Step(action.label(values), successor)
    return None


# -- printing ---------------------------------------------------------------


class Palette:
    """ANSI styles, or none at all."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled

    def _wrap(self, code: str, text: str) -> str:
        return f"\x1b[{code}m{text}\x1b[0m" if self.enabled else text

    def label(self, text: str) -> str:
        return self._wrap("1;36", text)

    def new(self, text: str) -> str:
        return self._wrap("32", text)

    def old(self, text: str) -> str:
        return self._wrap("2;31", text)

    def note(self, text: str) -> str:
        return self._wrap("1;33", text)


def format_value(value: Any) -> str:
    """A compact, deterministic rendering: enums by name, sets sorted, records by field."""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, enum.Enum):
        return value.name
    if isinstance(value, (int, str)):
        return repr(value)
    fields = _record_fields(value)
    if fields is not None:
        inner = ", ".join(f"{name}={format_value(item)}" for name, item in fields.items())
        return f"{type(value).__name__}({inner})"
    if isinstance(value, (tuple, list)):
        return "<<" + ", ".join(format_value(item) for item in value) + ">>"
    if isinstance(value, (frozenset, set)):
        return "{" + ", ".join(sorted(format_value(item) for item in value)) + "}"
    if isinstance(value, Mapping):
        return "[" + ", ".join(f"{format_value(k)} |-> {format_value(v)}" for k, v in value.items()) + "]"
    return repr(value)


def _record_fields(value: Any) -> dict[str, Any] | None:
    if isinstance(value, Record):
        return dict(value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
    if isinstance(value, tuple) and hasattr(value, "_fields"):
        return dict(zip(value._fields, value, strict=True))
    return None


_DIFF_DEPTH = 4
"""How deep into records, maps and tuples a change is located before the whole value is shown."""


def _changes(before: Mapping[str, Any], after: Mapping[str, Any]) -> list[tuple[str, Any, Any]]:
    """``(path, old, new)`` for each changed part, e.g. ``replicas[1].prepares``."""
    changed: list[tuple[str, Any, Any]] = []
    for name, new in after.items():
        _diff(name, before.get(name), new, changed, _DIFF_DEPTH)
    return changed


def _diff(path: str, old: Any, new: Any, out: list[tuple[str, Any, Any]], depth: int) -> None:
    if old == new:
        return
    if depth > 0:
        old_fields, new_fields = _record_fields(old), _record_fields(new)
        if old_fields is not None and new_fields is not None and type(old) is type(new):
            for name, value in new_fields.items():
                _diff(f"{path}.{name}", old_fields[name], value, out, depth - 1)
            return
        if isinstance(old, Mapping) and isinstance(new, Mapping) and old.keys() == new.keys():
            for key, value in new.items():
                _diff(f"{path}[{format_value(key)}]", old[key], value, out, depth - 1)
            return
        if type(old) is tuple and type(new) is tuple and len(old) == len(new):
            for index, (was, now) in enumerate(zip(old, new, strict=True)):
                _diff(f"{path}[{index}]", was, now, out, depth - 1)
            return
    out.append((path, old, new))


def _describe_change(path: str, old: Any, new: Any, paint: Palette) -> str:
    """``path = new  (was old)``; for sets, what was added and removed."""
    if isinstance(old, frozenset) and isinstance(new, frozenset):
        parts = []
        if new - old:
            parts.append(paint.new(f"+ {format_value(new - old)}"))
        if old - new:
            parts.append(paint.old(f"- {format_value(old - new)}"))
        return f"{path} " + "  ".join(parts)
    return f"{path} = {paint.new(format_value(new))}  {paint.old(f'(was {format_value(old)})')}"


def format_trace(model: Model[S], trace: Trace[S], palette: Palette | None = None) -> str:
    """Numbered steps: the first state in full, then each label with only the changed fields."""
    paint = palette or Palette(False)
    lines: list[str] = []
    previous: Mapping[str, Any] | None = None
    for number, step in enumerate(trace.steps, start=1):
        record = model.record(step.state)
        title = "Initial state" if step.label is None else str(step.label)
        marker = paint.note("   <- the cycle starts here") if trace.loop == number - 1 else ""
        lines.append(f"{number:>4}. {paint.label(title)}{marker}")
        if previous is None:
            lines.extend(f"        {name} = {format_value(value)}" for name, value in record.items())
        else:
            changes = _changes(previous, record)
            lines.extend(f"        {_describe_change(path, old, new, paint)}" for path, old, new in changes)
            if not changes:
                lines.append("        (no field changed)")
        previous = record
    if trace.loop is not None:
        if trace.stutters:
            lines.append(
                paint.note("      then stutters forever in the last state (no fair action is enabled)")
            )
        else:
            closing = "" if trace.loop_label is None else f" by {paint.label(str(trace.loop_label))}"
            lines.append(paint.note(f"      then back to step {trace.loop + 1}{closing}, forever"))
    return "\n".join(lines)


# -- ITF --------------------------------------------------------------------


class FrozenDict(dict[Any, Any]):
    """A decoded ITF map: a dict that can sit inside a set (never mutate it)."""

    def __hash__(self) -> int:  # type: ignore[override]
        return hash(frozenset(self.items()))


class Record(FrozenDict):
    """A decoded ITF record, field name to value: it encodes back as a record, a ``FrozenDict`` as a map."""


def to_itf_value(value: Any, where: str = "value") -> Any:
    """``value`` in ITF's JSON encoding (ADR-015), in one form per Python type.

    bool: JSON boolean; enum member: its name, as traces print it; int: ``#bigint``
    whatever its size; str: JSON string; NamedTuple, dataclass or ``Record``:
    record; other tuple: ``#tup``; list: JSON array; set: ``#set``; any other
    mapping: ``#map``. Set items and map pairs are sorted, so equal values encode
    alike. Anything else raises ``SpecError`` naming ``where`` it sits.
    """
    if isinstance(value, bool):
        return value
    if isinstance(value, enum.Enum):
        return value.name
    if isinstance(value, int):
        return {"#bigint": str(value)}
    if isinstance(value, str):
        return value
    fields = _record_fields(value)
    if fields is not None:
        return {name: to_itf_value(item, f"{where}.{name}") for name, item in fields.items()}
    if isinstance(value, tuple):
        return {"#tup": [to_itf_value(item, f"{where}[{i}]") for i, item in enumerate(value)]}
    if isinstance(value, list):
        return [to_itf_value(item, f"{where}[{i}]") for i, item in enumerate(value)]
    if isinstance(value, (frozenset, set)):
        return {"#set": sorted((to_itf_value(item, f"{where}{{}}") for item in value), key=_order)}
    if isinstance(value, Mapping):
        pairs = [
            [to_itf_value(key, f"{where} key"), to_itf_value(item, f"{where}[{format_value(key)}]")]
            for key, item in value.items()
        ]
        return {"#map": sorted(pairs, key=lambda pair: (_order(pair[0]), _order(pair[1])))}
    raise SpecError(
        f"{where}: {type(value).__name__} {reprlib.repr(value)} has no ITF form "
        "(ITF holds bools, ints, enums, strings, tuples, lists, sets, maps and records)"
    )


def _order(encoded: Any) -> tuple[int, Any]:
    """A sort key for encoded values: by kind, then ints by value and containers item by item."""
    if isinstance(encoded, bool):
        return (0, encoded)
    if isinstance(encoded, str):
        return (2, encoded)
    if isinstance(encoded, list):
        return (3, tuple(map(_order, encoded)))
    if "#bigint" in encoded:
        return (1, int(encoded["#bigint"]))
    if "#tup" in encoded:
        return (4, tuple(map(_order, encoded["#tup"])))
    if "#set" in encoded:
        return (5, tuple(map(_order, encoded["#set"])))
    if "#map" in encoded:
        return (6, tuple((_order(key), _order(item)) for key, item in encoded["#map"]))
    return (7, tuple((name, _order(item)) for name, item in encoded.items()))


def from_itf_value(value: Any) -> Any:
    """Decode ITF: ``#bigint`` (or a JSON number) to int, ``#tup`` to tuple, a JSON array to
    list, ``#set`` to frozenset, ``#map`` to ``FrozenDict``, a record to ``Record``, and
    ``#unserializable`` to its text.

    ``from_itf_value(to_itf_value(v))`` equals ``v`` but for what ITF does not record: an
    enum member reads back as its name, a NamedTuple or dataclass as a ``Record``.
    """
    if isinstance(value, list):
        return [from_itf_value(item) for item in value]
    if not isinstance(value, dict):
        return value
    if "#bigint" in value:
        return int(value["#bigint"])
    if "#tup" in value:
        return tuple(from_itf_value(item) for item in value["#tup"])
    if "#set" in value:
        return frozenset(from_itf_value(item) for item in value["#set"])
    if "#map" in value:
        return FrozenDict((from_itf_value(k), from_itf_value(v)) for k, v in value["#map"])
    if "#unserializable" in value:
        return value["#unserializable"]
    return Record((k, from_itf_value(v)) for k, v in value.items())


def to_itf(model: Model[S], trace: Trace[S]) -> dict[str, Any]:
    """The trace as an ITF document (ADR-015): ``vars``, ``states`` and, for a lasso, ``loop``.

    Every state defines every variable of ``vars`` (the first state's fields); ``loop`` is
    the index of the state the behaviour returns to after the last one.
    """
    records = [model.record(step.state) for step in trace.steps]
    variables = list(records[0])
    states = []
    for index, (step, record) in enumerate(zip(trace.steps, records, strict=True)):
        if list(record) != variables:
            raise SpecError(f"trace state {index} has fields {list(record)}, the first state {variables}")
        meta: dict[str, Any] = {"index": index}
        if step.label is not None:
            meta["action"] = str(step.label)
        encoded = {name: to_itf_value(value, f"state {index}: {name}") for name, value in record.items()}
        states.append({"#meta": meta, **encoded})
    document: dict[str, Any] = {
        "#meta": {
            "format": "ITF",
            "format-description": ITF_SPEC,
            "source": model.name,
            "description": f"counterexample to {trace.kind} {trace.property}",
            "property": trace.property,
            "kind": trace.kind,
        },
        "vars": variables,
        "states": states,
    }
    if trace.loop is not None:
        document["loop"] = trace.loop
        if trace.loop_label is not None:
            document["#meta"]["loop_action"] = str(trace.loop_label)
    return document


def read_itf(stream: TextIO) -> tuple[list[str], list[dict[str, Any]], int | None]:
    """An ITF document's variables, decoded states (``#meta`` dropped) and loop index."""
    document = json.load(stream)
    states = [
        {name: from_itf_value(value) for name, value in state.items() if name != "#meta"}
        for state in document["states"]
    ]
    return list(document.get("vars", [])), states, document.get("loop")
