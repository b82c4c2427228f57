"""The PBFT bridge: spec/pbft.py's actions as inputs to real sans-IO ``pot_impl`` replicas.

The honest replicas are real ``Replica`` objects; the network is the bridge:
every message a replica sends is kept (``sent``), and nothing is delivered
unless a spec step needs it, so the implementation takes exactly the steps the
behaviour takes. Byzantine replicas have no ``Replica``: where the spec says a
Byzantine message is available, the bridge builds it and signs it with that
replica's key (it can sign anything; it cannot forge honest signatures, so
certificates it builds contain only messages honest replicas really sent).

One stimulus per spec action (``_STIMULI``, from ``conformance.actions.PBFT``, which also names
each action's implementation handler and trace events):

================  ==========================================================
PrePrepare        the batch of signed client requests reaches the primary
Prepare           the primary's PRE-PREPARE (sent, or signed by a Byzantine primary)
Commit            the matching PREPAREs of the other backups (honest sent + Byzantine)
Execute           the matching COMMITs of the other replicas (honest sent + Byzantine)
StableCheckpoint  the matching CHECKPOINTs; a replica behind gets the certified state
StartViewChange   the view-change timer fires
NewView           a quorum of VIEW-CHANGEs whose O is the label's O reaches the new primary
AcceptNewView     the NEW-VIEW (sent, or built and signed by a Byzantine primary)
Quiescent         nothing (the spec stutters once no protocol step is enabled)
================  ==========================================================

The abstraction reads each replica's view, activity, stable checkpoint and
executed log (from the recording application), and the messages it sent.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from copy import copy
from dataclasses import replace
from itertools import chain, combinations, islice, product
from typing import Any, TypeVar, cast

from conformance import actions
from conformance.adversaries.messages import Mutant, mutants, short_quorums
from conformance.bridge_core import BridgeError, FieldDiff, Unrealizable, state_diff
from conformance.cloning import clone
from conformance.write_ahead import Signed, crash_points, forgotten
from model_checker.model import Label, Model
from pot_impl import codec
from pot_impl.auth import HmacKeyring, client_principal, replica_principal, sign_message
from pot_impl.pbft.certificates import NULL_DIGEST, plan_new_view, state_digest
from pot_impl.pbft.config import ReplicaConfig
from pot_impl.pbft.io import (
    Broadcast,
    CompactLog,
    DurableRecord,
    Effect,
    Persist,
    ReplyToClient,
    SendTo,
    Timer,
    TimerKind,
)
from pot_impl.pbft.messages import (
    CatchUp,
    Checkpoint,
    Commit,
    CommittedCertificate,
    Fetch,
    NewView,
    Prepare,
    PreparedCertificate,
    PrePrepare,
    ReplicaMessage,
    Reply,
    Request,
    ServiceState,
    StableSnapshot,
    StateResponse,
    ViewChange,
)
from pot_impl.pbft.outbox import message_identity
from pot_impl.pbft.quorums import commit_quorum, max_faulty
from pot_impl.pbft.replica import Replica
from pot_impl.sim.apps import RecordingApp
from spec import pbft as sp

M = TypeVar("M", bound=ReplicaMessage)
Vote = TypeVar("Vote", Prepare, Commit)
WRONG_MESSAGES_PER_PROBE = 6
"""Wrong messages each honest replica hears per probe (each costs a fork and an abstraction)."""
FORGED_CERTIFICATES_PER_PROBE = 4
"""Forged certificates each honest replica hears per probe (the same cost each)."""
Entry = tuple[int, int, int]
"""(view, seq, request id) as the spec writes log entries."""


BATCH_SIZE = 2
"""Client requests per spec request: the spec orders opaque requests, so each one is a batch, and
every step the spec takes also drives batching and the per-request client signatures inside it."""


def requests_for(request_id: int, keys: HmacKeyring, batch_size: int) -> tuple[Request, ...]:
    """The batch the spec calls ``request_id``: ``batch_size`` signed requests, one client each,
    timestamp 1."""
    clients = [f"client{request_id}.{k}" for k in range(batch_size)]
    return tuple(
        sign_message(keys.signer(client_principal(c)), Request(c, 1, f"op{request_id}".encode()))
        for c in clients
    )


class PbftBridge:
    """Drives fresh honest ``Replica`` objects (in-memory network, HMAC keys) from PBFT-model actions."""

    def __init__(self, model: Model[sp.State], batch_size: int = BATCH_SIZE) -> None:
        try:
            config = sp.PbftConfig(**{name: model.constants[name] for name in sp.CONSTANT_DOCS})
        except (KeyError, TypeError) as missing:
            raise BridgeError(f"model {model.name} is not a PBFT model: {missing}") from None
        if config.faulty != max_faulty(config.replicas):
            raise BridgeError(
                f"the implementation tolerates f = {max_faulty(config.replicas)} of n = {config.replicas}; "
                f"the model assumes f = {config.faulty}"
            )
        if getattr(config, "liveness", False):
            raise BridgeError(
                "liveness variants add partial synchrony (GST, timeout doubling) that a replay cannot "
                "observe; conformance uses the safety model"
            )
        if config.window % config.checkpoint_interval:
            raise BridgeError("the implementation needs the watermark window to be a multiple of K")
        self.model = model
        self.spec = sp.Pbft(config)
        """Used only to choose stimuli (which view-changes realise a label's O), never to compute
        what the implementation should reach."""
        self.config = config
        self.impl_config = ReplicaConfig(
            n=config.replicas,
            checkpoint_interval=config.checkpoint_interval,
            watermark_window=config.window,
            batch_size=batch_size,
        )
        self.keys = HmacKeyring(b"pot-conformance")
        self.requests = {r: requests_for(r, self.keys, batch_size) for r in self.spec.requests}
        self.request_ids = {codec.batch_digest(batch): r for r, batch in self.requests.items()}
        self.request_ids[NULL_DIGEST] = sp.NULL
        self.digests = {r: d for d, r in self.request_ids.items()}
        self.executions = {
            tuple((q.client, q.operation) for q in batch): r for r, batch in self.requests.items()
        }
        """What the application runs for each spec request: its batch's (client, operation)s in order."""
        self.replicas: dict[int, Replica] = {}
        self.apps: dict[int, RecordingApp] = {}
        self.sent: dict[int, list[ReplicaMessage]] = {}
        self._logged: dict[int, set[Entry]] = {}
        self._snapshots: dict[tuple[int, bytes], bytes] = {}
        """(sequence number, state digest) -> snapshot bytes of every checkpoint an honest replica took
        (a no-op leaves the state, hence the digest, as it was: the sequence number tells them apart)."""
        self._initial: sp.State | None = None
        self._verifier = self.keys.verifier()
        self._signers = {i: self.keys.signer(replica_principal(i)) for i in self.spec.honest}
        self._owned: set[int] = set()
        """Replicas this bridge may step in place (the others it shares with a fork)."""
        self._signed: dict[ReplicaMessage, ReplicaMessage] = {}
        """Byzantine messages signed so far (HMAC signing is deterministic): built once, shared by forks."""
        self._mutated: dict[ReplicaMessage, list[Mutant]] = {}
        """Each wrong-message source's mutants (``_mutants``)."""
        self._certified: dict[tuple[int, bytes], sp.Ops] = {}
        """The executed log at each (sequence number, snapshot) seen (decoded once, shared by forks;
        a null request leaves the snapshot as it was, so the sequence number is part of the key)."""
        self._keep = frozenset(map(id, (self.impl_config, self._verifier, *self._signers.values())))
        self.received: dict[int, list[ReplicaMessage]] = {}
        """Messages delivered to each honest replica (what it may hold besides its own)."""
        self._abstracted: dict[int, tuple[sp.Replica, frozenset[sp.NewView]]] = {}
        """Per honest replica: its abstract record and NEW-VIEWs, until it steps again."""
        self.stores: dict[int, list[DurableRecord]] = {}
        """Each honest replica's durable log, as its ``Persist`` and ``CompactLog`` effects left it."""
        self.replied: dict[int, list[Reply]] = {}
        """The replies each honest replica sent."""
        self.results: dict[tuple[str, int], frozenset[bytes]] = {}
        """(client, timestamp) -> every result an honest replica replied for it (replaced, never
        mutated, so forks share it)."""
        self._stepping = False
        self._last_step: list[tuple[int, tuple[DurableRecord, ...], tuple[Signed, ...], list[Effect]]] = []
        """The last stimulus, per input a replica handled: its store and what it had sent before,
        and the effects (``_probe_write_ahead`` crashes it between them)."""
        self._genesis = b""
        """The initial service state's snapshot (what a forged state transfer can also carry)."""
        self._reach: dict[tuple[int, bool], set[sp.State]] = {}
        """``_reachable_alone`` of the state being probed, per (replica, with CatchUp)."""
        self._one_step: set[sp.State] | None = None
        """The spec's successors of the state being probed."""

    # ------------------------------------------------------------------ Bridge protocol

    def start(self, initial: sp.State, plan: Sequence[Label]) -> None:
        self.apps = {i: RecordingApp() for i in self.spec.honest}
        self.replicas = {
            i: Replica(i, self.impl_config, self._signers[i], self._verifier, self.apps[i])
            for i in self.spec.honest
        }
        self._owned = set(self.spec.honest)
        self._abstracted = {}
        self.sent = {i: [] for i in range(self.config.replicas)}
        self.received = {i: [] for i in self.spec.honest}
        self._logged = {i: set() for i in range(self.config.replicas)}
        self._snapshots = {}
        self.stores = {i: [] for i in self.spec.honest}
        self.replied = {i: [] for i in self.spec.honest}
        self.results = {}
        self._last_step = []
        self._genesis = self.replicas[self.spec.honest[0]].stable_snapshot.snapshot
        self._initial = initial

    def realizable(self, label: Label, state: sp.State) -> str | None:
        """Only checked by stimulating a copy would be exact; the PBFT bridge reports gaps on stimulation."""
        del label, state
        return None

    def probe(self, state: sp.State) -> tuple[str, tuple[FieldDiff, ...]] | None:
        """Stimuli beyond the behaviour's own steps, each on a fork, judged against the spec in
        ``state``: the last step again with crashes between its effects (``_probe_write_ahead``), then
        for each honest replica wrong messages and forged certificates, retransmitted client
        requests, a catch-up from a replica ahead of it, and every message of its view (reaction)."""
        self._reach, self._one_step = {}, None
        found = self._probe_write_ahead()
        probes = (
            self._probe_wrong_messages,
            self._probe_retransmissions,
            self._probe_catch_up,
            self._probe_reaction,
        )
        for replica, probe in product(self.spec.honest, probes):
            if found is not None:
                break
            found = probe(replica, state)
        return found

    def _probe_reaction(self, replica: int, state: sp.State) -> tuple[str, tuple[FieldDiff, ...]] | None:
        """Reaction probe: a replica in an active view hears every message of its view that exists
        (honest ones as sent, Byzantine votes for every entry honest replicas logged, checkpoints for
        every state taken), each twice (the network duplicates). Whatever it then does must be what
        the spec lets that replica do alone from ``state``: a replica that prepares, commits,
        executes or stabilises on fewer or duplicated messages diverges."""
        if not self.replicas[replica].view_active:
            return None
        fork = self.fork()
        messages = fork._available(replica, state)
        fork._deliver(replica, [m for m in messages for _ in range(2)])
        view = state.replicas[replica].view
        return self._judge(
            state, replica, fork, f"replica {replica} heard every message of view {view} (twice)"
        )

    def _probe_retransmissions(
        self, replica: int, state: sp.State
    ) -> tuple[str, tuple[FieldDiff, ...]] | None:
        """Clients retransmit until f + 1 replies match (``retransmitted``). The replica may take
        only its own spec steps (a primary orders what it has not ordered), and every reply must
        repeat a result the request's execution produced: a request runs once (the client table),
        however often it arrives. What a replica does with a client request depends on its own
        state alone, so only a replica the last step moved is probed (each state of a behaviour
        is probed in turn)."""
        if all(stepped != replica for stepped, *_ in self._last_step):
            return None
        fork = self.retransmitted(replica)
        for reply in fork.replied[replica][len(self.replied[replica]) :]:
            if reply.result not in self.results.get((reply.client, reply.timestamp), frozenset()):
                what = f"replica {replica} answered a retransmitted request of {reply.client}"
                diff = FieldDiff("reply.result", "a result of executing the request", reply.result.hex())
                return what + " with a result no execution of it produced", (diff,)
        return self._judge(state, replica, fork, f"replica {replica} heard every client request again")

    def retransmitted(self, replica: int) -> PbftBridge:
        """A fork in which ``replica`` hears every client request again, from its client and relayed
        by a replica."""
        fork = self.fork()
        live = fork._live(replica)
        for request in chain.from_iterable(self.requests.values()):
            fork._run(replica, live.submit(request))
            fork._run(replica, live.deliver(request))
        return fork

    def _probe_catch_up(self, replica: int, state: sp.State) -> tuple[str, tuple[FieldDiff, ...]] | None:
        """The replica catches up (``caught_up``): the one ahead takes no step, the one behind only
        the spec's CatchUp steps (what an honest replica executed) and its own."""
        fork = self.caught_up(replica)
        if fork is None:
            return None
        return self._judge(state, replica, fork, f"replica {replica} caught up", catch_up=True)

    def caught_up(self, replica: int) -> PbftBridge | None:
        """A fork in which ``replica`` reports how far it executed (``Fetch``, as its view-change
        timer does), the first honest replica ahead of it answers (the certified state, committed
        batches with their certificates) and it hears the answers; None if no replica is ahead."""
        behind = self.replicas[replica].last_executed
        ahead = next((j for j in self.spec.honest if self.replicas[j].last_executed > behind), None)
        if ahead is None:
            return None
        fork = self.fork()
        answers = fork._live(ahead).deliver(sign_message(self._signers[replica], Fetch(behind, replica)))
        fork._run(ahead, answers)
        to_it = (e.message for e in answers if isinstance(e, SendTo) and e.replica == replica)
        fork._deliver(replica, [m for m in to_it if not isinstance(m, Request)])
        return fork

    def _judge(
        self, state: sp.State, replica: int, fork: PbftBridge, what: str, catch_up: bool = False
    ) -> tuple[str, tuple[FieldDiff, ...]] | None:
        """None if ``fork`` reached a state the spec reaches from ``state`` by ``replica``'s own steps
        (with the spec's CatchUp if ``catch_up``), else what happened and the difference."""
        reached = fork.abstract()
        if reached in self._reachable_alone(state, replica, catch_up):
            return None
        return what + ": the spec lets it reach no such state", state_diff(self.model, state, reached)

    def _probe_write_ahead(self) -> tuple[str, tuple[FieldDiff, ...]] | None:
        """The last step again, crashing: every replica it stepped is recovered, on a fresh object,
        from its store as it was after each of the step's sends (``write_ahead.crash_points``), and
        must stand behind everything it had sent; recovered from its store at the end of the step,
        it must be back in the state it was in (view, executed log, stable checkpoint)."""
        recovered: dict[tuple[DurableRecord, ...], tuple[Replica, RecordingApp]] = {}

        def recover(replica: int, store: tuple[DurableRecord, ...]) -> tuple[Replica, RecordingApp]:
            if store not in recovered:
                app = RecordingApp()
                fresh = Replica(replica, self.impl_config, self._signers[replica], self._verifier, app)
                fresh.recover(store)
                recovered[store] = (fresh, app)
            return recovered[store]

        for replica, store, sent, effects in self._last_step:
            for records, sent_now in crash_points(replica, store, effects):
                lost = forgotten(recover(replica, records)[0], (*sent, *sent_now))
                if lost:
                    what = f"replica {replica} crashed after sending {_describe(sent_now[-1])}"
                    diff = FieldDiff(f"replicas[{replica}] recovered", "stands behind it", _describe(lost[0]))
                    return what + ": recovered from its store, it has forgotten what it sent", (diff,)
        for replica in dict.fromkeys(replica for replica, *_ in self._last_step):
            fresh, app = recover(replica, tuple(self.stores[replica]))
            again = self._local_state(fresh, app)
            before = self._local_state(self.replicas[replica], self.apps[replica])
            if again != before:
                diff = FieldDiff(f"replicas[{replica}]", str(before), str(again))
                return f"replica {replica} recovered from its store in another state", (diff,)
        return None

    def _local_state(self, replica: Replica, app: RecordingApp) -> tuple[int, bool, sp.Ops, int]:
        """What a restart must restore: view, whether active, executed log, stable checkpoint."""
        executed = self._log(app.executed, replica.last_executed)
        return replica.view, replica.view_active, executed, replica.stable_checkpoint

    def _probe_wrong_messages(
        self, replica: int, state: sp.State
    ) -> tuple[str, tuple[FieldDiff, ...]] | None:
        """On copies, ``replica`` hears one wrong message each: a mutant of a valid message
        (``adversaries.messages``) or a Byzantine message whose certificate proves what the spec
        does not hold (``_forged_certificates``). An invalidly signed one must change nothing; a
        validly signed one may cause only what the spec lets a step of that replica (its CatchUp
        included), or any one spec step, cause; a VIEW-CHANGE comes with the honest ones it may
        complete a quorum with (``_quorum_context``). Samples of ``WRONG_MESSAGES_PER_PROBE`` and
        ``FORGED_CERTIFICATES_PER_PROBE``, rotating through the candidates as the behaviour grows."""
        mutated = [
            mutant
            for message in self._wrong_message_sources(replica, state)
            for mutant in self._mutants(message)
        ]
        offset = sum(map(len, self.received.values()))
        chosen = [
            *_rotating_sample(mutated, WRONG_MESSAGES_PER_PROBE, offset),
            *_rotating_sample(
                self._forged_certificates(replica, state), FORGED_CERTIFICATES_PER_PROBE, offset
            ),
        ]
        for mutant in chosen:
            fork = self.fork()
            context = self._quorum_context(replica, mutant.message) if mutant.validly_signed else []
            fork._deliver(replica, [*context, mutant.message])
            reached = fork.abstract()
            if reached == state:
                continue
            if mutant.validly_signed and (
                reached in self._reachable_alone(state, replica, catch_up=True)
                or reached in self._successors(state)
            ):
                continue
            kind = type(mutant.message).__name__
            signed = "validly signed" if mutant.validly_signed else "invalidly signed"
            what = f"replica {replica} heard a wrong {kind} ({mutant.operator}, {signed})"
            return what + ": the spec lets it reach no such state", state_diff(self.model, state, reached)
        return None

    def _quorum_context(self, replica: int, message: ReplicaMessage) -> list[ReplicaMessage]:
        """What a validly signed wrong VIEW-CHANGE is heard with by a replica in the view change to its
        view: the honest VIEW-CHANGEs for that view it has not heard yet (the bridge delivers them
        only when a spec step needs them), so that it completes a quorum where it can. (Heard by a
        replica still in an earlier view, they could make it join the view change: not a step of the
        safety spec.)"""
        live = self.replicas[replica]
        if not isinstance(message, ViewChange) or (live.view, live.view_active) != (message.new_view, False):
            return []
        heard = self.received[replica]
        others = (i for i in self.spec.honest if i != replica)
        return [vc for i in others for vc in self._sent_for(i, message.new_view) if vc not in heard]

    def _successors(self, state: sp.State) -> set[sp.State]:
        if self._one_step is None:
            self._one_step = {
                successor for action in self.model.actions for _, successor in action.step(state)
            }
        return self._one_step

    def _mutants(self, message: ReplicaMessage) -> list[Mutant]:
        """``message``'s mutants within the model's bounds, made once (shared by forks)."""
        made = self._mutated.get(message)
        if made is None:
            every = mutants(message, self.config.replicas, self._resigner(message))
            made = self._mutated[message] = [m for m in every if self._within_bounds(m.message)]
        return made

    def _within_bounds(self, message: ReplicaMessage) -> bool:
        """Whether the model can express what ``message`` names: a view or sequence number beyond
        the model's bounds (``max_view``, ``max_seq``) is out of its scope, not a judgement."""
        view = getattr(message, "view", getattr(message, "new_view", 0))
        return view <= self.config.max_view and getattr(message, "seq", 0) <= self.config.max_seq

    def _wrong_message_sources(self, replica: int, state: sp.State) -> list[ReplicaMessage]:
        """Valid messages to start from: those of the replica's view, every VIEW-CHANGE and NEW-VIEW
        honest replicas sent, and each of those VIEW-CHANGEs as a Byzantine replica would replay it."""
        sources = self._available(replica, state)
        for sender in self.spec.honest:
            sources += [m for m in self.sent[sender] if isinstance(m, ViewChange | NewView)]
            for vc in _of_type(self.sent[sender], ViewChange):
                sources += [self._sign(replace(vc, replica=b, signature=b"")) for b in self.spec.byzantine]
        return sources

    def _resigner(self, message: ReplicaMessage) -> Callable[[Any], Any] | None:
        sender = getattr(message, "replica", None)
        return self.keys.sign_as_sender if sender in self.spec.byzantine else None

    def fork(self) -> PbftBridge:
        """An independent copy of the implementation (replicas, applications, network) as it is now.

        Copy-on-write: afterwards both bridges share every replica, its application and its sent
        messages until a stimulus touches that replica (``_live``); messages are immutable and
        always shared. A fork costs a few dict copies, a step one clone of the replica it steps."""
        fork = copy(self)
        for bridge in (self, fork):
            bridge.replicas, bridge.apps = dict(self.replicas), dict(self.apps)
            bridge.sent, bridge.received = dict(self.sent), dict(self.received)
            bridge._logged, bridge._abstracted = dict(self._logged), dict(self._abstracted)
            bridge.stores, bridge.replied = dict(self.stores), dict(self.replied)
            bridge._owned = set()
        return fork

    def _live(self, replica: int) -> Replica:
        """``replica``, owned by this bridge from now on (copied if shared with a fork), to step it."""
        if replica not in self._owned:
            # what the replica holds of the outside world is shared, not copied: its
            # configuration and keys (and every message: frozen, so immutable)
            self.replicas[replica], self.apps[replica] = clone(
                (self.replicas[replica], self.apps[replica]), self._keep
            )
            self.sent[replica] = list(self.sent[replica])
            self.received[replica] = list(self.received[replica])
            self._logged[replica] = set(self._logged[replica])
            self.stores[replica] = list(self.stores[replica])
            self.replied[replica] = list(self.replied[replica])
            self._owned.add(replica)
        return self.replicas[replica]

    def _available(self, replica: int, state: sp.State) -> list[ReplicaMessage]:
        view = self.replicas[replica].view
        honest_entries = {
            e
            for i in self.spec.honest
            for e in state.replicas[i].prepares | state.replicas[i].commits
            if e[0] == view
        }
        messages: list[ReplicaMessage] = []
        for i in range(self.config.replicas):
            if i != replica and i in self.spec.honest:
                messages += [
                    m for m in self.sent[i] if isinstance(m, PrePrepare | Prepare | Commit) and m.view == view
                ]
                messages += [m for m in self.sent[i] if isinstance(m, Checkpoint)]
        primary = self.spec.primary(view)
        for entry in sorted(honest_entries):
            if self.spec.byzantine_primary(view):
                messages.append(self._pre_prepare_for(*entry))
            backups = [b for b in self.spec.byzantine if b != primary]
            messages += self._votes(Prepare, entry, backups)
            messages += self._votes(Commit, entry, self.spec.byzantine)
        for seq, digest in sorted(self._snapshots):
            messages += [self._sign(Checkpoint(seq, digest, b)) for b in self.spec.byzantine]
        return messages

    def _reachable_alone(self, state: sp.State, replica: int, catch_up: bool = False) -> set[sp.State]:
        """States the spec reaches from ``state`` by steps of ``replica`` alone in its current view
        (and the spec's CatchUp, where the replica fetches what others executed, if ``catch_up``)."""
        key = (replica, catch_up)
        if key in self._reach:
            return self._reach[key]
        own = {"PrePrepare", "Prepare", "Commit", "Execute", "StableCheckpoint"}
        steps = [action.step for action in self.model.actions if action.name in own]
        if catch_up:
            steps.append(self.spec.catch_up)
        seen = {state}
        frontier = [state]
        while frontier:
            current = frontier.pop()
            for step in steps:
                for values, successor in step(current):
                    if values[0] == replica and successor not in seen:
                        seen.add(successor)
                        frontier.append(successor)
        self._reach[key] = seen
        return seen

    def stimulate(self, label: Label, state: sp.State) -> tuple[FieldDiff, ...]:
        stimulus = _STIMULI.get(label.action)
        if stimulus is None:
            raise Unrealizable(f"the PBFT bridge has no stimulus for action {label.action}")
        self._last_step, self._stepping = [], True
        try:
            stimulus(self, dict(label.args), state)
        finally:
            self._stepping = False
        return ()

    def abstract(self) -> sp.State:
        """Each honest replica's state and sent messages; the spec drops messages no step can read any
        more (``Pbft.collect``), and so does the abstraction (collecting from scratch: relative to the
        initial state, where nothing is collectable)."""
        records = [
            self._abstract_replica(i) if i in self.replicas else None for i in range(self.config.replicas)
        ]
        initial = self._initial
        assert initial is not None
        raw = initial._replace(
            replicas=tuple(self._blank if r is None else r[0] for r in records),
            new_views=frozenset().union(*(r[1] for r in records if r is not None)),
            decided=self._decided([r[0].commits for r in records if r is not None]),
        )
        return self.spec.collect(raw, initial)

    def _abstract_replica(self, i: int) -> tuple[sp.Replica, frozenset[sp.NewView]]:
        """Honest replica ``i``'s record and the NEW-VIEWs it sent, kept until it steps again."""
        cached = self._abstracted.get(i)
        if cached is not None:
            return cached
        replica, sent = self.replicas[i], self.sent[i]
        proposals = {self._entry(pp) for pp in _of_type(sent, PrePrepare)} | self._logged[i]
        record = self._blank._replace(
            view=replica.view,
            changing=not replica.view_active,
            executed=self._executed(i),
            stable=replica.stable_checkpoint,
            proposals=frozenset(proposals),
            prepares=frozenset(self._entry(p) for p in _of_type(sent, Prepare)),
            commits=frozenset(self._entry(c) for c in _of_type(sent, Commit)),
            view_changes=frozenset(self._abstract_view_change(vc) for vc in _of_type(sent, ViewChange)),
        )
        new_views = frozenset(self._abstract_new_view(nv) for nv in _of_type(sent, NewView))
        self._abstracted[i] = (record, new_views)
        return record, new_views

    def _decided(self, commits: Iterable[frozenset[Entry]]) -> frozenset[tuple[int, int]]:
        """(seq, request) for which COMMITs from a commit quorum exist (Byzantine replicas always vote):
        where an honest replica is, or can become, committed-local, by the implementation's quorum.
        ``commits``: the entries each honest replica sent a COMMIT for."""
        senders: dict[tuple[int, int, int], int] = {}
        for entries in commits:
            for entry in entries:
                senders[entry] = senders.get(entry, 0) + 1
        quorum = commit_quorum(self.config.replicas, max_faulty(self.config.replicas))
        return frozenset(
            (seq, request)
            for (_, seq, request), count in senders.items()
            if count + len(self.spec.byzantine) >= quorum
        )

    # ------------------------------------------------------------------ abstraction helpers

    @property
    def _blank(self) -> sp.Replica:
        """A replica record as the spec starts it (Byzantine replicas keep it; fields the
        implementation has no counterpart for keep their initial values)."""
        assert self._initial is not None
        return self._initial.replicas[0]

    def _id(self, digest: bytes) -> int:
        return self.request_ids.get(digest, self.spec.forged)

    def _entry(self, message: PrePrepare | Prepare | Commit) -> Entry:
        return (message.view, message.seq, self._id(message.digest))

    def _executed(self, replica: int) -> sp.Ops:
        return self._log(self.apps[replica].executed, self.replicas[replica].last_executed)

    def _log(self, executed: Sequence[tuple[str, bytes, int]], length: int) -> sp.Ops:
        """The spec's executed log of an application that ran ``executed`` ((client, operation,
        height), in order) up to ``length``: at each sequence number the request whose whole batch
        ran there, NULL where nothing ran (empty batches, repeats), and a request no client sent
        where anything else ran (part of a batch, a request again, heights out of order)."""
        ran: dict[int, list[tuple[str, bytes]]] = {}
        disordered: set[int] = set()
        for client, operation, height in executed:
            if ran and height < max(ran):
                disordered.add(height)
            ran.setdefault(height, []).append((client, operation))
        ops = [sp.NULL] * length
        for height, batch in ran.items():
            request = self.executions.get(tuple(batch), self.spec.forged)
            ops[height - 1] = self.spec.forged if height in disordered else request
        return tuple(ops)

    def _state_of(self, seq: int, digest: bytes) -> sp.Ops:
        """The executed log a checkpoint certifies, from the snapshot the bridge saw taken."""
        if seq == 0:
            return ()
        snapshot = self._snapshots.get((seq, digest))
        if snapshot is None:
            return (self.spec.forged,) * seq  # certifies a state no honest replica had
        ops = self._certified.get((seq, snapshot))
        if ops is None:
            ops = self._certified[(seq, snapshot)] = self._decode_state(seq, snapshot)
        return ops

    def _decode_state(self, seq: int, snapshot: bytes) -> sp.Ops:
        app = RecordingApp()
        app.restore(codec.decode(snapshot, ServiceState).app_state)
        return self._log(app.executed, seq)

    def _abstract_view_change(self, vc: ViewChange) -> sp.ViewChange:
        digest = vc.checkpoint_proof[0].state_digest if vc.checkpoint_proof else b""
        return sp.ViewChange(
            view=vc.new_view,
            stable=vc.stable_seq,
            stable_state=self._state_of(vc.stable_seq, digest),
            prepared=frozenset(
                (c.pre_prepare.seq, self._id(c.pre_prepare.digest), c.pre_prepare.view) for c in vc.prepared
            ),
        )

    def _abstract_new_view(self, nv: NewView) -> sp.NewView:
        plan = plan_new_view(nv.view_changes)
        digest = plan.min_seq_proof[0].state_digest if plan.min_seq_proof else b""
        return sp.NewView(
            view=nv.view,
            proposals=tuple((pp.seq, self._id(pp.digest)) for pp in nv.pre_prepares),
            stable=plan.min_seq,
            stable_state=self._state_of(plan.min_seq, digest),
        )

    # ------------------------------------------------------------------ the network

    def _run(self, replica: int, effects: Iterable[Effect]) -> None:
        """Keep what ``replica`` sent, and the snapshot behind every checkpoint it took.

        A message of another sender that it forwards (a NEW-VIEW resent to a replica still asking
        for that view) is not a step of its own: the spec has that message already, sent by its
        signer, so forwarding it is a stutter and is not recorded as the forwarder's.

        Also kept: its durable log (``stores``), its replies, and, while a stimulus runs, the
        effects with what preceded them (``_probe_write_ahead``)."""
        self._abstracted.pop(replica, None)
        effects = list(effects)
        if self._stepping:
            sent_before = (*self.sent[replica], *self.replied[replica])
            self._last_step.append((replica, tuple(self.stores[replica]), sent_before, effects))
        for effect in effects:
            if isinstance(effect, Persist):
                self.stores[replica].append(effect.record)
            elif isinstance(effect, CompactLog):
                self.stores[replica] = list(effect.records)
            elif isinstance(effect, ReplyToClient):
                self._record_reply(replica, effect.reply)
            if not isinstance(effect, Broadcast | SendTo) or isinstance(effect.message, Request):
                continue
            if getattr(effect.message, "replica", replica) != replica:
                continue
            self.sent[replica].append(effect.message)
            if isinstance(effect.message, Checkpoint):
                self._record_snapshot(replica, effect.message)
            elif isinstance(effect.message, NewView):
                self._log_proposals(replica, effect.message)

    def _record_reply(self, replica: int, reply: Reply) -> None:
        self.replied[replica].append(reply)
        key = (reply.client, reply.timestamp)
        self.results = {**self.results, key: self.results.get(key, frozenset()) | {reply.result}}

    def _log_proposals(self, replica: int, new_view: NewView) -> None:
        """The PRE-PREPAREs of O the new primary logged: those within its watermarks once it installed
        the view, from the later of its own stable checkpoint and V's (O may start below the first;
        the second it adopts, fetching the state if it has not executed that far, and then accepts
        the O entries above its old high watermark too)."""
        low = max(self.replicas[replica].low_watermark, plan_new_view(new_view.view_changes).min_seq)
        self._logged[replica] |= {
            self._entry(pp)
            for pp in new_view.pre_prepares
            if low < pp.seq <= low + self.impl_config.watermark_window
        }

    def _record_snapshot(self, replica: int, checkpoint: Checkpoint) -> None:
        live = self.replicas[replica]
        if live.last_executed == checkpoint.seq:
            snapshot = codec.encode(live.service_state)
            if state_digest(snapshot) == checkpoint.state_digest:
                self._snapshots = {**self._snapshots, (checkpoint.seq, checkpoint.state_digest): snapshot}
                self._abstracted = {}  # view changes citing this checkpoint now certify its state

    def _deliver(self, replica: int, messages: Iterable[ReplicaMessage]) -> None:
        for message in messages:
            self._run(replica, self._live(replica).deliver(message))
            self.received[replica].append(message)

    def _sign(self, message: M) -> M:
        """Sign as the message's sender: only ever called for Byzantine senders."""
        assert getattr(message, "replica", None) in self.spec.byzantine
        signed = self._signed.get(message)
        if signed is None:
            signed = self._signed[message] = self.keys.sign_as_sender(message)
        return cast(M, signed)

    def _sent_by(self, sender: int, kind: type[M]) -> Iterator[M]:
        yield from _of_type(self.sent[sender], kind)

    def _pre_prepares_of(self, view: int) -> Iterator[PrePrepare]:
        """PRE-PREPAREs the (honest) primary of ``view`` sent, directly or inside a NEW-VIEW's O."""
        primary = self.spec.primary(view)
        yield from (pp for pp in self._sent_by(primary, PrePrepare) if pp.view == view)
        for nv in self._sent_by(primary, NewView):
            yield from (pp for pp in nv.pre_prepares if pp.view == view)

    def _pre_prepare_for(self, view: int, seq: int, request: int) -> PrePrepare:
        pp = self._offered_pre_prepare(view, seq, request)
        if pp is None:
            raise Unrealizable(
                f"primary {self.spec.primary(view)} sent no PRE-PREPARE({view}, {seq}, {request})"
            )
        return pp

    def _offered_pre_prepare(self, view: int, seq: int, request: int) -> PrePrepare | None:
        """The primary's PRE-PREPARE of ``request`` at (view, seq): signed anew by a Byzantine
        primary, as sent by an honest one (None if it sent none)."""
        digest = self.digests[request]
        if self.spec.byzantine_primary(view):
            batch = () if request == sp.NULL else self.requests[request]
            return self._sign(PrePrepare(view, seq, digest, batch, self.spec.primary(view)))
        return next((pp for pp in self._pre_prepares_of(view) if (pp.seq, pp.digest) == (seq, digest)), None)

    def _votes(self, kind: type[Vote], entry: Entry, voters: Iterable[int]) -> list[Vote]:
        """Matching votes, one per voter that has one: those honest ``voters`` really sent, and one
        signed by each Byzantine voter."""
        view, seq, request = entry
        digest = self.digests[request]
        votes: list[Vote] = []
        for voter in sorted(voters):
            if voter in self.spec.byzantine:
                votes.append(self._sign(kind(view, seq, digest, voter)))
            else:
                sent = (
                    m for m in self._sent_by(voter, kind) if (m.view, m.seq, m.digest) == (view, seq, digest)
                )
                votes.extend(islice(sent, 1))
        return votes

    # ------------------------------------------------------------------ forged certificates

    def _forged_certificates(self, replica: int, state: sp.State) -> list[Mutant]:
        """Byzantine messages whose certificates prove what the spec does not hold in ``state``,
        shaped by ``short_quorums`` from every vote the adversary can show (honest votes really sent,
        Byzantine ones signed anew): for ``replica``, a batch at its next sequence number that no
        honest replica executed (CatchUp), a checkpoint that is not stable (StateResponse, a
        VIEW-CHANGE's C), an entry that is not prepared (a VIEW-CHANGE's P, also with the primary's
        PREPARE counted), a NEW-VIEW's V; and a stable checkpoint's valid proof over another state."""
        if not self.spec.byzantine:
            return []
        live = self.replicas[replica]
        forged = [*self._forged_catch_ups(live, state), *self._forged_state_responses(live)]
        view = live.view + live.view_active
        if view <= self.config.max_view:
            forged += self._forged_view_changes(view, state)
        forged += self._forged_new_views(live)
        return [Mutant(operator, message, validly_signed=True) for operator, message in forged]

    def _forged_catch_ups(self, live: Replica, state: sp.State) -> Iterator[tuple[str, ReplicaMessage]]:
        seq = live.last_executed + 1
        if seq > self.config.max_seq:
            return
        executed = {
            state.replicas[i].executed[seq - 1]
            for i in self.spec.honest
            if len(state.replicas[i].executed) >= seq
        }
        everyone = range(self.config.replicas)
        for view, request in product(self.spec.views, self.spec.requests):
            pp = self._offered_pre_prepare(view, seq, request)
            commits = self._votes(Commit, (view, seq, request), everyone)
            if request in executed or pp is None or len(commits) >= self.spec.quorum:
                continue
            for operator, shown in short_quorums(commits, self.spec.quorum):
                certificate = CommittedCertificate(pp, shown)
                yield (
                    f"{operator} in a CatchUp's certificate",
                    self._sign(CatchUp(certificate, self._byzantine)),
                )

    def _forged_state_responses(self, live: Replica) -> Iterator[tuple[str, ReplicaMessage]]:
        snapshots = {*self._snapshots.values(), self._genesis}
        for (seq, digest), snapshot in sorted(self._snapshots.items()):
            if seq <= live.last_executed:
                continue
            votes = self._checkpoint_votes(seq, digest)
            if len(votes) >= self.spec.quorum:
                proof = tuple(votes[: self.spec.quorum])
                for other in sorted(snapshots - {snapshot}):
                    response = StateResponse(StableSnapshot(seq, other, proof), self._byzantine)
                    yield "another state under a valid checkpoint certificate", self._sign(response)
                continue
            for operator, shown in short_quorums(votes, self.spec.quorum):
                response = StateResponse(StableSnapshot(seq, snapshot, shown), self._byzantine)
                yield f"{operator} in a StateResponse's checkpoint certificate", self._sign(response)

    def _forged_view_changes(self, view: int, state: sp.State) -> Iterator[tuple[str, ReplicaMessage]]:
        """VIEW-CHANGEs for ``view`` claiming the genesis checkpoint and one entry not prepared (within
        the watermarks that claim gives), or no entry and a checkpoint that is not stable."""
        sender, quorum = self._byzantine, self.spec.prepare_quorum
        for old, seq, request in product(range(view), self.spec.seqs, self.spec.requests):
            pp = self._offered_pre_prepare(old, seq, request)
            if seq > self.config.window or pp is None:
                continue
            if self.spec.has_prepared_certificate(state, (old, seq, request)):
                continue
            primary = self.spec.primary(old)
            backups = (j for j in range(self.config.replicas) if j != primary)
            prepares = self._votes(Prepare, (old, seq, request), backups)
            shapes = list(short_quorums(prepares, quorum))
            if primary in self.spec.byzantine:
                own = self._sign(Prepare(old, seq, pp.digest, primary))
                shapes.append(("the primary's PREPARE", (*prepares[: quorum - 1], own)))
            for operator, prepared in shapes:
                certificate = PreparedCertificate(pp, prepared)
                message = ViewChange(view, 0, (), (certificate,), sender)
                yield f"{operator} in a VIEW-CHANGE's prepared certificate", self._sign(message)
        for seq, digest in sorted(self._snapshots):
            votes = self._checkpoint_votes(seq, digest)
            if len(votes) < self.spec.quorum:
                for operator, proof in short_quorums(votes, self.spec.quorum):
                    message = ViewChange(view, seq, proof, (), sender)
                    yield f"{operator} in a VIEW-CHANGE's checkpoint certificate", self._sign(message)

    def _forged_new_views(self, live: Replica) -> Iterator[tuple[str, ReplicaMessage]]:
        """NEW-VIEWs of a Byzantine primary for a view ``live`` can still enter, whose V holds the
        VIEW-CHANGEs honest replicas sent for it and a valid Byzantine one (genesis checkpoint, empty
        P), one short of a quorum or with one repeated, or a quorum in which the honest replicas'
        VIEW-CHANGEs are those they sent for an earlier view; O is what that V determines."""
        for view in range(max(live.view, 1), self.config.max_view + 1):
            if (view == live.view and live.view_active) or not self.spec.byzantine_primary(view):
                continue
            own = [self._sign(ViewChange(view, 0, (), (), b)) for b in self.spec.byzantine]
            current = [vc for i in self.spec.honest for vc in islice(self._sent_for(i, view), 1)]
            shapes = list(short_quorums(current + own, self.spec.quorum))
            stale_first = [
                next(chain(self._sent_before(i, view), self._sent_for(i, view)), None)
                for i in self.spec.honest
            ]
            mixed = tuple(vc for vc in stale_first if vc is not None)[: self.spec.quorum - len(own)]
            if any(vc.new_view < view for vc in mixed):
                shapes.append(("VIEW-CHANGEs of an earlier view", (*mixed, *own)))
            for operator, shown in shapes:
                yield f"{operator} in a NEW-VIEW's V", self._new_view_from(view, shown)

    def _new_view_from(self, view: int, changes: tuple[ViewChange, ...]) -> NewView:
        """The NEW-VIEW a Byzantine primary of ``view`` signs for V = ``changes``, with their O."""
        primary = self.spec.primary(view)
        plan = plan_new_view(changes)
        o_set = tuple(self._sign(PrePrepare(view, s, d, batch, primary)) for s, d, batch in plan.proposals)
        return self._sign(NewView(view, changes, o_set, primary))

    def _sent_before(self, replica: int, view: int) -> Iterator[ViewChange]:
        """The honest ``replica``'s VIEW-CHANGEs for views below ``view``, latest first."""
        earlier = (vc for vc in self._sent_by(replica, ViewChange) if vc.new_view < view)
        return iter(sorted(earlier, key=lambda vc: -vc.new_view))

    def _sent_for(self, replica: int, view: int) -> Iterator[ViewChange]:
        return (vc for vc in self._sent_by(replica, ViewChange) if vc.new_view == view)

    @property
    def _byzantine(self) -> int:
        """The Byzantine replica that sends what the bridge forges."""
        return self.spec.byzantine[0]

    # ------------------------------------------------------------------ normal case

    def _pre_prepare(self, args: dict[str, Any], state: sp.State) -> None:
        primary = args["primary"]
        live = self._live(primary)
        for request in self.requests[args["request"]]:
            self._run(primary, live.submit(request))

    def _prepare(self, args: dict[str, Any], state: sp.State) -> None:
        replica = args["replica"]
        view = state.replicas[replica].view
        self._deliver(replica, [self._pre_prepare_for(view, args["seq"], args["request"])])

    def _commit(self, args: dict[str, Any], state: sp.State) -> None:
        replica = args["replica"]
        view = state.replicas[replica].view
        backups = [j for j in range(self.config.replicas) if j not in (replica, self.spec.primary(view))]
        self._deliver(replica, self._votes(Prepare, (view, args["seq"], args["request"]), backups))

    def _execute(self, args: dict[str, Any], state: sp.State) -> None:
        replica, request = args["replica"], args["request"]
        seq = len(state.replicas[replica].executed) + 1
        view = max(  # the latest view of the entry's COMMIT quorum, the replica's or one it has left
            v for i, (v, n, d) in self.spec.committed_local(state) if (i, n, d) == (replica, seq, request)
        )
        others = [j for j in range(self.config.replicas) if j != replica]
        self._deliver(replica, self._votes(Commit, (view, seq, request), others))

    # ------------------------------------------------------------------ checkpoints

    def _checkpoint_proof(self, seq: int, ops: sp.Ops) -> list[Checkpoint]:
        """Matching CHECKPOINTs for (seq, ops): those honest replicas sent, plus one per Byzantine replica."""
        digests = [d for n, d in self._snapshots if n == seq and self._state_of(seq, d) == ops]
        if not digests:
            raise Unrealizable(f"no honest replica took checkpoint {seq} with state {ops}")
        proof = self._checkpoint_votes(seq, digests[0])
        if len(proof) < self.spec.quorum:
            raise Unrealizable(
                f"only {len(proof)} CHECKPOINT({seq}) messages exist: the spec also counts checkpoints of "
                "replicas that fetched that state, which never send one"
            )
        return proof

    def _checkpoint_votes(self, seq: int, digest: bytes) -> list[Checkpoint]:
        """CHECKPOINT(seq, digest)s, one per replica that has one: those honest replicas sent, then one
        signed by each Byzantine replica."""
        votes: list[Checkpoint] = []
        for i in self.spec.honest:
            sent = (c for c in self._sent_by(i, Checkpoint) if (c.seq, c.state_digest) == (seq, digest))
            votes.extend(islice(sent, 1))
        return votes + [self._sign(Checkpoint(seq, digest, b)) for b in self.spec.byzantine]

    def _catch_up(self, replica: int, seq: int, ops: sp.Ops) -> None:
        """A replica behind a stable checkpoint fetches its state: a StateResponse with the snapshot and
        its certificate (what any replica holding it, a Byzantine one included, can serve)."""
        live = self.replicas[replica]
        if live.last_executed >= seq:
            return
        proof = tuple(sorted(self._checkpoint_proof(seq, ops), key=lambda c: c.replica))[: self.spec.quorum]
        snapshot = self._snapshots[(seq, proof[0].state_digest)]
        server = self.spec.byzantine[0] if self.spec.byzantine else None
        if server is None:
            raise Unrealizable(
                "no Byzantine replica to serve the state, and honest ones answer only requests"
            )
        response = self._sign(StateResponse(StableSnapshot(seq, snapshot, proof), server))
        self._deliver(replica, [response])

    def _stable_checkpoint(self, args: dict[str, Any], state: sp.State) -> None:
        replica, seq = args["replica"], args["seq"]
        candidates = sorted(st for n, st in self.spec.stable_checkpoints(state) if n == seq)
        own = state.replicas[replica].executed
        ops = next((st for st in candidates if len(own) < seq or own[:seq] == st), candidates[0])
        self._deliver(replica, [c for c in self._checkpoint_proof(seq, ops) if c.replica != replica])
        self._catch_up(replica, seq, ops)

    # ------------------------------------------------------------------ view change

    def _start_view_change(self, args: dict[str, Any], state: sp.State) -> None:
        replica = self._live(args["replica"])
        for _ in range(2):  # during a view change the first expiry only re-sends the VIEW-CHANGE
            self._run(args["replica"], replica.fire(Timer(TimerKind.VIEW_CHANGE, replica.view)))
            if replica.view == args["view"]:
                return
        raise Unrealizable(
            "the implementation leaves a view change only after holding 2f+1 VIEW-CHANGEs for it; "
            "the spec's timer may move a replica on at any time"
        )

    def _byzantine_view_change(self, spec_vc: sp.ViewChange, sender: int) -> ViewChange:
        """A VIEW-CHANGE a Byzantine replica signs, backed by messages honest replicas really sent."""
        proof: tuple[Checkpoint, ...] = ()
        if spec_vc.stable:
            proof = tuple(
                sorted(self._checkpoint_proof(spec_vc.stable, spec_vc.stable_state), key=lambda c: c.replica)
            )
            proof = proof[: self.spec.quorum]
        certificates = []
        for seq, request, view in sorted(spec_vc.prepared):
            pp = self._pre_prepare_for(view, seq, request)
            backups = [j for j in range(self.config.replicas) if j != self.spec.primary(view)]
            prepares = self._votes(Prepare, (view, seq, request), backups)
            certificates.append(PreparedCertificate(pp, tuple(prepares[: self.spec.prepare_quorum])))
        return self._sign(ViewChange(spec_vc.view, spec_vc.stable, proof, tuple(certificates), sender))

    def _view_change_set(
        self, state: sp.State, view: int, proposals: tuple[tuple[int, int], ...], own: int | None
    ) -> list[ViewChange]:
        """Real VIEW-CHANGE messages for ``view``, a quorum (with ``own``'s first if given), whose O is
        ``proposals``: honest ones as sent, Byzantine ones built from any option the spec allows."""
        options: dict[int, list[tuple[sp.ViewChange, ViewChange | None]]] = {}
        for i in self.spec.honest:
            sent = [vc for vc in self._sent_by(i, ViewChange) if vc.new_view == view]
            if sent:
                options[i] = [(self._abstract_view_change(vc), vc) for vc in sent]
        window = self.config.window
        valid = [  # honest replicas reject P entries outside the sender's watermarks (C&L 4.4)
            vc
            for vc in self.spec.byzantine_view_changes(state, view)
            if all(vc.stable < seq <= vc.stable + window for seq, _, _ in vc.prepared)
        ]
        for b in self.spec.byzantine:
            options[b] = [(vc, None) for vc in valid]
        for group in combinations(sorted(options), self.spec.quorum):
            if own is not None and own not in group:
                continue
            for chosen in product(*(options[j] for j in group)):
                if self.spec.compute_proposals([vc for vc, _ in chosen]).proposals != proposals:
                    continue
                messages = [
                    real if real is not None else self._byzantine_view_change(vc, sender)
                    for sender, (vc, real) in zip(group, chosen, strict=True)
                ]
                return messages
        raise Unrealizable(
            f"no quorum of valid VIEW-CHANGEs for view {view} yields O = {proposals}: the spec's Byzantine "
            "VIEW-CHANGEs may carry prepared certificates above their checkpoint's high watermark"
        )

    def _new_view(self, args: dict[str, Any], state: sp.State) -> None:
        primary = args["primary"]
        view = state.replicas[primary].view
        chosen = self._view_change_set(state, view, args["O"], own=primary)
        self._deliver(primary, [vc for vc in chosen if vc.replica != primary])
        sent = [nv for nv in self._sent_by(primary, NewView) if nv.view == view]
        if sent:
            self._adopt_new_view_checkpoint(primary, sent[-1])

    def _quiescent(self, args: dict[str, Any], state: sp.State) -> None:
        """The spec stutters once no protocol step is enabled: nothing happens."""
        del args, state

    def _accept_new_view(self, args: dict[str, Any], state: sp.State) -> None:
        replica, view, proposals = args["replica"], args["view"], args["O"]
        primary = self.spec.primary(view)
        if self.spec.byzantine_primary(view):
            chosen = self._view_change_set(state, view, proposals, own=None)
            plan = plan_new_view(chosen)
            o_set = tuple(
                self._sign(PrePrepare(view, s, d, batch, primary)) for s, d, batch in plan.proposals
            )
            message = self._sign(NewView(view, tuple(chosen), o_set, primary))
        else:
            sent = [nv for nv in self._sent_by(primary, NewView) if nv.view == view]
            matching = [nv for nv in sent if self._abstract_new_view(nv).proposals == proposals]
            if not matching:
                raise Unrealizable(f"primary {primary} sent no NEW-VIEW({view}) with O = {proposals}")
            message = matching[0]
        self._deliver(replica, [message])
        self._adopt_new_view_checkpoint(replica, message)

    def _adopt_new_view_checkpoint(self, replica: int, message: NewView) -> None:
        """Entering a view adopts V's latest stable checkpoint; a replica behind it fetches the state."""
        plan = plan_new_view(message.view_changes)
        if plan.min_seq:
            digest = plan.min_seq_proof[0].state_digest
            self._catch_up(replica, plan.min_seq, self._state_of(plan.min_seq, digest))


_STIMULI: Mapping[str, Callable[[PbftBridge, dict[str, Any], sp.State], None]] = {
    action: getattr(PbftBridge, row.stimulus.removeprefix("PbftBridge."))
    for action, row in actions.PBFT.items()
    if row.stimulus is not None
}
"""The stimulus of each spec action the bridge drives, as ``conformance.actions.PBFT`` names it."""


def _of_type(messages: Iterable[ReplicaMessage], kind: type[M]) -> Iterator[M]:
    return (m for m in messages if isinstance(m, kind))


def _rotating_sample(candidates: Sequence[Mutant], size: int, offset: int) -> list[Mutant]:
    """``size`` of ``candidates`` (all if there are no more), evenly spread around them from a
    start that moves with ``offset``, so that successive probes cover them all."""
    if len(candidates) <= size:
        return list(candidates)
    return [candidates[(offset + k * len(candidates) // size) % len(candidates)] for k in range(size)]


def _describe(message: Signed) -> str:
    if isinstance(message, Reply):
        return f"its REPLY to {message.client} (timestamp {message.timestamp})"
    view, seq, _ = message_identity(message)
    return f"its {type(message).__name__} (view {view}, seq {seq})"
