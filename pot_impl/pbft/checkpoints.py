"""PBFT's checkpoints and garbage collection (Castro and Liskov, OSDI'99, section 4.3).

A part of ``Replica``. Every ``checkpoint_interval`` sequence numbers the replica snapshots its
service state and broadcasts the digest; 2f+1 matching digests make that checkpoint stable. The
stable checkpoint is the low watermark h, everything at or below it is discarded, and it is what
state transfer serves.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pot_impl.pbft.certificates import state_digest
from pot_impl.pbft.io import EventKind
from pot_impl.pbft.messages import Checkpoint, StableSnapshot
from pot_impl.pbft.outbox import Outbox
from pot_impl.pbft.quorums import checkpoint_quorum

if TYPE_CHECKING:
    from pot_impl.pbft.replica import Replica


class Checkpoints:
    """Checkpoints of ``replica``, starting from the genesis state ``genesis`` (stable at 0)."""

    def __init__(self, replica: Replica, outbox: Outbox, genesis: bytes) -> None:
        self._replica = replica
        self._config = replica.config
        self._out = outbox
        self.stable_seq = 0
        self.stable_proof: tuple[Checkpoint, ...] = ()
        self.stable_snapshot = genesis
        self.own: dict[int, bytes] = {0: genesis}
        """This replica's own snapshot at each checkpoint not yet garbage-collected."""
        self.votes: dict[int, dict[int, Checkpoint]] = {}

    @property
    def stable(self) -> StableSnapshot:
        return StableSnapshot(self.stable_seq, self.stable_snapshot, self.stable_proof)

    @property
    def high_watermark(self) -> int:
        return self.stable_seq + self._config.watermark_window

    def in_window(self, seq: int) -> bool:
        """h < seq <= H."""
        return self.stable_seq < seq <= self.high_watermark

    def take(self, seq: int) -> None:
        """Snapshot the state just executed at ``seq`` and broadcast its digest."""
        snapshot = self._replica.normal_case.encode_service_state()
        self.own[seq] = snapshot
        checkpoint = self._out.sign(Checkpoint(seq, state_digest(snapshot), self._replica.id))
        self._out.event(EventKind.CHECKPOINT, seq=seq, digest=checkpoint.state_digest)
        self._record(checkpoint)
        self._out.broadcast(checkpoint)
        self.check_stable(seq)

    def on_checkpoint(self, checkpoint: Checkpoint) -> None:
        if checkpoint.seq <= self.stable_seq or checkpoint.seq % self._config.checkpoint_interval:
            return
        if self._record(checkpoint):
            self.check_stable(checkpoint.seq)

    def _record(self, checkpoint: Checkpoint) -> bool:
        """One vote per sender and seq; each sender keeps only its most recent window's worth of votes
        so a Byzantine replica cannot grow memory with far-future checkpoints."""
        votes = self.votes.setdefault(checkpoint.seq, {})
        if checkpoint.replica in votes:
            return False
        votes[checkpoint.replica] = checkpoint
        self._out.persist(checkpoint)
        limit = 2 * self._config.watermark_window // self._config.checkpoint_interval + 2
        held = sorted(seq for seq, v in self.votes.items() if checkpoint.replica in v)
        for seq in held[:-limit]:
            del self.votes[seq][checkpoint.replica]
        self.votes = {seq: v for seq, v in self.votes.items() if v}
        return checkpoint.replica in self.votes.get(checkpoint.seq, {})

    def adopt_proof(self, seq: int, proof: tuple[Checkpoint, ...]) -> None:
        """Count a NEW-VIEW's certificate for its checkpoint min-s (C&L 4.4) as votes, if it is ahead."""
        if seq > self.stable_seq:
            for checkpoint in proof:
                self.votes.setdefault(seq, {}).setdefault(checkpoint.replica, checkpoint)
            self.check_stable(seq)

    def _certified_digest(self, seq: int) -> tuple[bytes, tuple[Checkpoint, ...]] | None:
        """The digest that 2f+1 distinct replicas reported for checkpoint ``seq``, with their messages."""
        by_digest: dict[bytes, list[Checkpoint]] = {}
        for checkpoint in self.votes.get(seq, {}).values():
            by_digest.setdefault(checkpoint.state_digest, []).append(checkpoint)
        for digest, group in sorted(by_digest.items()):
            if len(group) >= checkpoint_quorum(self._config.n, self._config.f):
                quorum = checkpoint_quorum(self._config.n, self._config.f)
                proof = tuple(sorted(group, key=lambda c: c.replica)[:quorum])
                return digest, proof
        return None

    def check_stable(self, seq: int) -> None:
        certified = self._certified_digest(seq)
        if certified is None:
            return
        digest, proof = certified
        own = self.own.get(seq)
        if own is not None and state_digest(own) == digest:
            self.make_stable(seq, proof, own)
        elif seq > self._replica.last_executed:
            self._replica.state_transfer.request_state(seq, digest)
        else:
            self._out.event(
                EventKind.REJECTED, seq=seq, digest=digest, reason="own state differs from certified"
            )

    def make_stable(self, seq: int, proof: tuple[Checkpoint, ...], snapshot: bytes) -> None:
        """Advance the low watermark to ``seq`` and discard everything at or below it."""
        replica = self._replica
        self.stable_seq, self.stable_proof, self.stable_snapshot = seq, proof, snapshot
        replica.normal_case.discard_through(seq)
        self.own = {n: s for n, s in self.own.items() if n >= seq}
        self.votes = {n: v for n, v in self.votes.items() if n > seq}
        replica.state_transfer.reached(seq)
        self._out.event(EventKind.CHECKPOINT_STABLE, seq=seq, digest=state_digest(snapshot))
        self._out.compact(replica.durable_records)
        if replica.is_primary and replica.view_active:
            normal_case = replica.normal_case
            normal_case.next_seq = max(normal_case.next_seq, seq + 1)
            normal_case.propose_batches(flush=False)
