"""The constants of a PBFT model (one frozen ``PbftConfig``), its planted bugs and its service.

Every field of ``PbftConfig`` is a model constant: ``Model.constants`` is
``config.constants()``, and ``CONSTANT_DOCS`` documents each field (a test
checks the two name the same things).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass, field, fields
from enum import IntEnum
from typing import Any

from model_checker.model import ConstantError
from spec.pbft.state import NULL, Ops
from spec.quorum import quorum


class PbftBug(IntEnum):
    """Planted protocol bugs: spec variants the checker must refute. NONE is the protocol."""

    NONE = 0
    COMMIT_AT_F_PLUS_1 = 1
    """committed-local after f + 1 matching COMMITs instead of a quorum."""
    PREPARE_COUNTED_TWICE = 2
    """A sender's PREPARE counts twice (duplicates not filtered by sender)."""
    NEW_VIEW_LOWEST_VIEW = 3
    """NEW-VIEW re-proposes the lowest-view prepared digest instead of the highest."""
    NO_NULL_FILL = 4
    """NEW-VIEW leaves gaps in O instead of filling them with null requests."""
    REEXECUTE = 5
    """A request committed at two sequence numbers is executed twice (no client-timestamp check)."""
    NO_TIMEOUT_DOUBLING = 6
    """Liveness: a replica's view-change timeout never grows, so after GST it may still be too short."""
    NO_VIEW_CHANGE_JOIN = 7
    """Liveness: a replica never joins a view change on f + 1 VIEW-CHANGEs for higher views."""
    SILENT_PRIMARY = 8
    """Liveness: honest primaries never propose, and replicas have no view-change timer."""


def parse_bug(bug: int | str) -> PbftBug:
    """A PbftBug from its name (any case) or number; ConstantError names the valid ones."""
    try:
        return PbftBug[bug.upper()] if isinstance(bug, str) else PbftBug(bug)
    except (KeyError, ValueError):
        valid = ", ".join(b.name.lower() for b in PbftBug)
        raise ConstantError(f"unknown PBFT bug {bug!r}; valid: {valid}") from None


# --------------------------------------------------------------------------- application


@dataclass(frozen=True)
class Application:
    """The replicated service: PBFT executes requests in order, this says what they return.

    ``result(ops, request)`` is the reply a replica with executed log ``ops``
    sends for ``request`` (which it has executed); ``invariants`` are
    predicates over one honest replica's executed log.
    """

    name: str
    result: Callable[[Ops, int], Hashable]
    invariants: Mapping[str, Callable[[Ops], bool]] = field(default_factory=dict)
    symmetric_requests: bool = False
    """True when permuting request identities maps behaviours to behaviours (symmetry reduction)."""


def _position_result(ops: Ops, request: int) -> Hashable:
    """A counter service: the reply is how many requests ran before this one."""
    return sum(1 for op in ops[: ops.index(request)] if op != NULL)


COUNTER = Application("counter", _position_result, symmetric_requests=True)
"""The service of the PBFT-only models: replies reveal the order, so a wrong order shows."""


# --------------------------------------------------------------------------- configuration


@dataclass(frozen=True)
class PbftConfig:
    """The constants of one PBFT model (see ``CONSTANT_DOCS``)."""

    replicas: int = 4
    faulty: int = 1
    byzantine: frozenset[int] = frozenset({0})
    requests: int = 2
    max_view: int = 1
    checkpoint_interval: int = 2
    window: int = 4
    max_seq: int = 2
    bug: PbftBug = PbftBug.NONE
    liveness: bool = False
    async_views: int = 1
    delay_level: int = 1

    def __post_init__(self) -> None:
        problems = []
        if self.faulty < 0 or self.replicas < 1:
            problems.append("need replicas >= 1 and faulty >= 0")
        if len(self.byzantine) > self.faulty:
            problems.append(f"{len(self.byzantine)} Byzantine replicas exceed faulty={self.faulty}")
        if not self.byzantine <= set(range(self.replicas)):
            problems.append(f"byzantine {sorted(self.byzantine)} not all in 0..{self.replicas - 1}")
        if len(self.byzantine) == self.replicas:
            problems.append("at least one replica must be honest")
        if min(self.requests, self.checkpoint_interval, self.window, self.max_seq) < 1:
            problems.append("requests, checkpoint_interval, window and max_seq must be >= 1")
        if self.max_view < 0:
            problems.append("max_view must be >= 0")
        if problems:
            raise ConstantError("PBFT constants: " + "; ".join(problems))

    @staticmethod
    def of(constants: Mapping[str, Any]) -> PbftConfig:
        """The config of plain constants (what ``ModelSpec.build`` receives): any iterable of
        Byzantine replicas, a bug by name or number."""
        plain = dict(constants)
        if "byzantine" in plain:
            plain["byzantine"] = frozenset(plain["byzantine"])
        if "bug" in plain:
            plain["bug"] = parse_bug(plain["bug"])
        return PbftConfig(**plain)

    def constants(self) -> dict[str, Any]:
        """Every field, by name: the model's ``constants``."""
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def warnings(self) -> tuple[str, ...]:
        """Constants that are checkable but void the protocol's guarantees (C&L section 2: n >= 3f + 1)."""
        n, f = self.replicas, self.faulty
        if n >= 3 * f + 1:
            return ()
        return (
            f"replicas={n} < 3*faulty+1={3 * f + 1}: PBFT assumes n >= 3f + 1; two quorums of "
            f"n - f = {quorum(n, f)} may share no honest replica, so safety may fail",
        )


CONSTANT_DOCS: Mapping[str, str] = {
    "replicas": "n, the number of replicas; the primary of view v is v mod n",
    "faulty": "f, the fault threshold the quorums are sized for",
    "byzantine": "replicas that are Byzantine (at most f): they send anything they can sign",
    "requests": "client requests 1..requests, all sent at the start",
    "max_view": "views 0..max_view are explored (no view change beyond it; liveness models record a "
    "timeout there as the views-exhausted outcome)",
    "checkpoint_interval": "K: a replica checkpoints after executing every K-th sequence number",
    "window": "L: sequence numbers accepted are h < n <= h + L (h: last stable checkpoint)",
    "max_seq": "largest sequence number any pre-prepare may carry (bounds the model)",
    "bug": "a planted protocol bug (spec.pbft.PbftBug), or none (the protocol)",
    "liveness": "model partial synchrony (GST, timers, timeout doubling, joining view changes) and "
    "check the liveness properties under fairness (no symmetry reduction then)",
    "async_views": "liveness: before GST, timers may expire spuriously only in views below this",
    "delay_level": "liveness: timeouts doubled this many times outlast the message delay after GST",
}
