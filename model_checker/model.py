"""The interface a specification implements for the checker.

It mirrors how a TLA+ module reads:

    Init            -> ``Model.init``: the initial states
    Next == A1 \\/ A2 -> ``Model.actions``: named action families; each family
                       enumerates its existential witnesses (the parameters)
                       and the successor each one produces
    INVARIANT Inv   -> ``Model.invariants``: named state predicates
    PROPERTY P      -> ``Model.properties``: temporal formulas over state
                       predicates (``eventually``, ``always_eventually``,
                       ``leads_to``, ``eventually_always``)
    WF_vars(A)      -> ``Model.fairness``: weak or strong fairness of an action
                       family, either as a whole or per parameter instance
    CONSTRAINT      -> ``Model.constraint``: states outside it are kept but
                       not expanded
    SYMMETRY, VIEW  -> ``Model.symmetry`` and ``Model.view``: both only change
                       what is fingerprinted, never what is explored from

States are immutable values built from ints, bools, tuples, frozensets,
NamedTuples and frozen dataclasses of those (and IntEnum members). The
checker fingerprints them by walking the value (``model_checker.fingerprint``),
never with Python's ``hash``, and rejects anything else (strings, bytes,
``None``, floats, mutable containers) on every state it stores;
``check_plain`` names the offending field.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Callable, Hashable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, Literal, TypeVar

from model_checker.constants import coerce_constant

S = TypeVar("S", bound=Hashable)

Predicate = Callable[[S], bool]
"""A state predicate."""

Step = Callable[[S], Iterable[tuple[tuple[Any, ...], S]]]
"""An action family: yields ``(parameter values, next state)`` for every enabled witness."""


class SpecError(Exception):
    """A defect in a specification (not a property violation): bad state value, bad name, raising action."""


class ConstantError(SpecError):
    """Constants a model cannot be built with: the user's mistake, not the specification's."""


@dataclass(frozen=True)
class Label:
    """One step's name, printed like a TLA+ action instance: ``RMPrepare(rm=2)``."""

    action: str
    args: tuple[tuple[str, Any], ...] = ()

    def __str__(self) -> str:
        inner = ", ".join(f"{name}={value}" for name, value in self.args)
        return f"{self.action}({inner})"


@dataclass(frozen=True)
class Action(Generic[S]):
    """A named action family, ``\\E params: Name(params)`` in TLA+.

    ``step`` yields one ``(values, successor)`` per enabled witness; ``values``
    line up with ``params``. Yielding a successor equal to the state (a
    stuttering step) is allowed and counted as generated.
    """

    name: str
    step: Step[S]
    params: tuple[str, ...] = ()

    def label(self, values: tuple[Any, ...]) -> Label:
        """The label of one witness of this family."""
        if len(values) != len(self.params):
            raise SpecError(
                f"action {self.name} yielded {len(values)} parameter values for params {self.params}"
            )
        return Label(self.name, tuple(zip(self.params, values, strict=True)))


TemporalKind = Literal["eventually", "always_eventually", "leads_to", "eventually_always"]


@dataclass(frozen=True)
class Property(Generic[S]):
    """A temporal property over state predicates.

    ``eventually``         <>P
    ``always_eventually``  []<>P
    ``leads_to``           P ~> Q   (i.e. [](P => <>Q))
    ``eventually_always``  <>[]P

    With ``initially`` the property is required only of behaviours whose initial state satisfies
    it (TLA+'s ``Init /\\ C => F``), so one model with several initial states can state what each
    kind of start must bring about.
    """

    name: str
    kind: TemporalKind
    p: Predicate[S]
    q: Predicate[S] | None = None
    doc: str = ""
    initially: Predicate[S] | None = None

    def __post_init__(self) -> None:
        if (self.kind == "leads_to") != (self.q is not None):
            raise SpecError(f"property {self.name}: leads_to needs q, the other kinds take none")


def eventually(
    name: str, p: Predicate[S], doc: str = "", initially: Predicate[S] | None = None
) -> Property[S]:
    """``<>P``."""
    return Property(name, "eventually", p, None, doc, initially)


def always_eventually(
    name: str, p: Predicate[S], doc: str = "", initially: Predicate[S] | None = None
) -> Property[S]:
    """``[]<>P``."""
    return Property(name, "always_eventually", p, None, doc, initially)


def leads_to(
    name: str, p: Predicate[S], q: Predicate[S], doc: str = "", initially: Predicate[S] | None = None
) -> Property[S]:
    """``P ~> Q``."""
    return Property(name, "leads_to", p, q, doc, initially)


def eventually_always(
    name: str, p: Predicate[S], doc: str = "", initially: Predicate[S] | None = None
) -> Property[S]:
    """``<>[]P``."""
    return Property(name, "eventually_always", p, None, doc, initially)


@dataclass(frozen=True)
class Fairness:
    """``WF_vars(A)`` or ``SF_vars(A)`` for the action family named ``action``.

    With ``per_instance`` the condition holds separately for every parameter
    instance, as ``\\A p: WF_vars(A(p))`` does in TLA+; without it the whole
    family ``\\E p: A(p)`` is one fair action. With ``when``, only the instances
    whose parameters it admits are fair (``WF_vars(\\E p \\in P: A(p))``): a
    sub-relation, such as the steps of the honest processes only, without
    splitting the action in two.
    """

    kind: Literal["weak", "strong"]
    action: str
    per_instance: bool = False
    when: Callable[[Mapping[str, Any]], bool] | None = None
    """A filter on the parameters (by name) of the action's instances."""

    def admits(self, action: str, args: Iterable[tuple[str, Any]]) -> bool:
        """Whether an instance of ``action`` with these parameters is one this condition is about."""
        return action == self.action and (self.when is None or bool(self.when(dict(args))))

    @property
    def prefix(self) -> str:
        return "WF" if self.kind == "weak" else "SF"

    @property
    def title(self) -> str:
        """``WF(A)``, or ``WF(A | filter)`` for a sub-relation, as reports name the obligation."""
        restricted = "" if self.when is None else f" | {getattr(self.when, '__name__', 'filter')}"
        return f"{self.prefix}({self.action}{restricted})"


def weak_fairness(
    action: str, per_instance: bool = False, when: Callable[[Mapping[str, Any]], bool] | None = None
) -> Fairness:
    """``WF_vars(action)``, of the instances ``when`` admits if given."""
    return Fairness("weak", action, per_instance, when)


def strong_fairness(
    action: str, per_instance: bool = False, when: Callable[[Mapping[str, Any]], bool] | None = None
) -> Fairness:
    """``SF_vars(action)``, of the instances ``when`` admits if given."""
    return Fairness("strong", action, per_instance, when)


@dataclass(frozen=True)
class Model(Generic[S]):
    """A specification instance with all constants fixed, ready to be checked."""

    name: str
    init: Callable[[], Iterable[S]]
    actions: tuple[Action[S], ...]
    invariants: Mapping[str, Predicate[S]] = field(default_factory=dict)
    properties: tuple[Property[S], ...] = ()
    fairness: tuple[Fairness, ...] = ()
    constraint: Predicate[S] | None = None
    symmetry: Callable[[S], Hashable] | None = None
    view: Callable[[S], Hashable] | None = None
    fields: Callable[[S], Mapping[str, Any]] | None = None
    constants: Mapping[str, Any] = field(default_factory=dict)
    doc: str = ""
    warnings: tuple[str, ...] = ()
    """Why these constants may not mean what the user expects (e.g. PBFT with n < 3f + 1):
    checked all the same, since such a configuration is a legitimate experiment."""

    def __post_init__(self) -> None:
        names = [a.name for a in self.actions]
        if len(set(names)) != len(names):
            raise SpecError(f"model {self.name}: duplicate action names in {names}")
        for fair in self.fairness:
            if fair.action not in names:
                raise SpecError(f"model {self.name}: fairness names unknown action {fair.action!r}")

    def record(self, state: S) -> Mapping[str, Any]:
        """The state as a record of named fields, for printing traces and ITF export."""
        if self.fields is not None:
            return self.fields(state)
        return record_of(state)


def record_of(state: Any) -> Mapping[str, Any]:
    """Default field view: NamedTuple and dataclass fields by name, anything else as ``state``."""
    if dataclasses.is_dataclass(state) and not isinstance(state, type):
        return {f.name: getattr(state, f.name) for f in dataclasses.fields(state)}
    as_dict = getattr(state, "_asdict", None)
    if callable(as_dict):
        return dict(as_dict())
    return {"state": state}


@dataclass(frozen=True)
class ModelSpec:
    """A registry entry: a named model family, its constants' defaults and their meaning."""

    name: str
    build: Callable[..., Model[Any]]
    defaults: Mapping[str, Any]
    doc: str
    constant_docs: Mapping[str, str] = field(default_factory=dict)
    companions: tuple[str, ...] = ()
    """Models `pot check NAME` checks after this one, as parts of one verdict.

    For a protocol whose partial-synchrony machinery (stabilisation time,
    timers) would multiply this model's states, the temporal properties live
    in smaller dedicated models; naming them here keeps "check the protocol"
    one command. Companions are checked at their own defaults (``--const``
    overrides are for the named model).
    """

    def instantiate(self, overrides: Mapping[str, Any] | None = None) -> Model[Any]:
        """Build the model with ``overrides`` applied over the defaults (like TLC's CONSTANTS).

        Each override is coerced to its default's type (``model_checker.constants``),
        so what a header or ``pot models`` prints is accepted back.
        """
        overrides = dict(overrides or {})
        unknown = sorted(set(overrides) - set(self.defaults))
        if unknown:
            raise ConstantError(
                f"model {self.name} has no constant {', '.join(unknown)}; "
                f"its constants are {', '.join(sorted(self.defaults)) or '(none)'}"
            )
        coerced = {}
        for name, value in overrides.items():
            try:
                coerced[name] = coerce_constant(self.defaults[name], value)
            except ValueError as error:
                raise ConstantError(f"constant {name} of {self.name} {error}") from None
        return self.build(**{**self.defaults, **coerced})


_PLAIN_ATOMS = (int, bool)


def check_plain(value: Any, where: str = "state") -> None:
    """Raise ``SpecError``, naming the field, unless ``value`` is a plain value the checker can fingerprint.

    Accepted: int, bool, IntEnum members, and tuples, frozensets, NamedTuples
    and frozen dataclasses built from those.
    """
    for path, item in _walk(value, where):
        if isinstance(item, enum.Enum) and not isinstance(item, int):
            raise SpecError(f"{path}: enum {item!r} is not an IntEnum; use IntEnum")
        if isinstance(item, (str, bytes)) or item is None or isinstance(item, float):
            raise SpecError(
                f"{path}: {type(item).__name__} value {item!r} is not a plain state value; "
                "encode it as an int"
            )
        if not isinstance(item, (*_PLAIN_ATOMS, tuple, frozenset)) and not _is_frozen_dataclass(item):
            raise SpecError(f"{path}: {type(item).__name__} is not a plain immutable value")


def _is_frozen_dataclass(item: Any) -> bool:
    params = getattr(type(item), "__dataclass_params__", None)
    return params is not None and bool(params.frozen) and bool(params.eq)


def _walk(value: Any, path: str) -> Iterator[tuple[str, Any]]:
    yield path, value
    if _is_frozen_dataclass(value):
        for f in dataclasses.fields(value):
            yield from _walk(getattr(value, f.name), f"{path}.{f.name}")
    elif isinstance(value, tuple):
        names = getattr(value, "_fields", None)
        for i, item in enumerate(value):
            yield from _walk(item, f"{path}.{names[i]}" if names else f"{path}[{i}]")
    elif isinstance(value, frozenset):
        for item in value:
            yield from _walk(item, f"{path}{{}}")
