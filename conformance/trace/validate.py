"""Trace validation: is the observed behaviour of a real run a behaviour of the PBFT spec (``spec/pbft/``)?

The merged event log (``observed.RunLogs.merged``) is matched event by event
against the spec. Each event kind has one entry in the validator's ``table`` saying
what it corresponds to (``conformance/actions.py`` lists them beside the spec actions):

* a spec action of the logging replica, with the event's fields fixing the
  action's parameters (``pre-prepared`` at the primary is ``PrePrepare``, at a
  backup ``Prepare``; ``prepared`` is ``Commit``; ``executed`` is ``Execute``;
  ``checkpoint-stable`` and an installed ``state-transfer`` are
  ``StableCheckpoint``; a sent ``view-change`` is ``StartViewChange``;
  ``new-view`` is ``NewView`` at the new primary and ``AcceptNewView`` at a
  backup);
* or a check on the spec state, for steps the spec takes inside another action
  or does not name (``committed`` is the committed-local predicate;
  ``checkpoint`` is part of ``Execute``; the pre-prepares of a new view's O are
  part of ``NewView``/``AcceptNewView``; a ``received`` message from an honest
  replica must have been sent already, which is what catches an event moved
  before its cause).

Steps the logs cannot show are added as hidden steps, only where the runtime
is known not to log them: a replica that jumps several views logs one
``view-change`` (the intermediate ``StartViewChange`` steps are hidden), and a
replica killed between committing its store and flushing its events loses the
events of that one input, which it redoes silently on recovery (a bounded
search of that replica's own actions reaches the state its ``recovered``
event reports).

Where one event admits several spec successors (which V a new primary chose,
which NEW-VIEW a backup accepted, how a crash tail is completed) the search
is a depth-first search with memoisation of failed ``(event index, state)``
pairs. A log no spec behaviour explains is reported with the first event that
the deepest explanation could not match, and why.

Checkpoint state digests are bound to the executed logs they certify: one
digest per executed prefix and sequence number, in both directions, so a
replica whose service state diverges shows even though the spec has no
service state beyond the executed log.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from conformance.trace.observed import EVENT_ROLES, Observed, Role, RunLogs, TraceInputError
from model_checker.model import Action, Label, SpecError
from pot_impl.pbft.certificates import NULL_DIGEST
from pot_impl.pbft.io import EventKind
from spec.pbft import NULL, Ops, Pbft, PbftConfig, State

Certified = frozenset[tuple[int, str, Ops]]
"""(sequence number, state digest, executed prefix) bindings seen so far."""

IGNORED_KINDS = frozenset(kind for kind, role in EVENT_ROLES.items() if role is not Role.STEP)
"""Events that are not spec steps (``EVENT_ROLES`` says why each is not)."""

BATCH_DIGEST_KINDS = frozenset({"pre-prepared", "prepared", "committed", "executed"})
"""Events whose digest names a batch (a spec request); the others carry state digests."""

RECOVERY_FAMILIES = ("Commit", "Execute", "StableCheckpoint", "StartViewChange", "Prepare")
"""Actions a replica may have taken in the one input whose events a SIGKILL lost."""
RECOVERY_DEPTH = 4
RECOVERY_STATES = 20_000
DEFAULT_MAX_EXPANSIONS = 200_000
MAX_BYZANTINE_CERTIFICATES = 10
"""With a Byzantine replica the spec enumerates every subset of the prepared certificates it could
put in a VIEW-CHANGE (spec/pbft/protocol.py ``byzantine_view_changes``); beyond this many the validator
stops with an inconclusive verdict instead of running out of memory."""


VIEW_OF_THE_MESSAGE = frozenset({"received", "committed"})
"""Events stamped with the view of what they concern, not the replica's: a message received,
and a COMMIT quorum of a view the replica has left (completed late; its matcher checks it)."""


@dataclass(frozen=True)
class SearchNode:
    """Where the search stands: a spec state plus the checkpoint digests bound so far."""

    state: State
    certified: Certified = frozenset()


@dataclass(frozen=True)
class Move:
    """One way to explain an event: the node it leads to and the spec steps it took."""

    node: SearchNode
    steps: tuple[Label, ...] = ()
    hidden: int = 0


@dataclass(frozen=True)
class Matches:
    """The explanations of one event in one node; ``reason`` says why there are none."""

    moves: tuple[Move, ...]
    reason: str = ""
    beyond_bound: bool = False
    """True when the event could not be judged within the validator's bounds (see ``validate``)."""


@dataclass(frozen=True)
class Unmatched:
    """The first event that no spec behaviour consistent with the events before it explains."""

    index: int
    event: Observed
    reason: str


@dataclass
class TraceReport:
    """What ``validate_run`` found."""

    conforms: bool
    events: int
    """Protocol events checked (the honest replicas' events minus ``IGNORED_KINDS``)."""
    matched: int
    """Events explained by the best path found (all of them when ``conforms``)."""
    spec_steps: int
    hidden_steps: int
    expansions: int
    seconds: float
    constants: dict[str, Any]
    requests: int
    unmatched: Unmatched | None = None
    inconclusive: bool = False
    """The search stopped at a bound (expansions, or Byzantine VIEW-CHANGE options) before a verdict;
    ``unmatched`` is the event it stopped at."""
    path: list[str] = field(default_factory=list)
    """The explaining spec behaviour, as action labels (the best prefix when not ``conforms``)."""

    @property
    def verdict(self) -> str:
        if self.conforms:
            return "conforms"
        return "inconclusive" if self.inconclusive else "diverges"

    def to_json(self) -> dict[str, Any]:
        unmatched = None
        if self.unmatched is not None:
            event = self.unmatched.event
            unmatched = {
                "index": self.unmatched.index,
                "event": event.describe(),
                "source": event.source,
                "reason": self.unmatched.reason,
            }
        return {
            "mode": "trace",
            "verdict": self.verdict,
            "events": self.events,
            "matched": self.matched,
            "steps": self.spec_steps,
            "hidden_steps": self.hidden_steps,
            "expansions": self.expansions,
            "seconds": round(self.seconds, 4),
            "constants": self.constants,
            "requests": self.requests,
            "unmatched": unmatched,
            "divergences": self.divergences(),
        }

    def divergences(self) -> list[dict[str, Any]]:
        """The unmatched event in the shape of ``pot conform --json``'s ``divergences`` (step = event
        index in the merged log, action = the event, diff = why no spec step explains it)."""
        if self.unmatched is None or self.inconclusive:
            return []
        return [
            {
                "step": self.unmatched.index,
                "action": self.unmatched.event.describe(),
                "diff": self.unmatched.reason,
            }
        ]

    def summary(self) -> str:
        head = (
            f"trace {self.verdict}: {self.matched}/{self.events} events explained by {self.spec_steps} "
            f"spec steps ({self.hidden_steps} hidden) in {self.seconds:.2f} s"
        )
        if self.unmatched is None:
            return head
        return (
            f"{head}\nfirst unmatched event #{self.unmatched.index}: {self.unmatched.event.describe()}\n"
            f"  because {self.unmatched.reason}"
        )


class TraceValidator:
    """Matches one run's merged events against the PBFT spec instantiated with the run's constants."""

    def __init__(self, run: RunLogs, max_expansions: int = DEFAULT_MAX_EXPANSIONS) -> None:
        self.run = run
        merged = run.merged()
        self.events = [e for e in merged if e.kind not in IGNORED_KINDS]
        self.causality = _causality(merged, run.byzantine)
        self.max_expansions = max_expansions
        self.request_ids = _intern_batches(self.events)
        try:
            config = PbftConfig(
                replicas=run.replicas,
                faulty=run.faulty,
                byzantine=run.byzantine,
                requests=max(1, sum(1 for r in self.request_ids.values() if r != NULL)),
                max_view=max((e.view for e in self.events), default=0),
                checkpoint_interval=run.checkpoint_interval,
                window=run.window,
                max_seq=max((e.seq for e in self.events), default=1) or 1,
            )
        except SpecError as error:  # e.g. a cluster started with --allow-over-f
            raise TraceInputError(f"the spec cannot model this run: {error}") from None
        self.pbft = Pbft(config)
        self.actions: dict[str, Action[State]] = {a.name: a for a in self.pbft.actions()}
        # The spec declares CatchUp only in its liveness models (it matters to liveness alone),
        # but the implementation catches up in every run, so the trace table needs the step.
        self.actions["CatchUp"] = Action("CatchUp", self.pbft.catch_up, ("replica", "seq"))
        self.table: Mapping[str, Callable[[SearchNode, Observed], Matches]] = {
            EventKind.PRE_PREPARED: self._pre_prepared,
            EventKind.PREPARED: self._prepared,
            EventKind.COMMITTED: self._committed,
            EventKind.EXECUTED: self._executed,
            EventKind.CAUGHT_UP: self._caught_up,
            EventKind.CHECKPOINT: self._checkpoint,
            EventKind.CHECKPOINT_STABLE: self._checkpoint_stable,
            EventKind.STATE_TRANSFER: self._state_transfer,
            EventKind.VIEW_CHANGE: self._view_change,
            EventKind.NEW_VIEW: self._new_view,
            EventKind.RECOVERED: self._recovered,
            EventKind.RECEIVED: self._received,
        }
        """One entry per event kind that is a spec step or a check on the spec state (the spec
        action each is, per kind: ``conformance.actions.PBFT`` and ``STATE_CHECKS``)."""

    # ------------------------------------------------------------------ search

    def validate(self) -> TraceReport:
        start = time.perf_counter()
        root = SearchNode(next(iter(self.pbft.init())))
        failed: set[tuple[int, SearchNode]] = set()
        frames: list[tuple[int, Iterator[Move], Move]] = []
        index, node = 0, root
        expansions = 0
        deepest: tuple[int, str, list[Move]] = (-1, "", [])
        inconclusive = False
        while index < len(self.events):
            matches: Matches | None = None
            if (index, node) not in failed:
                expansions += 1
                if expansions > self.max_expansions:
                    matches = Matches(
                        (), f"search budget of {self.max_expansions} expansions exhausted", True
                    )
                else:
                    matches = self._match(node, self.events[index])
                if matches.beyond_bound:
                    inconclusive = True
                    deepest = (index, matches.reason, [move for _, _, move in frames])
                    break
                if not matches.moves and index > deepest[0]:
                    deepest = (index, matches.reason, [move for _, _, move in frames])
            if matches is not None and matches.moves:
                moves = iter(matches.moves)
                move = next(moves)
                frames.append((index, moves, move))
                index, node = index + 1, move.node
                continue
            failed.add((index, node))
            advanced = False
            while frames:
                frame_index, moves, _ = frames.pop()
                following = next(moves, None)
                if following is not None:
                    frames.append((frame_index, moves, following))
                    index, node = frame_index + 1, following.node
                    advanced = True
                    break
                failed.add((frame_index, _node_before(frames, root)))
            if not advanced:
                break
        conforms = index == len(self.events) and not inconclusive
        path_moves = [move for _, _, move in frames] if conforms else deepest[2]
        unmatched = None
        if not conforms:
            position = max(deepest[0], 0)
            unmatched = Unmatched(position, self.events[position], deepest[1])
        return TraceReport(
            conforms=conforms,
            events=len(self.events),
            matched=len(path_moves),
            spec_steps=sum(len(m.steps) for m in path_moves),
            hidden_steps=sum(m.hidden for m in path_moves),
            expansions=expansions,
            seconds=time.perf_counter() - start,
            constants={
                name: _plain(getattr(self.pbft.config, name))
                for name in (
                    "replicas",
                    "faulty",
                    "byzantine",
                    "requests",
                    "max_view",
                    "checkpoint_interval",
                    "window",
                    "max_seq",
                )
            },
            requests=len(self.request_ids),
            unmatched=unmatched,
            inconclusive=inconclusive,
            path=[str(label) for m in path_moves for label in m.steps],
        )

    def _match(self, node: SearchNode, event: Observed) -> Matches:
        if not 0 <= event.node < self.run.replicas:
            return Matches((), f"node {event.node} is not a replica of this {self.run.replicas}-replica run")
        matcher = self.table.get(event.kind)
        if matcher is None:
            return Matches((), f"event kind {event.kind!r} has no entry in the trace table")
        found = matcher(node, event)
        if event.kind in VIEW_OF_THE_MESSAGE or found.beyond_bound:
            return found
        kept = tuple(m for m in found.moves if m.node.state.replicas[event.node].view == event.view)
        if found.moves and not kept:
            views = sorted({m.node.state.replicas[event.node].view for m in found.moves})
            return Matches((), f"the spec replica is in view {views[0]}, the log says view {event.view}")
        return Matches(kept, found.reason)

    # ------------------------------------------------------------------ spec steps

    def _steps(self, state: State, family: str, replica: int, *values: int) -> list[tuple[Label, State]]:
        """Successors of ``family`` whose parameters start with (replica, *values)."""
        action = self.actions[family]
        wanted = (replica, *values)
        found = []
        for params, successor in action.step(state):
            if tuple(params[: len(wanted)]) == wanted:
                found.append((action.label(tuple(params)), successor))
        return found

    def _act(self, node: SearchNode, family: str, replica: int, *values: int) -> Matches:
        found = self._steps(node.state, family, replica, *values)
        if not found:
            args = ", ".join(str(v) for v in (replica, *values))
            return Matches((), f"spec action {family}({args}) is not enabled")
        return Matches(_distinct(Move(SearchNode(s, node.certified), (label,)) for label, s in found))

    def request_of(self, digest: str) -> int:
        return self.request_ids[digest]

    # ------------------------------------------------------------------ the table

    def _pre_prepared(self, node: SearchNode, e: Observed) -> Matches:
        """At the primary: PrePrepare. At a backup: Prepare (it multicasts PREPARE). Already in the
        state: the pre-prepare came in a NEW-VIEW's O, logged by NewView/AcceptNewView."""
        replica, entry = node.state.replicas[e.node], (e.view, e.seq, self.request_of(e.digest))
        if self.pbft.primary(e.view) == e.node:
            if entry in replica.proposals:
                return Matches((Move(node),))
            return self._act(node, "PrePrepare", e.node, e.seq, entry[2])
        if entry in replica.prepares:
            return Matches((Move(node),))
        d = entry[2]
        return self._act(node, "Prepare", e.node, e.seq, d)

    def _prepared(self, node: SearchNode, e: Observed) -> Matches:
        """prepared(m, v, n, i): the replica multicasts COMMIT."""
        return self._act(node, "Commit", e.node, e.seq, self.request_of(e.digest))

    def _committed(self, node: SearchNode, e: Observed) -> Matches:
        """committed-local(m, v, n, i) is a predicate of the spec state, not a step."""
        entry = (e.node, (e.view, e.seq, self.request_of(e.digest)))
        if any(c == entry for c in self.pbft.committed_local(node.state)):
            return Matches((Move(node),))
        return Matches((), "the spec replica is not committed-local for this view, seq and request")

    def _executed(self, node: SearchNode, e: Observed) -> Matches:
        d = self.request_of(e.digest)
        executed = node.state.replicas[e.node].executed
        if e.seq <= len(executed):
            at = executed[e.seq - 1]
            if at == d or (at == NULL and (d == NULL or d in executed[: e.seq - 1])):
                return Matches((Move(node),))
            return Matches((), f"the spec replica executed request {at} at seq {e.seq}, the log says {d}")
        if e.seq != len(executed) + 1:
            return Matches((), f"the spec replica executed {len(executed)} requests; seq {e.seq} is not next")
        return self._act(node, "Execute", e.node, d)

    def _caught_up(self, node: SearchNode, e: Observed) -> Matches:
        """The replica executes the next batch on a certificate fetched from a replica ahead: the
        spec's CatchUp (its ``executed`` event follows and finds the batch already executed)."""
        return self._act(node, "CatchUp", e.node, e.seq)

    def _checkpoint(self, node: SearchNode, e: Observed) -> Matches:
        """Taking a checkpoint is part of Execute; its digest is bound to the executed prefix."""
        replica = node.state.replicas[e.node]
        if (e.seq, replica.executed[: e.seq]) not in set(self.pbft.checkpoints_of(replica)):
            return Matches((), f"the spec replica sent no CHECKPOINT for seq {e.seq}")
        return self._bind(Move(node), e)

    def _checkpoint_stable(self, node: SearchNode, e: Observed) -> Matches:
        """StableCheckpoint, unless a NEW-VIEW or a state transfer already made it stable."""
        if node.state.replicas[e.node].stable >= e.seq:
            return self._bind(Move(node), e)
        return self._bind_all(self._act(node, "StableCheckpoint", e.node, e.seq), e)

    def _state_transfer(self, node: SearchNode, e: Observed) -> Matches:
        """``requested``: the replica learnt of a certified checkpoint; ``installed``: it fetched that
        state, which the spec's StableCheckpoint does for a replica that has not executed that far."""
        if e.reason == "requested":
            if any(n == e.seq for n, _ in self.pbft.stable_checkpoints(node.state)):
                return Matches((Move(node),))
            return Matches((), f"no checkpoint at seq {e.seq} is certified in the spec state")
        return self._checkpoint_stable(node, e)

    def _view_change(self, node: SearchNode, e: Observed) -> Matches:
        if e.reason == "received":  # the generic ``received`` event of the same message is checked
            return Matches((Move(node),))
        s, hidden = node.state, 0
        while s.replicas[e.node].view < e.view - 1:
            jump = self._steps(s, "StartViewChange", e.node, s.replicas[e.node].view + 1)
            if not jump:
                break
            s, hidden = jump[0][1], hidden + 1
        found = self._act(SearchNode(s, node.certified), "StartViewChange", e.node, e.view)
        moves = tuple(
            Move(m.node, m.steps, hidden)
            for m in found.moves
            if any(
                vc.view == e.view and vc.stable == e.seq for vc in m.node.state.replicas[e.node].view_changes
            )
        )
        if found.moves and not moves:
            return Matches((), f"the spec VIEW-CHANGE carries a different stable checkpoint than {e.seq}")
        return Matches(moves, found.reason)

    def _new_view(self, node: SearchNode, e: Observed) -> Matches:
        """NewView at the new primary, AcceptNewView at a backup; ``seq`` is min-s of the chosen V."""
        certificates = self._byzantine_certificates(node.state)
        if certificates > MAX_BYZANTINE_CERTIFICATES:
            return Matches(
                (),
                f"a Byzantine replica could claim any subset of {certificates} prepared certificates in "
                f"its VIEW-CHANGE: 2^{certificates} spec options exceed the validator's bound",
                beyond_bound=True,
            )
        before = node.state.replicas[e.node].stable
        if self.pbft.primary(e.view) == e.node:
            found = self._act(node, "NewView", e.node)
            moves = tuple(
                m
                for m in found.moves
                if any(nv.view == e.view and nv.stable == e.seq for nv in m.node.state.new_views)
            )
        else:
            found = self._act(node, "AcceptNewView", e.node, e.view)
            moves = tuple(
                m for m in found.moves if m.node.state.replicas[e.node].stable == max(before, e.seq)
            )
        if found.moves and not moves:
            return Matches((), f"no NEW-VIEW the spec allows has min-s {e.seq}")
        return Matches(_distinct(moves), found.reason)

    def _byzantine_certificates(self, s: State) -> int:
        """How many prepared certificates a Byzantine VIEW-CHANGE could choose among (0 without one)."""
        if not self.pbft.byzantine:
            return 0
        return sum(
            1
            for view in range(self.pbft.config.max_view)
            for seq in self.pbft.seqs
            for d in (NULL, *self.pbft.requests)
            if self.pbft.has_prepared_certificate(s, (view, seq, d))
        )

    def _recovered(self, node: SearchNode, e: Observed) -> Matches:
        """A restarted replica reports how far it executed; a SIGKILL may have lost the events of one
        input that its store already held, so reach that point by hidden steps of its own."""
        goal = _recovery_goal(e)
        if goal(node.state):
            return Matches((Move(node),))
        reached = self._hidden_search(node.state, e.node, goal)
        if not reached:
            executed = len(node.state.replicas[e.node].executed)
            return Matches(
                (),
                f"the replica recovered at seq {e.seq}; the spec replica executed {executed} "
                f"and no {RECOVERY_DEPTH} hidden steps of its own reach seq {e.seq}",
            )
        return Matches(
            tuple(Move(SearchNode(s, node.certified), labels, len(labels)) for s, labels in reached)
        )

    def _hidden_search(
        self, state: State, replica: int, goal: Callable[[State], bool]
    ) -> list[tuple[State, tuple[Label, ...]]]:
        """Breadth-first over ``replica``'s own ``RECOVERY_FAMILIES``: the shallowest states in ``goal``."""
        frontier: list[tuple[State, tuple[Label, ...]]] = [(state, ())]
        seen = {state}
        for _ in range(RECOVERY_DEPTH):
            following = []
            for current, labels in frontier:
                for family in RECOVERY_FAMILIES:
                    for label, successor in self._steps(current, family, replica):
                        if successor not in seen and len(seen) < RECOVERY_STATES:
                            seen.add(successor)
                            following.append((successor, (*labels, label)))
            reached = [item for item in following if goal(item[0])]
            if reached or not following:
                return reached
            frontier = following
        return []

    def _received(self, node: SearchNode, e: Observed) -> Matches:
        """A message from an honest replica is received only after that replica logged sending it
        (checked on the log itself in ``_causality``; the spec's message sets forget dead messages)."""
        reason = self.causality.get(e.source)
        return Matches((), reason) if reason else Matches((Move(node),))

    # ------------------------------------------------------------------ checkpoint digests

    def _bind(self, move: Move, e: Observed) -> Matches:
        """Bind the event's state digest to the spec replica's executed prefix at ``e.seq``."""
        prefix = move.node.state.replicas[e.node].executed[: e.seq]
        for seq, digest, ops in move.node.certified:
            if seq == e.seq and (digest == e.digest) != (ops == prefix):
                return Matches(
                    (),
                    f"state digest {e.digest[:12]} and the spec's executed prefix {prefix} "
                    f"disagree with an earlier checkpoint at seq {seq}",
                )
        certified = move.node.certified | {(e.seq, e.digest, prefix)}
        return Matches((Move(SearchNode(move.node.state, certified), move.steps, move.hidden),))

    def _bind_all(self, found: Matches, e: Observed) -> Matches:
        moves: list[Move] = []
        reason = found.reason
        for move in found.moves:
            bound = self._bind(move, e)
            moves.extend(bound.moves)
            reason = reason or bound.reason
        return Matches(tuple(moves), reason)


def _causality(events: Iterable[Observed], byzantine: frozenset[int]) -> dict[str, str]:
    """``source`` -> why, for each received message from an honest replica that the sender had not
    logged sending (same type and sequence number, to this replica or to all) at that point."""
    sent: set[tuple[int, str, int, int]] = set()
    violations = {}
    for e in events:
        if e.kind == "sent":
            sent.add((e.node, e.message, e.seq, e.peer))
        elif (
            e.kind == "received"
            and e.peer not in byzantine
            and e.peer != e.node
            and not {(e.peer, e.message, e.seq, e.node), (e.peer, e.message, e.seq, -1)} & sent
        ):
            violations[e.source] = f"replica {e.peer} had not sent a {e.message} for seq {e.seq} to it"
    return violations


def _recovery_goal(e: Observed) -> Callable[[State], bool]:
    def reached(s: State) -> bool:
        replica = s.replicas[e.node]
        return len(replica.executed) == e.seq and replica.view == e.view

    return reached


def _intern_batches(events: Iterable[Observed]) -> dict[str, int]:
    """Batch digest -> spec request id, in order of first appearance; the null batch is NULL."""
    ids = {NULL_DIGEST.hex(): NULL}
    for event in events:
        if event.kind in BATCH_DIGEST_KINDS and event.digest not in ids:
            ids[event.digest] = len(ids)
    return ids


def _distinct(moves: Iterable[Move]) -> tuple[Move, ...]:
    unique: dict[SearchNode, Move] = {}
    for move in moves:
        unique.setdefault(move.node, move)
    return tuple(unique.values())


def _node_before(frames: list[tuple[int, Iterator[Move], Move]], root: SearchNode) -> SearchNode:
    return frames[-1][2].node if frames else root


def _plain(value: Any) -> Any:
    if isinstance(value, frozenset):
        return sorted(value)
    return int(value)


def validate_run(run: RunLogs, max_expansions: int = DEFAULT_MAX_EXPANSIONS) -> TraceReport:
    """Check that the run's logs are a behaviour of the PBFT spec (see the module docstring)."""
    return TraceValidator(run, max_expansions).validate()
