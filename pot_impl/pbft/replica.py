"""A complete PBFT replica (Castro and Liskov, OSDI'99, section 4) as a sans-IO state machine.

One call is one protocol step: ``handle`` takes one input (a received message,
a fired timer or a client request) and returns the effects to perform. There
are no sockets, threads, clocks or randomness here; the same object runs
under the asyncio runtime, the deterministic simulator and conformance tests.

The replica is the dispatcher and the owner of effects. The protocol itself is
in four parts, one module each, that share this replica and its ``Outbox``:

- ``normal_case.py``: requests, PRE-PREPARE, PREPARE and COMMIT, execution;
- ``checkpoints.py``: checkpoints, the watermarks, garbage collection;
- ``view_change.py``: the view, its timer, VIEW-CHANGE and NEW-VIEW;
- ``state_transfer.py``: certified state for a replica that fell behind, and catch-up.

``conformance/actions.py`` names the method of each part that takes each spec action.

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

from pot_impl import codec
from pot_impl.auth import Signer, Verifier, replica_principal, verify_message
from pot_impl.pbft.app import Application
from pot_impl.pbft.certificates import state_digest
from pot_impl.pbft.checkpoints import Checkpoints
from pot_impl.pbft.config import ReplicaConfig
from pot_impl.pbft.io import (
    ClientRequestReceived,
    DurableRecord,
    Effect,
    EventKind,
    Input,
    MessageReceived,
    Timer,
    TimerFired,
    TimerKind,
)
from pot_impl.pbft.messages import (
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
    Reply,
    Request,
    ServiceState,
    StableSnapshot,
    StateRequest,
    StateResponse,
    ViewChange,
)
from pot_impl.pbft.normal_case import LogEntry, NormalCase
from pot_impl.pbft.outbox import Outbox
from pot_impl.pbft.state_transfer import StateTransfer
from pot_impl.pbft.view_change import ViewChanges


class Replica:
    """Replica ``replica_id`` of a cluster of ``config.n``.

    A host steps it only through ``handle`` (or its shorthands) and ``recover``; the parts
    (``normal_case``, ``checkpoints``, ``view_changes``, ``state_transfer``) are for each other
    and for reading.
    """

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
        self._verifier = verifier
        self.outbox = Outbox(self, signer)
        self.normal_case = NormalCase(self, self.outbox, verifier, app)
        self.checkpoints = Checkpoints(self, self.outbox, self.normal_case.encode_service_state())
        self.view_changes = ViewChanges(self, self.outbox, verifier)
        self.state_transfer = StateTransfer(self, self.outbox, verifier)

    # ------------------------------------------------------------ inspection

    @property
    def view(self) -> int:
        """The current view (the target view while a view change is in progress)."""
        return self.view_changes.view

    @property
    def view_active(self) -> bool:
        """False between sending a view-change and installing the matching new-view."""
        return self.view_changes.active

    @property
    def primary(self) -> int:
        return self.config.primary(self.view)

    @property
    def is_primary(self) -> bool:
        return self.primary == self.id

    @property
    def last_executed(self) -> int:
        """Highest sequence number executed; every lower one was executed, in order."""
        return self.normal_case.last_executed

    @property
    def stable_checkpoint(self) -> int:
        """Sequence number of the last stable checkpoint: the low watermark h."""
        return self.checkpoints.stable_seq

    @property
    def stable_proof(self) -> tuple[Checkpoint, ...]:
        """The 2f+1 checkpoint messages that made the stable checkpoint stable (empty at genesis)."""
        return self.checkpoints.stable_proof

    @property
    def stable_snapshot(self) -> StableSnapshot:
        """The stable checkpoint with its state and proof (what state transfer serves)."""
        return self.checkpoints.stable

    @property
    def low_watermark(self) -> int:
        return self.checkpoints.stable_seq

    @property
    def high_watermark(self) -> int:
        return self.checkpoints.high_watermark

    @property
    def log(self) -> Mapping[int, LogEntry]:
        """Entries of the current view above the low watermark, plus committed entries not yet executed."""
        return self.normal_case.log(self.view)

    @property
    def committed(self) -> Mapping[int, PrePrepare]:
        """Committed-local batches above the low watermark, by sequence number (any view)."""
        return {seq: certificate.pre_prepare for seq, certificate in self.normal_case.committed.items()}

    @property
    def prepared_certificates(self) -> Mapping[int, PreparedCertificate]:
        """Per sequence number, the prepared certificate from the highest view (what P would hold)."""
        return dict(self.normal_case.prepared_certificates)

    @property
    def checkpoint_votes(self) -> Mapping[int, Mapping[int, bytes]]:
        """Checkpoint digests received above the stable checkpoint: seq -> sender -> digest."""
        return {
            seq: {sender: c.state_digest for sender, c in votes.items()}
            for seq, votes in self.checkpoints.votes.items()
        }

    @property
    def own_checkpoints(self) -> Mapping[int, bytes]:
        """Digests of this replica's own state at each checkpoint not yet garbage-collected."""
        return {seq: state_digest(snapshot) for seq, snapshot in self.checkpoints.own.items()}

    @property
    def view_change_senders(self) -> Mapping[int, frozenset[int]]:
        """Valid view-changes held, per target view."""
        return {v: frozenset(vcs) for v, vcs in self.view_changes.held.items()}

    @property
    def view_change_streak(self) -> int:
        """Consecutive view changes without executing a request (the timeout is doubled this often)."""
        return self.view_changes.streak

    @property
    def clients(self) -> Mapping[str, ClientRecord]:
        """Last executed timestamp and result per client."""
        return dict(self.normal_case.clients)

    @property
    def pending_requests(self) -> tuple[Request, ...]:
        """Requests received but not yet executed."""
        return tuple(self.normal_case.pending.values())

    @property
    def service_state(self) -> ServiceState:
        """The state the next checkpoint would certify (application snapshot plus client table)."""
        return codec.decode_unlimited(self.normal_case.encode_service_state(), ServiceState)

    # ------------------------------------------------------------ stepping

    def handle(self, event: Input) -> list[Effect]:
        """Process one input; return the effects to perform (durable ones first)."""
        if isinstance(event, MessageReceived):
            self._on_message(event.message)
        elif isinstance(event, TimerFired):
            self._on_timer(event.timer)
        else:
            self.normal_case.on_client_request(event.request, direct=True)
        return self.outbox.drain()

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
        if self.last_executed or self.view or self.normal_case.slots:
            raise RuntimeError("recover() needs a freshly constructed replica")
        self.outbox.replaying = True
        try:
            for record in records:
                if isinstance(record, StableSnapshot):
                    self.state_transfer.install(record)
                elif isinstance(record, PreparedCertificate):
                    self.normal_case.restore_prepared_certificate(record)
                elif isinstance(record, CommittedCertificate):
                    self.normal_case.restore_committed(record)
                else:
                    self._on_message(record)
        finally:
            self.outbox.replaying = False
            self.outbox.discard()
        self.outbox.event(EventKind.RECOVERED, seq=self.last_executed)
        self.view_changes.resume()
        self.state_transfer.resume()
        if self.is_primary and self.view_active:
            self.normal_case.propose_batches(flush=True)
        return self.outbox.drain()

    def durable_records(self) -> tuple[DurableRecord, ...]:
        """Everything ``recover`` needs, replayable in this order: the stable snapshot, the P set,
        the committed batches above the snapshot (some may have committed in a view whose messages
        are dropped below; without them a restart would un-execute them), checkpoint votes, then
        view by view the view-change state and agreement messages. The replica compacts its log to
        these at each stable checkpoint; a host may do so after any step as well."""
        normal_case, views = self.normal_case, self.view_changes
        records: list[DurableRecord] = [self.stable_snapshot]
        records.extend(c for _, c in sorted(normal_case.prepared_certificates.items()))
        records.extend(c for _, c in sorted(normal_case.committed.items()))
        for _, checkpoint_votes in sorted(self.checkpoints.votes.items()):
            records.extend(checkpoint_votes.values())
        slot_views = {view for view, _ in normal_case.slots}
        for view in sorted(slot_views | set(views.held) | set(views.new_views)):
            held = views.held.get(view, {})
            if self.id in held:
                records.append(held[self.id])
            records.extend(vc for sender, vc in sorted(held.items()) if sender != self.id)
            if view in views.new_views:
                records.append(views.new_views[view])
            for (slot_view, _), slot in sorted(normal_case.slots.items()):
                if slot_view != view:
                    continue
                if slot.pre_prepare is not None:
                    records.append(slot.pre_prepare)
                for votes in slot.prepares.values():
                    records.extend(votes.values())
                for commit_votes in slot.commits.values():
                    records.extend(commit_votes.values())
        return tuple(records)

    # ------------------------------------------------------------ dispatch

    def _on_message(self, message: Message) -> None:
        if isinstance(message, Request):
            self.normal_case.on_client_request(message, direct=False)
            return
        if isinstance(message, Reply):
            self.outbox.reject(message, "replies are for clients")
            return
        if not 0 <= message.replica < self.config.n:
            self.outbox.reject(message, "unknown replica")
            return
        if not verify_message(self._verifier, message):
            self.outbox.reject(message, "bad signature")
            return
        self.outbox.message_event(EventKind.RECEIVED, message, peer=message.replica)
        if isinstance(message, PrePrepare | Prepare | Commit):
            self.normal_case.on_agreement_message(message)
        elif isinstance(message, Checkpoint):
            self.checkpoints.on_checkpoint(message)
        elif isinstance(message, ViewChange):
            self.view_changes.on_view_change(message)
        elif isinstance(message, NewView):
            self.view_changes.on_new_view(message)
        elif isinstance(message, StateRequest):
            self.state_transfer.on_state_request(message)
        elif isinstance(message, StateResponse):
            self.state_transfer.on_state_response(message)
        elif isinstance(message, Fetch):
            self.state_transfer.on_fetch(message)
        else:
            self.state_transfer.on_catch_up(message)

    def _on_timer(self, timer: Timer) -> None:
        if timer.kind is TimerKind.BATCH:
            self.normal_case.on_batch_timer(timer)
        elif timer.kind is TimerKind.STATE_TRANSFER:
            self.state_transfer.on_timer(timer)
        else:
            self.view_changes.on_timer(timer)
