"""A complete PBFT replica (Castro and Liskov, OSDI'99, section 4) as a sans-IO state machine.

One call is one protocol step: ``handle`` takes one input (a received message,
a fired timer or a client request) and returns the effects to perform. There
are no sockets, threads, clocks or randomness here; the same object runs
under the asyncio runtime, the deterministic simulator and conformance tests.

Durability: every protocol message the replica accepts or sends is emitted
as a ``Persist`` record, in order, and the log is compacted to a
``StableSnapshot`` plus the still-relevant messages at each stable
checkpoint. Because the replica is deterministic, ``recover`` rebuilds the
state by replaying those records through the normal handlers with outputs
suppressed; committed requests are therefore never lost, and a restarted
replica re-sends nothing that contradicts what it sent before.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

from pot_impl import codec
from pot_impl.auth import Signer, Verifier, replica_principal, sign_message, verify_message
from pot_impl.pbft.app import Application
from pot_impl.pbft.certificates import (
    checkpoint_proof_digest,
    plan_new_view,
    state_digest,
    valid_committed_certificate,
    valid_new_view,
    valid_pre_prepare_body,
    valid_view_change,
)
from pot_impl.pbft.config import ReplicaConfig
from pot_impl.pbft.io import (
    Broadcast,
    CancelTimer,
    ClientRequestReceived,
    CompactLog,
    DurableRecord,
    Effect,
    Emit,
    EventKind,
    Input,
    MessageReceived,
    Persist,
    ProtocolEvent,
    ReplyToClient,
    SendTo,
    SetTimer,
    Timer,
    TimerFired,
    TimerKind,
)
from pot_impl.pbft.messages import (
    CatchUp,
    Checkpoint,
    ClientRecord,
    Commit,
    CommittedCertificate,
    Fetch,
    Message,
    NewView,
    Prepare,
    PreparedCertificate,
    PrePrepare,
    ReplicaMessage,
    Reply,
    Request,
    ServiceState,
    StableSnapshot,
    StateRequest,
    StateResponse,
    ViewChange,
)
from pot_impl.pbft.quorums import (
    checkpoint_quorum,
    commit_quorum,
    prepare_quorum,
    view_change_join,
    view_change_quorum,
)

M = TypeVar("M", bound=ReplicaMessage | Reply)

MAX_TIMEOUT_DOUBLINGS = 16
"""Caps the exponential view-change timeout (2^16 times the base)."""
FUTURE_BUFFER_PER_SENDER = 256
"""Messages for a view not yet installed, kept per sender and replayed once it is."""


@dataclass
class _Slot:
    """Agreement state of one (view, seq): the pre-prepare and the votes per digest, one per sender."""

    pre_prepare: PrePrepare | None = None
    prepares: dict[bytes, dict[int, Prepare]] = field(default_factory=dict)
    commits: dict[bytes, dict[int, Commit]] = field(default_factory=dict)
    prepared: bool = False
    committed: bool = False


@dataclass(frozen=True)
class LogEntry:
    """Read-only view of one sequence number in the current view, for inspection and conformance."""

    seq: int
    view: int
    digest: bytes
    batch: tuple[Request, ...]
    pre_prepared: bool
    prepared: bool
    committed: bool
    executed: bool
    prepare_senders: frozenset[int]
    commit_senders: frozenset[int]


class Replica:
    """Replica ``replica_id`` of a cluster of ``config.n``."""

    def __init__(
        self,
        replica_id: int,
        config: ReplicaConfig,
        signer: Signer,
        verifier: Verifier,
        app: Application,
    ) -> None:
        if not 0 <= replica_id < config.n:
            raise ValueError(f"replica id {replica_id} outside 0..{config.n - 1}")
        if signer.principal != replica_principal(replica_id):
            raise ValueError(f"signer is {signer.principal}, not {replica_principal(replica_id)}")
        self.id = replica_id
        self.config = config
        self.f = config.f
        self._signer = signer
        self._verifier = verifier
        self._app = app

        self._view = 0
        self._view_active = True
        self._slots: dict[tuple[int, int], _Slot] = {}
        self._prepared_certificates: dict[int, PreparedCertificate] = {}
        self._committed: dict[int, CommittedCertificate] = {}
        self._fetched: set[int] = set()
        self._last_executed = 0
        self._next_seq = 1
        self._clients: dict[str, ClientRecord] = {}
        self._pending: dict[tuple[str, int], Request] = {}
        self._pending_bytes: dict[tuple[str, int], int] = {}
        self._pending_total = 0
        self._proposed: set[tuple[str, int]] = set()

        self._stable_seq = 0
        self._stable_proof: tuple[Checkpoint, ...] = ()
        self._stable_snapshot = self._encode_service_state()
        self._own_checkpoints: dict[int, bytes] = {0: self._stable_snapshot}
        self._checkpoint_votes: dict[int, dict[int, Checkpoint]] = {}
        self._transfer_target: tuple[int, bytes] | None = None

        self._view_changes: dict[int, dict[int, ViewChange]] = {}
        self._own_view_changes: dict[int, ViewChange] = {}
        self._new_views: dict[int, NewView] = {}
        self._view_change_streak = 0
        self._future: dict[int, list[ReplicaMessage]] = {}

        self._view_change_timer_armed = False
        self._view_change_resent = False
        self._executing = False

        self._durable: list[Effect] = []
        self._effects: list[Effect] = []
        self._replaying = False

    # ------------------------------------------------------------ inspection

    @property
    def view(self) -> int:
        """The current view (the target view while a view change is in progress)."""
        return self._view

    @property
    def view_active(self) -> bool:
        """False between sending a view-change and installing the matching new-view."""
        return self._view_active

    @property
    def primary(self) -> int:
        return self.config.primary(self._view)

    @property
    def is_primary(self) -> bool:
        return self.primary == self.id

    @property
    def last_executed(self) -> int:
        """Highest sequence number executed; every lower one was executed, in order."""
        return self._last_executed

    @property
    def stable_checkpoint(self) -> int:
        """Sequence number of the last stable checkpoint: the low watermark h."""
        return self._stable_seq

    @property
    def stable_proof(self) -> tuple[Checkpoint, ...]:
        """The 2f+1 checkpoint messages that made the stable checkpoint stable (empty at genesis)."""
        return self._stable_proof

    @property
    def stable_snapshot(self) -> StableSnapshot:
        """The stable checkpoint with its state and proof (what state transfer serves)."""
        return StableSnapshot(self._stable_seq, self._stable_snapshot, self._stable_proof)

    @property
    def low_watermark(self) -> int:
        return self._stable_seq

    @property
    def high_watermark(self) -> int:
        return self._stable_seq + self.config.watermark_window

    @property
    def log(self) -> Mapping[int, LogEntry]:
        """Entries of the current view above the low watermark, plus committed entries not yet executed."""
        entries: dict[int, LogEntry] = {}
        for (view, seq), slot in self._slots.items():
            if view != self._view or slot.pre_prepare is None:
                continue
            pp = slot.pre_prepare
            entries[seq] = LogEntry(
                seq=seq,
                view=view,
                digest=pp.digest,
                batch=pp.batch,
                pre_prepared=True,
                prepared=slot.prepared,
                committed=slot.committed,
                executed=seq <= self._last_executed,
                prepare_senders=frozenset(slot.prepares.get(pp.digest, {})),
                commit_senders=frozenset(slot.commits.get(pp.digest, {})),
            )
        return dict(sorted(entries.items()))

    @property
    def committed(self) -> Mapping[int, PrePrepare]:
        """Committed-local batches above the low watermark, by sequence number (any view)."""
        return {seq: certificate.pre_prepare for seq, certificate in self._committed.items()}

    @property
    def prepared_certificates(self) -> Mapping[int, PreparedCertificate]:
        """Per sequence number, the prepared certificate from the highest view (what P would hold)."""
        return dict(self._prepared_certificates)

    @property
    def checkpoint_votes(self) -> Mapping[int, Mapping[int, bytes]]:
        """Checkpoint digests received above the stable checkpoint: seq -> sender -> digest."""
        return {
            seq: {sender: c.state_digest for sender, c in votes.items()}
            for seq, votes in self._checkpoint_votes.items()
        }

    @property
    def own_checkpoints(self) -> Mapping[int, bytes]:
        """Digests of this replica's own state at each checkpoint not yet garbage-collected."""
        return {seq: state_digest(snapshot) for seq, snapshot in self._own_checkpoints.items()}

    @property
    def view_change_senders(self) -> Mapping[int, frozenset[int]]:
        """Valid view-changes held, per target view."""
        return {v: frozenset(vcs) for v, vcs in self._view_changes.items()}

    @property
    def view_change_streak(self) -> int:
        """Consecutive view changes without executing a request (the timeout is doubled this often)."""
        return self._view_change_streak

    @property
    def clients(self) -> Mapping[str, ClientRecord]:
        """Last executed timestamp and result per client."""
        return dict(self._clients)

    @property
    def pending_requests(self) -> tuple[Request, ...]:
        """Requests received but not yet executed."""
        return tuple(self._pending.values())

    @property
    def service_state(self) -> ServiceState:
        """The state the next checkpoint would certify (application snapshot plus client table)."""
        return codec.decode_unlimited(self._encode_service_state(), ServiceState)

    # ------------------------------------------------------------ stepping

    def handle(self, event: Input) -> list[Effect]:
        """Process one input; return the effects to perform (durable ones first)."""
        if isinstance(event, MessageReceived):
            self._on_message(event.message)
        elif isinstance(event, TimerFired):
            self._on_timer(event.timer)
        else:
            self._on_client_request(event.request, direct=True)
        return self._drain()

    def deliver(self, message: Message) -> list[Effect]:
        """Shorthand for ``handle(MessageReceived(message))``."""
        return self.handle(MessageReceived(message))

    def fire(self, timer: Timer) -> list[Effect]:
        """Shorthand for ``handle(TimerFired(timer))``."""
        return self.handle(TimerFired(timer))

    def submit(self, request: Request) -> list[Effect]:
        """Shorthand for ``handle(ClientRequestReceived(request))``."""
        return self.handle(ClientRequestReceived(request))

    def recover(self, records: Sequence[DurableRecord]) -> list[Effect]:
        """Rebuild state on a freshly constructed replica from its durable records, in stored order.

        Returns the effects that resume operation: timers re-armed, and the current
        view-change re-sent if one was in progress.
        """
        if self._last_executed or self._view or self._slots:
            raise RuntimeError("recover() needs a freshly constructed replica")
        self._replaying = True
        try:
            for record in records:
                if isinstance(record, StableSnapshot):
                    self._install_snapshot(record)
                elif isinstance(record, PreparedCertificate):
                    self._restore_prepared_certificate(record)
                elif isinstance(record, CommittedCertificate):
                    self._restore_committed(record)
                else:
                    self._on_message(record)
        finally:
            self._replaying = False
            self._durable.clear()
            self._effects.clear()
        self._event(EventKind.RECOVERED, seq=self._last_executed)
        self._view_change_timer_armed = False
        if not self._view_active:
            own = self._view_changes.get(self._view, {}).get(self.id)
            if own is not None:
                self._broadcast(own)
            self._after_view_change_vote(self._view)
        self._join_higher_view_change()
        self._arm_view_change_timer()
        if self._transfer_target is not None:
            self._set_timer(Timer(TimerKind.STATE_TRANSFER, 0), self.config.state_transfer_timeout_ms)
        if self.is_primary and self._view_active:
            self._propose_batches(flush=True)
        return self._drain()

    def _restore_prepared_certificate(self, certificate: PreparedCertificate) -> None:
        """Keep a P-set entry across a restart (it may come from a view whose messages were compacted)."""
        seq = certificate.pre_prepare.seq
        current = self._prepared_certificates.get(seq)
        if seq <= self._stable_seq:
            return
        if current is None or current.pre_prepare.view < certificate.pre_prepare.view:
            self._prepared_certificates[seq] = certificate

    def _restore_committed(self, certificate: CommittedCertificate) -> None:
        """Re-commit a batch across a restart (its view's messages may have been compacted away);
        executing it again from the stable snapshot restores the executed state."""
        seq = certificate.pre_prepare.seq
        if seq > self._stable_seq and seq not in self._committed:
            self._committed[seq] = certificate
            self._execute_ready()

    def _drain(self) -> list[Effect]:
        effects = self._durable + self._effects
        self._durable, self._effects = [], []
        return effects

    # ------------------------------------------------------------ effect helpers

    def _event(
        self,
        kind: EventKind,
        seq: int = -1,
        digest: bytes = b"",
        peer: int = -1,
        message: str = "",
        reason: str = "",
        view: int | None = None,
    ) -> None:
        """Emit a protocol event, stamped with the current view unless it concerns another one."""
        if not self._replaying:
            stamped = self._view if view is None else view
            event = ProtocolEvent(kind, self.id, stamped, seq, digest, peer, message, reason)
            self._effects.append(Emit(event))

    def _reject(self, message: Message, reason: str) -> None:
        sender = getattr(message, "replica", -1)
        self._event(EventKind.REJECTED, peer=sender, message=type(message).__name__, reason=reason)

    def _persist(self, record: DurableRecord) -> None:
        if not self._replaying:
            self._durable.append(Persist(record))

    def _sign(self, message: M) -> M:
        return sign_message(self._signer, message)

    def _message_event(self, kind: EventKind, message: ReplicaMessage | Request, peer: int) -> None:
        """A ``received``/``sent`` event that names its message by type, sender, view, seq and digest."""
        if not self._replaying:
            view, seq, digest = message_identity(message)
            sender = -1 if isinstance(message, Request) else message.replica
            name = type(message).__name__
            event = ProtocolEvent(kind, self.id, self._view, seq, digest, peer, name, "", view, sender)
            self._effects.append(Emit(event))

    def _broadcast(self, message: ReplicaMessage | Request) -> None:
        if not self._replaying:
            self._effects.append(Broadcast(message))
            self._message_event(EventKind.SENT, message, peer=-1)

    def _send(self, replica: int, message: ReplicaMessage | Request) -> None:
        if not self._replaying:
            self._effects.append(SendTo(replica, message))
            self._message_event(EventKind.SENT, message, peer=replica)

    def _set_timer(self, timer: Timer, delay_ms: int) -> None:
        if not self._replaying:
            self._effects.append(SetTimer(timer, delay_ms))

    def _cancel_timer(self, timer: Timer) -> None:
        if not self._replaying:
            self._effects.append(CancelTimer(timer))

    def _in_window(self, seq: int) -> bool:
        return self.low_watermark < seq <= self.high_watermark

    def _slot(self, view: int, seq: int) -> _Slot:
        return self._slots.setdefault((view, seq), _Slot())

    # ------------------------------------------------------------ dispatch

    def _on_message(self, message: Message) -> None:
        if isinstance(message, Request):
            self._on_client_request(message, direct=False)
            return
        if isinstance(message, Reply):
            self._reject(message, "replies are for clients")
            return
        if not 0 <= message.replica < self.config.n:
            self._reject(message, "unknown replica")
            return
        if not verify_message(self._verifier, message):
            self._reject(message, "bad signature")
            return
        self._message_event(EventKind.RECEIVED, message, peer=message.replica)
        if isinstance(message, PrePrepare | Prepare | Commit):
            self._on_agreement_message(message)
        elif isinstance(message, Checkpoint):
            self._on_checkpoint(message)
        elif isinstance(message, ViewChange):
            self._on_view_change(message)
        elif isinstance(message, NewView):
            self._on_new_view(message)
        elif isinstance(message, StateRequest):
            self._on_state_request(message)
        elif isinstance(message, StateResponse):
            self._on_state_response(message)
        elif isinstance(message, Fetch):
            self._on_fetch(message)
        else:
            self._on_catch_up(message)

    def _on_agreement_message(self, message: PrePrepare | Prepare | Commit) -> None:
        if message.view > self._view or (message.view == self._view and not self._view_active):
            self._buffer_future(message)
            return
        if message.view < self._view and not self._completes_left_view_commit(message):
            self._reject(message, f"stale view {message.view} < {self._view}")
            return
        if not self._in_window(message.seq):
            window = f"({self.low_watermark}, {self.high_watermark}]"
            self._reject(message, f"seq {message.seq} outside watermarks {window}")
            return
        if isinstance(message, PrePrepare):
            self._on_pre_prepare(message)
        elif isinstance(message, Prepare):
            self._on_prepare(message)
        else:
            self._on_commit(message)

    def _completes_left_view_commit(self, message: PrePrepare | Prepare | Commit) -> bool:
        """A COMMIT of a view we left, for a batch we prepared (and committed to) there: counted.

        C&L 4.4 drop every agreement message of lower views, so a batch whose commit quorum
        formed just after we moved on waited for the next view to re-commit it. A quorum of
        signed COMMITs of one view proves the batch committed whenever it arrives (C&L's safety
        argument does not depend on when), so we complete it instead; the slot is kept for this
        when the view is left (``_install_new_view``)."""
        if not isinstance(message, Commit):
            return False
        slot = self._slots.get((message.view, message.seq))
        return slot is not None and slot.prepared and not slot.committed

    def _buffer_future(self, message: ReplicaMessage) -> None:
        """Keep a message for a view not installed yet; the network does not retransmit it."""
        queue = self._future.setdefault(message.replica, [])
        if len(queue) >= FUTURE_BUFFER_PER_SENDER:
            queue.pop(0)
        queue.append(message)

    def _replay_future(self) -> None:
        buffered, self._future = self._future, {}
        for queue in buffered.values():
            for message in queue:
                if isinstance(message, PrePrepare | Prepare | Commit) and message.view == self._view:
                    self._on_agreement_message(message)

    # ------------------------------------------------------------ client requests

    def _on_client_request(self, request: Request, direct: bool) -> None:
        size = codec.request_size(request)
        if size > self.config.max_request_bytes:
            limit = self.config.max_request_bytes
            self._reject(request, f"request of {size} bytes exceeds max_request_bytes ({limit})")
            return
        if not verify_message(self._verifier, request):
            self._reject(request, "bad client signature")
            return
        record = self._clients.get(request.client)
        if record is not None and request.timestamp <= record.timestamp:
            if request.timestamp == record.timestamp:
                self._reply(request.client, request.timestamp, record.result)
            return
        key = (request.client, request.timestamp)
        if key in self._pending:
            return
        if len(self._pending) >= self.config.max_pending_requests:
            self._reject(request, "too many pending requests")
            return
        if self._pending_total + size > self.config.max_pending_bytes:
            self._reject(request, "pending requests would exceed max_pending_bytes")
            return
        self._pending[key] = request
        self._pending_bytes[key] = size
        self._pending_total += size
        self._event(EventKind.REQUEST, message="Request")
        if self.is_primary and self._view_active:
            self._propose_batches(flush=False)
        elif direct and self._view_active:
            self._send(self.primary, request)
        self._arm_view_change_timer()

    def _already_executed(self, request: Request) -> bool:
        record = self._clients.get(request.client)
        return record is not None and request.timestamp <= record.timestamp

    def _reply(self, client: str, timestamp: int, result: bytes) -> None:
        if self._replaying:
            return
        reply = self._sign(Reply(self._view, timestamp, client, self.id, result))
        self._effects.append(ReplyToClient(client, reply))

    def _propose_batches(self, flush: bool) -> None:
        """Primary: order pending requests in batches of ``batch_size`` requests and at most
        ``max_batch_bytes``; a partial batch waits for the batch timer unless ``flush``. Not while a
        certified checkpoint we have not reached is pending (``_transfer_target``): our client table
        is stale, and we would re-order requests that checkpoint already executed. Reaching it
        (``_make_stable``) proposes again."""
        if self._transfer_target is not None:
            return
        while True:
            waiting = [key for key in self._pending if key not in self._proposed]
            if not waiting or self._next_seq > self.high_watermark:
                break
            batch = tuple(self._pending[key] for key in self._fill_batch(waiting))
            if len(batch) == len(waiting) < self.config.batch_size and not flush:
                self._set_timer(Timer(TimerKind.BATCH, self._view), self.config.batch_timeout_ms)
                break
            self._proposed.update((r.client, r.timestamp) for r in batch)
            seq = self._next_seq
            self._next_seq += 1
            pp = self._sign(PrePrepare(self._view, seq, codec.batch_digest(batch), batch, self.id))
            self._broadcast(pp)
            self._accept_pre_prepare(pp)

    def _fill_batch(self, waiting: list[tuple[str, int]]) -> list[tuple[str, int]]:
        """Up to ``batch_size`` of ``waiting``, in order, within ``max_batch_bytes``. A request too
        large for the room left is passed over for later ones that fit, so large requests do not
        hold small ones back; the oldest is always taken (it fits: every pending request is within
        ``max_request_bytes``), so none waits for ever."""
        chosen: list[tuple[str, int]] = []
        total = 0
        for key in waiting:
            size = self._pending_bytes[key]
            if total + size <= self.config.max_batch_bytes:
                chosen.append(key)
                total += size
                if len(chosen) == self.config.batch_size:
                    break
        return chosen

    # ------------------------------------------------------------ normal case

    def _on_pre_prepare(self, pp: PrePrepare) -> None:
        if not valid_pre_prepare_body(self.config, pp):
            self._reject(pp, "not from the primary or digest does not match the batch")
            return
        slot = self._slot(pp.view, pp.seq)
        if slot.pre_prepare is not None:
            if slot.pre_prepare.digest != pp.digest:
                self._reject(pp, "a different pre-prepare was accepted for this view and sequence number")
            return
        if not pp.batch:
            # The null request only fills gaps in a NEW-VIEW's O (C&L 4.4), installed without this
            # handler; an honest primary never proposes an empty batch.
            self._reject(pp, "null request outside a new-view")
            return
        oversized = self._oversized(pp.batch)
        if oversized:
            self._reject(pp, oversized)
            return
        if pp.replica != self.id and not all(verify_message(self._verifier, r) for r in pp.batch):
            self._reject(pp, "batch holds a request with a bad client signature")
            return
        self._accept_pre_prepare(pp)

    def _oversized(self, batch: tuple[Request, ...]) -> str:
        """Why ``batch`` breaks the byte limits (which keep every view-change and new-view within a
        frame), or "" if it does not."""
        sizes = [codec.request_size(request) for request in batch]
        if max(sizes, default=0) > self.config.max_request_bytes:
            return f"batch holds a request of {max(sizes)} bytes, above max_request_bytes"
        if sum(sizes) > self.config.max_batch_bytes:
            return f"batch of {sum(sizes)} bytes exceeds max_batch_bytes ({self.config.max_batch_bytes})"
        return ""

    def _accept_pre_prepare(self, pp: PrePrepare, persist: bool = True) -> None:
        """Log a pre-prepare (``persist`` is False for those that arrive inside a persisted new-view)."""
        slot = self._slot(pp.view, pp.seq)
        slot.pre_prepare = pp
        if persist:
            self._persist(pp)
        if pp.replica == self.id:
            self._next_seq = max(self._next_seq, pp.seq + 1)
            self._proposed.update((r.client, r.timestamp) for r in pp.batch)
        self._event(EventKind.PRE_PREPARED, seq=pp.seq, digest=pp.digest)
        if pp.replica != self.id:
            prepare = self._sign(Prepare(pp.view, pp.seq, pp.digest, self.id))
            self._record_prepare(prepare)
            self._broadcast(prepare)
        self._check_prepared(pp.view, pp.seq)

    def _on_prepare(self, prepare: Prepare) -> None:
        if prepare.replica == self.config.primary(prepare.view):
            self._reject(prepare, "the primary does not send prepares")
            return
        if not self._record_prepare(prepare):
            return
        self._check_prepared(prepare.view, prepare.seq)

    def _record_prepare(self, prepare: Prepare) -> bool:
        """Store a prepare; False if its sender already voted for this (view, seq)."""
        slot = self._slot(prepare.view, prepare.seq)
        if not _first_vote(slot.prepares, prepare.replica):
            return False
        slot.prepares.setdefault(prepare.digest, {})[prepare.replica] = prepare
        self._persist(prepare)
        return True

    def _check_prepared(self, view: int, seq: int) -> None:
        """prepared(m, v, n, i): the pre-prepare plus 2f matching prepares from distinct backups."""
        slot = self._slot(view, seq)
        pp = slot.pre_prepare
        if pp is None or slot.prepared:
            return
        votes = slot.prepares.get(pp.digest, {})
        if len(votes) < prepare_quorum(self.config.n, self.f):
            return
        slot.prepared = True
        chosen = tuple(votes[r] for r in sorted(votes)[: prepare_quorum(self.config.n, self.f)])
        self._prepared_certificates[seq] = PreparedCertificate(pp, chosen)
        self._event(EventKind.PREPARED, seq=seq, digest=pp.digest)
        commit = self._sign(Commit(view, seq, pp.digest, self.id))
        self._record_commit(commit)
        self._broadcast(commit)
        self._check_committed(view, seq)

    def _on_commit(self, commit: Commit) -> None:
        if self._record_commit(commit):
            self._check_committed(commit.view, commit.seq)

    def _record_commit(self, commit: Commit) -> bool:
        """Store a commit; False if its sender already voted for this (view, seq)."""
        slot = self._slot(commit.view, commit.seq)
        if not _first_vote(slot.commits, commit.replica):
            return False
        slot.commits.setdefault(commit.digest, {})[commit.replica] = commit
        self._persist(commit)
        return True

    def _check_committed(self, view: int, seq: int) -> None:
        """committed-local(m, v, n, i): prepared plus 2f+1 matching commits (own included)."""
        slot = self._slot(view, seq)
        pp = slot.pre_prepare
        if pp is None or not slot.prepared or slot.committed:
            return
        if len(slot.commits.get(pp.digest, {})) < commit_quorum(self.config.n, self.f):
            return
        slot.committed = True
        votes = slot.commits[pp.digest]
        commits = tuple(votes[r] for r in sorted(votes)[: commit_quorum(self.config.n, self.f)])
        self._committed[seq] = CommittedCertificate(pp, commits)
        self._event(EventKind.COMMITTED, seq=seq, digest=pp.digest, view=view)
        self._execute_ready()

    # ------------------------------------------------------------ execution and checkpoints

    def _execute_ready(self) -> None:
        """Execute committed batches strictly in sequence order (never re-entered: a checkpoint taken
        inside the loop can lead back here, and the running loop picks that work up)."""
        if self._executing:
            return
        self._executing = True
        executed_any = False
        try:
            while (certificate := self._committed.get(self._last_executed + 1)) is not None:
                pp = certificate.pre_prepare
                seq = pp.seq
                if seq in self._fetched:
                    self._fetched.discard(seq)
                    self._event(EventKind.CAUGHT_UP, seq=seq, digest=pp.digest)
                for request in pp.batch:
                    executed_any |= self._execute_request(request, seq)
                self._last_executed = seq
                self._event(EventKind.EXECUTED, seq=seq, digest=pp.digest)
                if seq % self.config.checkpoint_interval == 0:
                    self._take_checkpoint(seq)
        finally:
            self._executing = False
        if executed_any:
            self._view_change_streak = 0
            self._arm_view_change_timer(restart=True)

    def _execute_request(self, request: Request, seq: int) -> bool:
        """Execute once per (client, timestamp); a request ordered again is answered from the table."""
        key = (request.client, request.timestamp)
        self._pending.pop(key, None)
        self._pending_total -= self._pending_bytes.pop(key, 0)
        self._proposed.discard(key)
        record = self._clients.get(request.client)
        if record is not None and request.timestamp <= record.timestamp:
            if request.timestamp == record.timestamp:
                self._reply(request.client, request.timestamp, record.result)
            return False
        result = self._app.execute(request.client, request.operation, seq)
        self._clients[request.client] = ClientRecord(request.client, request.timestamp, result)
        self._reply(request.client, request.timestamp, result)
        return True

    def _encode_service_state(self) -> bytes:
        clients = tuple(self._clients[c] for c in sorted(self._clients))
        return codec.encode(ServiceState(self._app.snapshot(), clients))

    def _take_checkpoint(self, seq: int) -> None:
        snapshot = self._encode_service_state()
        self._own_checkpoints[seq] = snapshot
        checkpoint = self._sign(Checkpoint(seq, state_digest(snapshot), self.id))
        self._event(EventKind.CHECKPOINT, seq=seq, digest=checkpoint.state_digest)
        self._record_checkpoint(checkpoint)
        self._broadcast(checkpoint)
        self._check_stable(seq)

    def _on_checkpoint(self, checkpoint: Checkpoint) -> None:
        if checkpoint.seq <= self._stable_seq or checkpoint.seq % self.config.checkpoint_interval:
            return
        if self._record_checkpoint(checkpoint):
            self._check_stable(checkpoint.seq)

    def _record_checkpoint(self, checkpoint: Checkpoint) -> bool:
        """One vote per sender and seq; each sender keeps only its most recent window's worth of votes
        so a Byzantine replica cannot grow memory with far-future checkpoints."""
        votes = self._checkpoint_votes.setdefault(checkpoint.seq, {})
        if checkpoint.replica in votes:
            return False
        votes[checkpoint.replica] = checkpoint
        self._persist(checkpoint)
        limit = 2 * self.config.watermark_window // self.config.checkpoint_interval + 2
        held = sorted(seq for seq, v in self._checkpoint_votes.items() if checkpoint.replica in v)
        for seq in held[:-limit]:
            del self._checkpoint_votes[seq][checkpoint.replica]
        self._checkpoint_votes = {seq: v for seq, v in self._checkpoint_votes.items() if v}
        return checkpoint.replica in self._checkpoint_votes.get(checkpoint.seq, {})

    def _certified_digest(self, seq: int) -> tuple[bytes, tuple[Checkpoint, ...]] | None:
        """The digest that 2f+1 distinct replicas reported for checkpoint ``seq``, with their messages."""
        by_digest: dict[bytes, list[Checkpoint]] = {}
        for checkpoint in self._checkpoint_votes.get(seq, {}).values():
            by_digest.setdefault(checkpoint.state_digest, []).append(checkpoint)
        for digest, group in sorted(by_digest.items()):
            if len(group) >= checkpoint_quorum(self.config.n, self.f):
                quorum = checkpoint_quorum(self.config.n, self.f)
                proof = tuple(sorted(group, key=lambda c: c.replica)[:quorum])
                return digest, proof
        return None

    def _check_stable(self, seq: int) -> None:
        certified = self._certified_digest(seq)
        if certified is None:
            return
        digest, proof = certified
        own = self._own_checkpoints.get(seq)
        if own is not None and state_digest(own) == digest:
            self._make_stable(seq, proof, own)
        elif seq > self._last_executed:
            self._request_state(seq, digest)
        else:
            self._event(EventKind.REJECTED, seq=seq, digest=digest, reason="own state differs from certified")

    def _make_stable(self, seq: int, proof: tuple[Checkpoint, ...], snapshot: bytes) -> None:
        """Advance the low watermark to ``seq`` and discard everything at or below it."""
        self._stable_seq, self._stable_proof, self._stable_snapshot = seq, proof, snapshot
        self._slots = {key: slot for key, slot in self._slots.items() if key[1] > seq}
        self._prepared_certificates = {n: c for n, c in self._prepared_certificates.items() if n > seq}
        self._committed = {n: c for n, c in self._committed.items() if n > seq}
        self._fetched = {n for n in self._fetched if n > seq}
        self._own_checkpoints = {n: s for n, s in self._own_checkpoints.items() if n >= seq}
        self._checkpoint_votes = {n: v for n, v in self._checkpoint_votes.items() if n > seq}
        if self._transfer_target is not None and self._transfer_target[0] <= seq:
            self._transfer_target = None
            self._cancel_timer(Timer(TimerKind.STATE_TRANSFER, 0))
        self._event(EventKind.CHECKPOINT_STABLE, seq=seq, digest=state_digest(snapshot))
        if not self._replaying:
            self._durable.append(CompactLog(self.durable_records()))
        if self.is_primary and self._view_active:
            self._next_seq = max(self._next_seq, seq + 1)
            self._propose_batches(flush=False)

    def durable_records(self) -> tuple[DurableRecord, ...]:
        """Everything ``recover`` needs, replayable in this order: the stable snapshot, the P set,
        the committed batches above the snapshot (some may have committed in a view whose messages
        are dropped below; without them a restart would un-execute them), checkpoint votes, then
        view by view the view-change state and agreement messages. The replica compacts its log to
        these at each stable checkpoint; a host may do so after any step as well."""
        records: list[DurableRecord] = [self.stable_snapshot]
        records.extend(c for _, c in sorted(self._prepared_certificates.items()))
        records.extend(c for _, c in sorted(self._committed.items()))
        for _, checkpoint_votes in sorted(self._checkpoint_votes.items()):
            records.extend(checkpoint_votes.values())
        slot_views = {view for view, _ in self._slots}
        for view in sorted(slot_views | set(self._view_changes) | set(self._new_views)):
            held = self._view_changes.get(view, {})
            if self.id in held:
                records.append(held[self.id])
            records.extend(vc for sender, vc in sorted(held.items()) if sender != self.id)
            if view in self._new_views:
                records.append(self._new_views[view])
            for (slot_view, _), slot in sorted(self._slots.items()):
                if slot_view != view:
                    continue
                if slot.pre_prepare is not None:
                    records.append(slot.pre_prepare)
                for votes in slot.prepares.values():
                    records.extend(votes.values())
                for commit_votes in slot.commits.values():
                    records.extend(commit_votes.values())
        return tuple(records)

    # ------------------------------------------------------------ state transfer

    def _request_state(self, seq: int, digest: bytes) -> None:
        """A checkpoint at ``seq`` is certified but not reached here. If it lies beyond the high
        watermark the replica cannot catch up through agreement, so ask now; otherwise give normal
        execution one state-transfer timeout to get there first."""
        if self._transfer_target is not None and self._transfer_target[0] >= seq:
            return
        self._transfer_target = (seq, digest)
        if seq > self.high_watermark:
            self._send_state_request()
        self._set_timer(Timer(TimerKind.STATE_TRANSFER, 0), self.config.state_transfer_timeout_ms)

    def _send_state_request(self) -> None:
        if self._transfer_target is None:
            return
        seq, digest = self._transfer_target
        self._event(EventKind.STATE_TRANSFER, seq=seq, digest=digest, reason="requested")
        self._broadcast(self._sign(StateRequest(seq, self.id)))

    def _on_state_request(self, request: StateRequest) -> None:
        if request.replica == self.id or self._stable_seq < request.seq or self._stable_seq == 0:
            return
        self._send(request.replica, self._sign(StateResponse(self.stable_snapshot, self.id)))

    # ------------------------------------------------------------ catch-up

    def _send_fetch(self) -> None:
        """Report how far we executed, so that replicas ahead send what we miss (the network does not
        retransmit, and a request we never saw a quorum for would otherwise wait for a checkpoint)."""
        self._broadcast(self._sign(Fetch(self._last_executed, self.id)))

    def _on_fetch(self, fetch: Fetch) -> None:
        """C&L TOCS 5.2: retransmit to a replica that reports it is behind. Below our stable checkpoint
        only the certified state helps (5.3); above it, each batch we executed, with the certificate
        it committed on, one per message, at most one watermark window past what the fetcher
        executed. Only executed batches: the fetcher then executes nothing that no honest replica
        executed before it (the spec's CatchUp), and its checkpoints match ours."""
        if fetch.replica == self.id:
            return
        if 0 <= fetch.last_executed < self._stable_seq:
            self._send(fetch.replica, self._sign(StateResponse(self.stable_snapshot, self.id)))
        start = max(fetch.last_executed, self._stable_seq)
        last = min(self._last_executed, start + self.config.watermark_window)
        # Every seq in (stable, last executed] executed from ``_committed``, which keeps it until the
        # next stable checkpoint.
        for seq in range(start + 1, last + 1):
            self._send(fetch.replica, self._sign(CatchUp(self._committed[seq], self.id)))

    def _on_catch_up(self, catch_up: CatchUp) -> None:
        """Adopt a committed batch we have not executed: the certificate proves it committed, so
        executing it is safe in any view, also during a view change. It is persisted like the
        certificates we assemble ourselves, so a restart executes it again."""
        certificate = catch_up.certificate
        pp = certificate.pre_prepare
        if pp.seq <= self._last_executed or pp.seq in self._committed or not self._in_window(pp.seq):
            return
        if not valid_committed_certificate(self.config, self._verifier, certificate):
            self._reject(catch_up, "invalid committed certificate")
            return
        self._committed[pp.seq] = certificate
        self._fetched.add(pp.seq)
        self._persist(certificate)
        self._execute_ready()

    def _on_state_response(self, response: StateResponse) -> None:
        stable = response.stable
        if stable.seq <= self._last_executed:
            return
        certified = checkpoint_proof_digest(self.config, self._verifier, stable.seq, stable.proof)
        if certified is None or certified != state_digest(stable.snapshot):
            self._reject(response, "snapshot does not match a valid checkpoint certificate")
            return
        try:
            codec.decode(stable.snapshot, ServiceState)
        except codec.DecodeError:
            self._reject(response, "certified snapshot does not decode")
            return
        self._install_snapshot(stable)

    def _install_snapshot(self, stable: StableSnapshot) -> None:
        """Adopt a certified stable checkpoint: restore the service state and advance execution to it."""
        state = codec.decode_unlimited(stable.snapshot, ServiceState)
        self._app.restore(state.app_state)
        self._clients = {record.client: record for record in state.clients}
        self._pending = {key: r for key, r in self._pending.items() if not self._already_executed(r)}
        self._pending_bytes = {key: self._pending_bytes[key] for key in self._pending}
        self._pending_total = sum(self._pending_bytes.values())
        self._last_executed = max(self._last_executed, stable.seq)
        self._own_checkpoints[stable.seq] = stable.snapshot
        digest = state_digest(stable.snapshot)
        self._event(EventKind.STATE_TRANSFER, seq=stable.seq, digest=digest, reason="installed")
        if stable.seq > self._stable_seq:
            self._make_stable(stable.seq, stable.proof, stable.snapshot)
        self._execute_ready()

    # ------------------------------------------------------------ timers

    def _on_timer(self, timer: Timer) -> None:
        if timer.kind is TimerKind.BATCH:
            if timer.view == self._view and self.is_primary and self._view_active:
                self._propose_batches(flush=True)
        elif timer.kind is TimerKind.STATE_TRANSFER:
            target = self._transfer_target
            if target is not None and target[0] > self._last_executed:
                self._send_state_request()
                self._set_timer(timer, self.config.state_transfer_timeout_ms)
        elif timer.view == self._view:
            self._view_change_timer_armed = False
            self._on_view_change_timeout()

    def _on_view_change_timeout(self) -> None:
        """In the normal case, suspect the primary. During a view change, first re-send our
        view-change (the network may have lost it; whoever installed the view answers with the
        new-view), and move on to the next view only once 2f+1 view-changes were held and still
        no new-view arrived. Either way, first ask whether others executed what we wait for."""
        self._send_fetch()
        if self._view_active:
            self._start_view_change(self._view + 1)
            return
        held = self._view_changes.get(self._view, {})
        if len(held) < view_change_quorum(self.config.n, self.f) or not self._view_change_resent:
            self._view_change_resent = True
            own = held.get(self.id)
            if own is not None:
                self._broadcast(own)
            self._arm_view_change_timer()
            return
        self._start_view_change(self._view + 1)

    def _view_change_timeout(self) -> int:
        return self.config.view_change_timeout_ms << min(self._view_change_streak, MAX_TIMEOUT_DOUBLINGS)

    def _arm_view_change_timer(self, restart: bool = False) -> None:
        """Section 4.4's timer. Normal case: started when a request waits to execute and the timer is
        not running, restarted (``restart``) when a request executes and others still wait, stopped
        when none waits; new requests do not restart it, or a primary that ignores requests would
        never be suspected. During a view change it always runs (see ``_on_view_change_timeout``),
        with the timeout doubled for every consecutive view change."""
        timer = Timer(TimerKind.VIEW_CHANGE, self._view)
        if self._view_active and not self._pending:
            if self._view_change_timer_armed:
                self._cancel_timer(timer)
            self._view_change_timer_armed = False
            return
        if self._view_change_timer_armed and not restart:
            return
        self._set_timer(timer, self._view_change_timeout())
        self._view_change_timer_armed = True

    def _stop_view_change_timer(self) -> None:
        self._cancel_timer(Timer(TimerKind.VIEW_CHANGE, self._view))
        self._view_change_timer_armed = False

    # ------------------------------------------------------------ view change

    def _start_view_change(self, new_view: int) -> None:
        """Stop accepting agreement messages of this view; send VIEW-CHANGE(new_view, n, C, P, i)."""
        if new_view <= self._view:
            return
        self._stop_view_change_timer()
        self._view = new_view
        self._view_active = False
        self._view_change_resent = False
        self._view_change_streak += 1
        prepared = tuple(c for n, c in sorted(self._prepared_certificates.items()) if n > self._stable_seq)
        vc = self._sign(ViewChange(new_view, self._stable_seq, self._stable_proof, prepared, self.id))
        self._event(EventKind.VIEW_CHANGE, seq=self._stable_seq, reason="sent")
        self._store_view_change(vc)
        self._broadcast(vc)
        self._after_view_change_vote(new_view)

    def _on_view_change(self, vc: ViewChange) -> None:
        if vc.new_view < self._view or (vc.new_view == self._view and self._view_active):
            if vc.replica != self.id and not self._superseded(vc):
                self._help_lagging_replica(vc)
            return
        if vc.replica in self._view_changes.get(vc.new_view, {}):
            return
        if not valid_view_change(self.config, self._verifier, vc):
            self._reject(vc, "invalid C or P set")
            return
        if vc.replica == self.id:
            if not self._replaying:
                return
            # Replaying our own view-change after a restart: re-enter that view change exactly as
            # sent (regenerating it could produce a different P set, which would be equivocation).
            self._stop_view_change_timer()
            self._view, self._view_active = vc.new_view, False
            self._view_change_resent = False
            self._view_change_streak += 1
        self._store_view_change(vc)
        self._event(EventKind.VIEW_CHANGE, seq=vc.stable_seq, peer=vc.replica, reason="received")
        if not self._replaying:
            self._join_higher_view_change()
        self._after_view_change_vote(vc.new_view)

    def _superseded(self, stale: ViewChange) -> bool:
        """We hold a view-change of the same sender for a later view: ``stale`` is a delayed old
        message, not a sign that its sender still waits in that view change."""
        return any(
            stale.replica in held for view, held in self._view_changes.items() if view > stale.new_view
        )

    def _help_lagging_replica(self, stale: ViewChange) -> None:
        """The sender still waits in a view change we are past (the network lost messages and does
        not retransmit). If we installed a view, the new-view proves it; otherwise our own earlier
        view-change for its view completes its quorum, and our current one counts toward its
        joining rule.

        The answer is itself a view-change the sender may find stale, so it must not feed back: a
        stale view-change whose sender already sent us a later one is not answered
        (``_superseded``); without that, two replicas in one view change answered each other's
        delayed view-changes for earlier views forever. Our current one goes first, so that in
        order the sender learns it before the stale one and need not answer at all."""
        new_view = self._new_views.get(self._view)
        if self._view_active and new_view is not None:
            self._send(stale.replica, new_view)
            return
        for view in (self._view, stale.new_view):
            own = self._own_view_changes.get(view)
            if own is not None:
                self._send(stale.replica, own)

    def _store_view_change(self, vc: ViewChange) -> None:
        if vc.replica == self.id:
            self._own_view_changes[vc.new_view] = vc
        if vc.new_view > self._view:
            # Above our view, keep only each sender's latest: bounds what a Byzantine replica can store.
            for view, held in self._view_changes.items():
                if view > self._view and view != vc.new_view:
                    held.pop(vc.replica, None)
        self._view_changes.setdefault(vc.new_view, {})[vc.replica] = vc
        self._persist(vc)
        self._view_changes = {v: vcs for v, vcs in self._view_changes.items() if v >= self._view and vcs}

    def _join_higher_view_change(self) -> None:
        """Liveness rule: on valid view-changes for views above ours from f+1 distinct replicas, move to
        the smallest such view (even before our own timer expires)."""
        highest: dict[int, int] = {}
        for view, vcs in self._view_changes.items():
            if view > self._view:
                for sender in vcs:
                    if sender != self.id:
                        highest[sender] = max(highest.get(sender, view), view)
        if len(highest) >= view_change_join(self.config.n, self.f):
            self._start_view_change(min(highest.values()))

    def _after_view_change_vote(self, view: int) -> None:
        if view != self._view or self._view_active:
            return
        self._arm_view_change_timer()
        if self.is_primary and view not in self._new_views and not self._replaying:
            self._send_new_view()

    def _send_new_view(self) -> None:
        """New primary: with 2f+1 view-changes (own included) compute O and send NEW-VIEW(v, V, O)."""
        held = self._view_changes.get(self._view, {})
        if self.id not in held or len(held) < view_change_quorum(self.config.n, self.f):
            return
        others = [held[r] for r in sorted(held) if r != self.id]
        chosen = (held[self.id], *others[: view_change_quorum(self.config.n, self.f) - 1])
        plan = plan_new_view(chosen)
        o_set = []
        for seq, digest, batch in plan.proposals:
            pp = self._sign(PrePrepare(self._view, seq, digest, batch, self.id))
            o_set.append(pp)
        nv = self._sign(NewView(self._view, chosen, tuple(o_set), self.id))
        self._broadcast(nv)
        self._install_new_view(nv, plan.min_seq, plan.min_seq_proof)

    def _on_new_view(self, nv: NewView) -> None:
        if nv.view < self._view or (nv.view == self._view and self._view_active):
            return
        plan = valid_new_view(self.config, self._verifier, nv)
        if plan is None:
            self._reject(nv, "invalid V or O does not match V")
            return
        self._install_new_view(nv, plan.min_seq, plan.min_seq_proof)

    def _install_new_view(self, nv: NewView, min_seq: int, min_seq_proof: tuple[Checkpoint, ...]) -> None:
        """Enter view ``nv.view``: adopt the checkpoint min-s, accept every pre-prepare in O (sending
        prepares as a backup) and resume normal operation. Requests already executed are not
        re-executed: execution only ever advances ``last_executed``.

        The view becomes active only once O is installed (C&L 4.4): until then a new primary must
        not assign fresh sequence numbers, or a checkpoint made stable on the way (adopting min-s,
        or executing O) would propose a new batch at a seq that O re-proposes, possibly one
        already committed elsewhere. With O in place ``_next_seq`` is above max-s."""
        self._persist(nv)
        self._stop_view_change_timer()
        self._view, self._view_active = nv.view, False
        self._new_views = {nv.view: nv}
        self._own_view_changes = {}
        self._view_changes = {v: vcs for v, vcs in self._view_changes.items() if v > nv.view}
        self._slots = {
            (view, seq): slot
            for (view, seq), slot in self._slots.items()
            if view >= nv.view or (slot.prepared and not slot.committed and seq > self._last_executed)
        }
        self._event(EventKind.NEW_VIEW, seq=min_seq)
        if min_seq > self._stable_seq:
            for checkpoint in min_seq_proof:
                self._checkpoint_votes.setdefault(min_seq, {}).setdefault(checkpoint.replica, checkpoint)
            self._check_stable(min_seq)
        self._proposed = set()
        self._next_seq = max(self._stable_seq, min_seq) + 1
        for pp in nv.pre_prepares:
            if pp.seq > self._stable_seq:
                self._accept_pre_prepare(pp, persist=False)
        self._view_active = True
        if not self.is_primary and not self._replaying:
            for request in self._pending.values():
                self._send(self.primary, request)
        self._replay_future()
        self._arm_view_change_timer()
        if self.is_primary:
            self._propose_batches(flush=True)


def _first_vote(votes: Mapping[bytes, Mapping[int, object]], sender: int) -> bool:
    """True if ``sender`` has no vote yet among ``votes`` (digest -> sender -> vote): a replica votes
    once per (view, seq); a second vote, for any digest, is equivocation and is not counted."""
    return all(sender not in by_sender for by_sender in votes.values())


def message_identity(message: ReplicaMessage | Request) -> tuple[int, int, bytes]:
    """(view, seq, digest) naming ``message`` in ``received``/``sent`` events (view/seq -1 if none).

    The digest is the one the other events use for what the message is about: the batch digest
    for agreement messages and for a ``CatchUp`` (so it matches ``pre-prepared``/``committed`` at
    the same view and seq), the state digest for checkpoints and state responses, the digest of
    the one-request batch for a request (what a pre-prepare ordering it alone carries), and the
    message's own canonical digest for view changes, new views, state requests and fetches (whose
    seq is the fetcher's last executed), which are about no batch.
    """
    if isinstance(message, PrePrepare | Prepare | Commit):
        return message.view, message.seq, message.digest
    if isinstance(message, CatchUp):
        pp = message.certificate.pre_prepare
        return pp.view, pp.seq, pp.digest
    if isinstance(message, Checkpoint):
        return -1, message.seq, message.state_digest
    if isinstance(message, StateResponse):
        return -1, message.stable.seq, state_digest(message.stable.snapshot)
    if isinstance(message, Request):
        return -1, -1, codec.batch_digest((message,))
    if isinstance(message, ViewChange):
        return message.new_view, message.stable_seq, codec.digest(message)
    if isinstance(message, NewView):
        return message.view, -1, codec.digest(message)
    if isinstance(message, Fetch):
        return -1, message.last_executed, codec.digest(message)
    return -1, message.seq, codec.digest(message)
