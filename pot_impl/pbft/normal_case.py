"""PBFT's normal case (Castro and Liskov, OSDI'99, sections 4.1 to 4.2): requests, the three
phases that order them within a view, and their execution in sequence order.

A part of ``Replica``, which dispatches to it and owns its effects (``Outbox``). It owns the
agreement log (one ``_Slot`` per view and sequence number), the certificates assembled from
it, the client table and the requests waiting to be ordered.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from pot_impl import codec
from pot_impl.auth import Verifier, verify_message
from pot_impl.encoded import EncodedRecords
from pot_impl.pbft.app import Application
from pot_impl.pbft.certificates import valid_pre_prepare_body
from pot_impl.pbft.io import EventKind, Timer, TimerKind
from pot_impl.pbft.messages import (
    ClientRecord,
    Commit,
    CommittedCertificate,
    Prepare,
    PreparedCertificate,
    PrePrepare,
    Request,
    ServiceState,
)
from pot_impl.pbft.outbox import Outbox
from pot_impl.pbft.quorums import commit_quorum, prepare_quorum

if TYPE_CHECKING:
    from pot_impl.pbft.replica import Replica


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


class NormalCase:
    """Ordering and execution for ``replica``."""

    def __init__(self, replica: Replica, outbox: Outbox, verifier: Verifier, app: Application) -> None:
        self._replica = replica
        self._config = replica.config
        self._out = outbox
        self._verifier = verifier
        self._app = app
        self.slots: dict[tuple[int, int], _Slot] = {}
        self.prepared_certificates: dict[int, PreparedCertificate] = {}
        self.committed: dict[int, CommittedCertificate] = {}
        self.fetched: set[int] = set()
        """Sequence numbers committed on a certificate a peer sent (``commit_fetched``)."""
        self.last_executed = 0
        self.next_seq = 1
        self.clients: EncodedRecords[str, ClientRecord] = EncodedRecords()
        self.pending: dict[tuple[str, int], Request] = {}
        self._pending_bytes: dict[tuple[str, int], int] = {}
        self._pending_total = 0
        self._pending_by_client: Counter[str] = Counter()
        self._proposed: set[tuple[str, int]] = set()
        self._unproposed: dict[tuple[str, int], None] = {}
        """The keys of ``pending`` not in ``_proposed``, in arrival order: the primary proposes on
        every request's arrival, so finding them must not cost a scan of everything pending."""
        self._executing = False

    def log(self, view: int) -> dict[int, LogEntry]:
        """Entries of ``view`` above the low watermark, plus committed entries not yet executed."""
        entries: dict[int, LogEntry] = {}
        for (slot_view, seq), slot in self.slots.items():
            if slot_view != view or slot.pre_prepare is None:
                continue
            pp = slot.pre_prepare
            entries[seq] = LogEntry(
                seq=seq,
                view=slot_view,
                digest=pp.digest,
                batch=pp.batch,
                pre_prepared=True,
                prepared=slot.prepared,
                committed=slot.committed,
                executed=seq <= self.last_executed,
                prepare_senders=frozenset(slot.prepares.get(pp.digest, {})),
                commit_senders=frozenset(slot.commits.get(pp.digest, {})),
            )
        return dict(sorted(entries.items()))

    def _slot(self, view: int, seq: int) -> _Slot:
        return self.slots.setdefault((view, seq), _Slot())

    # ------------------------------------------------------------ client requests

    def on_client_request(self, request: Request, direct: bool) -> None:
        size = codec.request_size(request)
        if size > self._config.max_request_bytes:
            limit = self._config.max_request_bytes
            self._out.reject(request, f"request of {size} bytes exceeds max_request_bytes ({limit})")
            return
        if not verify_message(self._verifier, request):
            self._out.reject(request, "bad client signature")
            return
        record = self.clients.get(request.client)
        if record is not None and request.timestamp <= record.timestamp:
            if request.timestamp == record.timestamp:
                self._out.reply(request.client, request.timestamp, record.result)
            return
        key = (request.client, request.timestamp)
        if key in self.pending:
            return
        if len(self.pending) >= self._config.max_pending_requests:
            self._out.reject(request, "too many pending requests")
            return
        if self._pending_by_client[request.client] >= self._config.max_pending_per_client:
            self._out.reject(request, "too many pending requests of this client")
            return
        if self._pending_total + size > self._config.max_pending_bytes:
            self._out.reject(request, "pending requests would exceed max_pending_bytes")
            return
        self.pending[key] = request
        if key not in self._proposed:
            self._unproposed[key] = None
        self._pending_bytes[key] = size
        self._pending_total += size
        self._pending_by_client[request.client] += 1
        self._out.event(EventKind.REQUEST, message="Request")
        replica = self._replica
        if replica.is_primary and replica.view_active:
            self.propose_batches(flush=False)
        elif direct and replica.view_active:
            self._out.send(replica.primary, request)
        replica.view_changes.arm_timer()

    def already_executed(self, request: Request) -> bool:
        record = self.clients.get(request.client)
        return record is not None and request.timestamp <= record.timestamp

    def on_batch_timer(self, timer: Timer) -> None:
        replica = self._replica
        if timer.view == replica.view and replica.is_primary and replica.view_active:
            self.propose_batches(flush=True)

    def propose_batches(self, flush: bool) -> None:
        """Primary: order pending requests in batches of ``batch_size`` requests and at most
        ``max_batch_bytes``; a partial batch waits for the batch timer unless ``flush``. Not while a
        certified checkpoint we have not reached is pending (``StateTransfer.target``): our client
        table is stale, and we would re-order requests that checkpoint already executed. Reaching it
        (``Checkpoints.make_stable``) proposes again."""
        replica = self._replica
        if replica.state_transfer.target is not None:
            return
        while self._unproposed and self.next_seq <= replica.high_watermark:
            keys = self._fill_batch()
            if len(keys) == len(self._unproposed) < self._config.batch_size and not flush:
                self._out.set_timer(Timer(TimerKind.BATCH, replica.view), self._config.batch_timeout_ms)
                break
            batch = tuple(self.pending[key] for key in keys)
            self._mark_proposed(keys)
            seq = self.next_seq
            self.next_seq += 1
            pp = self._out.sign(PrePrepare(replica.view, seq, codec.batch_digest(batch), batch, replica.id))
            self._out.broadcast(pp)
            self.accept_pre_prepare(pp)

    def _mark_proposed(self, keys: Iterable[tuple[str, int]]) -> None:
        for key in keys:
            self._proposed.add(key)
            self._unproposed.pop(key, None)

    def _fill_batch(self) -> list[tuple[str, int]]:
        """Up to ``batch_size`` unproposed requests, in order, within ``max_batch_bytes``. A request too
        large for the room left is passed over for later ones that fit, so large requests do not
        hold small ones back; the oldest is always taken (it fits: every pending request is within
        ``max_request_bytes``), so none waits for ever."""
        chosen: list[tuple[str, int]] = []
        total = 0
        for key in self._unproposed:
            size = self._pending_bytes[key]
            if total + size <= self._config.max_batch_bytes:
                chosen.append(key)
                total += size
                if len(chosen) == self._config.batch_size:
                    break
        return chosen

    # ------------------------------------------------------------ three phases

    def on_agreement_message(self, message: PrePrepare | Prepare | Commit) -> None:
        """Admit a PRE-PREPARE, PREPARE or COMMIT of the current view within the watermarks."""
        replica = self._replica
        if message.view > replica.view or (message.view == replica.view and not replica.view_active):
            replica.view_changes.buffer_future(message)
            return
        if message.view < replica.view and not self._completes_left_view_commit(message):
            self._out.reject(message, f"stale view {message.view} < {replica.view}")
            return
        if not replica.checkpoints.in_window(message.seq):
            window = f"({replica.low_watermark}, {replica.high_watermark}]"
            self._out.reject(message, f"seq {message.seq} outside watermarks {window}")
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
        when the view is left (``enter_view``)."""
        if not isinstance(message, Commit):
            return False
        slot = self.slots.get((message.view, message.seq))
        return slot is not None and slot.prepared and not slot.committed

    def _on_pre_prepare(self, pp: PrePrepare) -> None:
        if not valid_pre_prepare_body(self._config, pp):
            self._out.reject(pp, "not from the primary or digest does not match the batch")
            return
        slot = self._slot(pp.view, pp.seq)
        if slot.pre_prepare is not None:
            if slot.pre_prepare.digest != pp.digest:
                self._out.reject(pp, "a different pre-prepare was accepted for this view and sequence number")
            return
        if not pp.batch:
            # The null request only fills gaps in a NEW-VIEW's O (C&L 4.4), installed without this
            # handler; an honest primary never proposes an empty batch.
            self._out.reject(pp, "null request outside a new-view")
            return
        oversized = self._oversized(pp.batch)
        if oversized:
            self._out.reject(pp, oversized)
            return
        if pp.replica != self._replica.id and not all(verify_message(self._verifier, r) for r in pp.batch):
            self._out.reject(pp, "batch holds a request with a bad client signature")
            return
        self.accept_pre_prepare(pp)

    def _oversized(self, batch: tuple[Request, ...]) -> str:
        """Why ``batch`` breaks the byte limits (which keep every view-change and new-view within a
        frame), or "" if it does not."""
        sizes = [codec.request_size(request) for request in batch]
        if max(sizes, default=0) > self._config.max_request_bytes:
            return f"batch holds a request of {max(sizes)} bytes, above max_request_bytes"
        if sum(sizes) > self._config.max_batch_bytes:
            return f"batch of {sum(sizes)} bytes exceeds max_batch_bytes ({self._config.max_batch_bytes})"
        return ""

    def accept_pre_prepare(self, pp: PrePrepare, persist: bool = True) -> None:
        """Log a pre-prepare (``persist`` is False for those that arrive inside a persisted new-view)."""
        own_id = self._replica.id
        slot = self._slot(pp.view, pp.seq)
        slot.pre_prepare = pp
        if persist:
            self._out.persist(pp)
        if pp.replica == own_id:
            self.next_seq = max(self.next_seq, pp.seq + 1)
            self._mark_proposed((r.client, r.timestamp) for r in pp.batch)
        self._out.event(EventKind.PRE_PREPARED, seq=pp.seq, digest=pp.digest)
        if pp.replica != own_id:
            prepare = self._out.sign(Prepare(pp.view, pp.seq, pp.digest, own_id))
            self._record_prepare(prepare)
            self._out.broadcast(prepare)
        self.check_prepared(pp.view, pp.seq)

    def _on_prepare(self, prepare: Prepare) -> None:
        if prepare.replica == self._config.primary(prepare.view):
            self._out.reject(prepare, "the primary does not send prepares")
            return
        if not self._record_prepare(prepare):
            return
        self.check_prepared(prepare.view, prepare.seq)

    def _record_prepare(self, prepare: Prepare) -> bool:
        """Store a prepare; False if its sender already voted for this (view, seq)."""
        slot = self._slot(prepare.view, prepare.seq)
        if not _first_vote(slot.prepares, prepare.replica):
            return False
        slot.prepares.setdefault(prepare.digest, {})[prepare.replica] = prepare
        self._out.persist(prepare)
        return True

    def check_prepared(self, view: int, seq: int) -> None:
        """prepared(m, v, n, i): the pre-prepare plus 2f matching prepares from distinct backups."""
        slot = self._slot(view, seq)
        pp = slot.pre_prepare
        if pp is None or slot.prepared:
            return
        votes = slot.prepares.get(pp.digest, {})
        if len(votes) < prepare_quorum(self._config.n, self._config.f):
            return
        slot.prepared = True
        chosen = tuple(votes[r] for r in sorted(votes)[: prepare_quorum(self._config.n, self._config.f)])
        self.prepared_certificates[seq] = PreparedCertificate(pp, chosen)
        self._out.event(EventKind.PREPARED, seq=seq, digest=pp.digest)
        commit = self._out.sign(Commit(view, seq, pp.digest, self._replica.id))
        self._record_commit(commit)
        self._out.broadcast(commit)
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
        self._out.persist(commit)
        return True

    def _check_committed(self, view: int, seq: int) -> None:
        """committed-local(m, v, n, i): prepared plus 2f+1 matching commits (own included)."""
        slot = self._slot(view, seq)
        pp = slot.pre_prepare
        if pp is None or not slot.prepared or slot.committed:
            return
        if len(slot.commits.get(pp.digest, {})) < commit_quorum(self._config.n, self._config.f):
            return
        slot.committed = True
        votes = slot.commits[pp.digest]
        commits = tuple(votes[r] for r in sorted(votes)[: commit_quorum(self._config.n, self._config.f)])
        self.committed[seq] = CommittedCertificate(pp, commits)
        self._out.event(EventKind.COMMITTED, seq=seq, digest=pp.digest, view=view)
        self.execute_ready()

    # ------------------------------------------------------------ certificates from elsewhere

    def restore_prepared_certificate(self, certificate: PreparedCertificate) -> None:
        """Keep a P-set entry across a restart (it may come from a view whose messages were compacted)."""
        seq = certificate.pre_prepare.seq
        current = self.prepared_certificates.get(seq)
        if seq <= self._replica.stable_checkpoint:
            return
        if current is None or current.pre_prepare.view < certificate.pre_prepare.view:
            self.prepared_certificates[seq] = certificate

    def restore_committed(self, certificate: CommittedCertificate) -> None:
        """Re-commit a batch across a restart (its view's messages may have been compacted away);
        executing it again from the stable snapshot restores the executed state."""
        seq = certificate.pre_prepare.seq
        if seq > self._replica.stable_checkpoint and seq not in self.committed:
            self.committed[seq] = certificate
            self.execute_ready()

    def commit_fetched(self, certificate: CommittedCertificate) -> None:
        """Commit a batch a peer proved committed (``StateTransfer.on_catch_up``); it is persisted like
        the certificates assembled here, so a restart executes it again."""
        seq = certificate.pre_prepare.seq
        self.committed[seq] = certificate
        self.fetched.add(seq)
        self._out.persist(certificate)
        self.execute_ready()

    # ------------------------------------------------------------ execution

    def execute_ready(self) -> None:
        """Execute committed batches strictly in sequence order (never re-entered: a checkpoint taken
        inside the loop can lead back here, and the running loop picks that work up)."""
        if self._executing:
            return
        self._executing = True
        executed_any = False
        try:
            while (certificate := self.committed.get(self.last_executed + 1)) is not None:
                pp = certificate.pre_prepare
                seq = pp.seq
                if seq in self.fetched:
                    self.fetched.discard(seq)
                    self._out.event(EventKind.CAUGHT_UP, seq=seq, digest=pp.digest)
                for request in pp.batch:
                    executed_any |= self._execute_request(request, seq)
                self.last_executed = seq
                self._out.event(EventKind.EXECUTED, seq=seq, digest=pp.digest)
                if seq % self._config.checkpoint_interval == 0:
                    self._replica.checkpoints.take(seq)
        finally:
            self._executing = False
        if executed_any:
            self._replica.view_changes.progressed()

    def _execute_request(self, request: Request, seq: int) -> bool:
        """Execute once per (client, timestamp); a request ordered again is answered from the table."""
        key = (request.client, request.timestamp)
        if self.pending.pop(key, None) is not None:
            self._pending_by_client[request.client] -= 1
            if not self._pending_by_client[request.client]:
                del self._pending_by_client[request.client]
        self._pending_total -= self._pending_bytes.pop(key, 0)
        self._proposed.discard(key)
        self._unproposed.pop(key, None)
        record = self.clients.get(request.client)
        if record is not None and request.timestamp <= record.timestamp:
            if request.timestamp == record.timestamp:
                self._out.reply(request.client, request.timestamp, record.result)
            return False
        result = self._app.execute(request.client, request.operation, seq)
        self.clients[request.client] = ClientRecord(request.client, request.timestamp, result)
        self._out.reply(request.client, request.timestamp, result)
        return True

    def encode_service_state(self) -> bytes:
        """``codec.encode(ServiceState(app snapshot, clients in order))``, the client table from
        its kept encodings."""
        return codec.encode_fields(
            ServiceState, {"app_state": self._app.snapshot()}, {"clients": self.clients.encoded()}
        )

    def restore_service_state(self, seq: int, snapshot: bytes) -> None:
        """Adopt a certified snapshot taken at ``seq``: the application, the client table, and
        execution advanced to it; requests it already executed no longer wait."""
        state = codec.decode_unlimited(snapshot, ServiceState)
        self._app.restore(state.app_state)
        self.clients = EncodedRecords((record.client, record) for record in state.clients)
        self.pending = {key: r for key, r in self.pending.items() if not self.already_executed(r)}
        self._unproposed = {key: None for key in self._unproposed if key in self.pending}
        self._pending_bytes = {key: self._pending_bytes[key] for key in self.pending}
        self._pending_total = sum(self._pending_bytes.values())
        self._pending_by_client = Counter(client for client, _ in self.pending)
        self.last_executed = max(self.last_executed, seq)

    # ------------------------------------------------------------ garbage collection and views

    def discard_through(self, seq: int) -> None:
        """Forget the agreement state at or below a stable checkpoint ``seq``."""
        self.slots = {key: slot for key, slot in self.slots.items() if key[1] > seq}
        self.prepared_certificates = {n: c for n, c in self.prepared_certificates.items() if n > seq}
        self.committed = {n: c for n, c in self.committed.items() if n > seq}
        self.fetched = {n for n in self.fetched if n > seq}

    def leave_views_below(self, view: int) -> None:
        """Drop the slots of views before ``view``, except prepared, uncommitted and unexecuted ones
        (``_completes_left_view_commit``); forget what we proposed there."""
        self.slots = {
            (slot_view, seq): slot
            for (slot_view, seq), slot in self.slots.items()
            if slot_view >= view or (slot.prepared and not slot.committed and seq > self.last_executed)
        }
        self._proposed = set()
        self._unproposed = dict.fromkeys(self.pending)


def _first_vote(votes: Mapping[bytes, Mapping[int, object]], sender: int) -> bool:
    """True if ``sender`` has no vote yet among ``votes`` (digest -> sender -> vote): a replica votes
    once per (view, seq); a second vote, for any digest, is equivocation and is not counted."""
    return all(sender not in by_sender for by_sender in votes.values())
