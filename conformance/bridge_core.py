"""What every layer's bridge shares: the bridge protocol, divergences, gaps and field-by-field diffs.

A bridge drives one implementation layer (the ledger, or the PBFT replicas)
with the stimulus that corresponds to a spec action, and maps the
implementation's state back to a spec state (the abstraction function). The
drivers (``conformance.replay``, ``conformance.stateful``) only ever talk to
this protocol, so they work for every layer.

A step has one of three outcomes: the abstracted implementation state equals
the spec's successor (conforms); it differs (a ``Divergence``, with the
fields that differ); or the bridge cannot make the implementation take that
step faithfully because the spec allows something the implementation's
participants cannot do (a ``Gap``, with the reason; docs/conformance.md lists
every kind). Gaps are never counted as covered transitions.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from model_checker.model import Label, Model
from model_checker.trace import format_value


class BridgeError(Exception):
    """The bridge does not support this model (e.g. a state type it has no abstraction for)."""


class Unrealizable(Exception):
    """Raised by a stimulus the implementation cannot faithfully take; the message says why."""


@dataclass(frozen=True)
class FieldDiff:
    """One differing field: its path in the state record, and both values as printed."""

    field: str
    spec: str
    impl: str

    def to_json(self) -> dict[str, str]:
        return {"field": self.field, "spec": self.spec, "impl": self.impl}


@dataclass(frozen=True)
class Divergence:
    """The first step at which ``abstract(implementation)`` differs from the spec state."""

    step: int
    """Step number within its behaviour (0 is the initial state)."""
    action: str
    diff: tuple[FieldDiff, ...]
    trace: tuple[str, ...] = ()
    """The spec behaviour up to and including the diverging step, one label per line."""

    def to_json(self) -> dict[str, Any]:
        return {
            "step": self.step,
            "action": self.action,
            "diff": [d.to_json() for d in self.diff],
            "trace": list(self.trace),
        }

    def describe(self) -> str:
        lines = [f"diverges at step {self.step}: {self.action}"]
        lines += [f"  {d.field}: spec {d.spec}  impl {d.impl}" for d in self.diff]
        return "\n".join(lines)


@dataclass(frozen=True)
class Gap:
    """A spec step the bridge cannot realise faithfully (not a failure of the implementation)."""

    action: str
    reason: str


class Bridge(Protocol):
    """One implementation layer driven by spec actions; fresh implementation per ``start``."""

    def start(self, initial: Any, plan: Sequence[Label]) -> None:
        """Build a fresh implementation whose abstraction is ``initial``. ``plan`` is the behaviour
        about to be replayed (empty when steps are chosen on the fly); a bridge may use it to fix,
        before the first step, choices the implementation makes by itself (e.g. which keys)."""
        ...

    def realizable(self, label: Label, state: Any) -> str | None:
        """None when the implementation can take ``label`` from ``state``, else the reason it cannot."""
        ...

    def stimulate(self, label: Label, state: Any) -> tuple[FieldDiff, ...]:
        """Make the implementation take the step ``label`` from (spec) ``state``; raises
        ``Unrealizable`` when it cannot be done faithfully. Returns what the implementation
        answered differently from the spec at its interface (e.g. a rejected transaction)."""
        ...

    def abstract(self) -> Any:
        """The spec state the implementation is in now."""
        ...

    def probe(self, state: Any) -> tuple[str, tuple[FieldDiff, ...]] | None:
        """Stimuli beyond the behaviour's own steps, in (spec) ``state``: ones the spec rejects (a
        second Finalize must change nothing) or messages the spec does not act on (a replica must
        not act beyond what the spec allows it). None when the implementation stayed within the
        spec, else what was probed and the difference it showed."""
        ...


@runtime_checkable
class ForkableBridge(Bridge, Protocol):
    """A bridge whose implementation can be copied mid-behaviour, so a driver can branch."""

    def fork(self) -> ForkableBridge:
        """An independent bridge whose implementation is in this one's current state; stepping
        either afterwards leaves the other as it was."""
        ...


def probe_step(bridge: Bridge, state: Any, step: int, trace: Sequence[str]) -> Divergence | None:
    """Run the bridge's probes in ``state`` (reached at ``step``); a divergence if one showed any."""
    try:
        found = bridge.probe(state)
    except Exception as error:  # whatever the implementation raises is a divergence
        found = ("probe", crash_diff(error))
    if found is None:
        return None
    what, diff = found
    return Divergence(step, what, diff, (*trace, what))


def crash_diff(error: Exception) -> tuple[FieldDiff, ...]:
    """An exception raised while the implementation took a step, as a difference: the spec step is
    defined, so an implementation (or bridge) that raises there does not conform."""
    return (FieldDiff("exception", "(the step is defined)", f"{type(error).__name__}: {error}"),)


# --------------------------------------------------------------------------- diffs


def state_diff(model: Model[Any], spec: Any, impl: Any) -> tuple[FieldDiff, ...]:
    """Field-by-field differences between two states of ``model`` (empty when equal)."""
    if spec == impl:
        return ()
    out: list[FieldDiff] = []
    _diff_into(out, "", model.record(spec), model.record(impl))
    return tuple(out)


def _fields(value: Any) -> Mapping[str, Any] | None:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
    as_dict = getattr(value, "_asdict", None)
    if callable(as_dict):
        return dict(as_dict())
    if isinstance(value, Mapping):
        return {str(k): v for k, v in value.items()}
    return None


def _diff_into(out: list[FieldDiff], path: str, spec: Any, impl: Any) -> None:
    if spec == impl:
        return
    spec_fields, impl_fields = _fields(spec), _fields(impl)
    if spec_fields is not None and impl_fields is not None and type(spec) is type(impl):
        for name in spec_fields:
            _diff_into(out, f"{path}.{name}" if path else name, spec_fields[name], impl_fields.get(name))
        return
    if isinstance(spec, frozenset) and isinstance(impl, frozenset):
        missing, extra = spec - impl, impl - spec
        out.append(FieldDiff(path, _set_text("only in spec", missing), _set_text("only in impl", extra)))
        return
    if isinstance(spec, tuple) and isinstance(impl, tuple) and len(spec) == len(impl):
        for index, (a, b) in enumerate(zip(spec, impl, strict=True)):
            _diff_into(out, f"{path}[{index}]", a, b)
        return
    out.append(FieldDiff(path, format_value(spec), format_value(impl)))


def _set_text(title: str, items: frozenset[Any]) -> str:
    if not items:
        return f"{title}: (none)"
    return f"{title}: " + "; ".join(sorted(format_value(item) for item in items))
