"""Bringing a replica that fell behind up to date (Castro and Liskov, TOCS 2002, sections 5.2-5.3).

A part of ``Replica``. Two ways: a replica that learns of a certified checkpoint it has not
reached fetches the certified state (``StateRequest``/``StateResponse``); a replica that waits
reports how far it executed (``Fetch``), and replicas ahead send it each batch it missed with
the certificate that committed it (``CatchUp``). The network never retransmits, so without
these a lost message could stall a replica for good.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pot_impl import codec
from pot_impl.auth import Verifier
from pot_impl.pbft.certificates import checkpoint_proof_digest, state_digest, valid_committed_certificate
from pot_impl.pbft.io import EventKind, Timer, TimerKind
from pot_impl.pbft.messages import (
    CatchUp,
    Fetch,
    ServiceState,
    StableSnapshot,
    StateRequest,
    StateResponse,
)
from pot_impl.pbft.outbox import Outbox

if TYPE_CHECKING:
    from pot_impl.pbft.replica import Replica

_TIMER = Timer(TimerKind.STATE_TRANSFER, 0)


class StateTransfer:
    """State transfer and catch-up for ``replica``."""

    def __init__(self, replica: Replica, outbox: Outbox, verifier: Verifier) -> None:
        self._replica = replica
        self._config = replica.config
        self._out = outbox
        self._verifier = verifier
        self.target: tuple[int, bytes] | None = None
        """A certified checkpoint (seq, state digest) this replica has not reached yet."""

    # ------------------------------------------------------------ state transfer

    def request_state(self, seq: int, digest: bytes) -> None:
        """A checkpoint at ``seq`` is certified but not reached here. If it lies beyond the high
        watermark the replica cannot catch up through agreement, so ask now; otherwise give normal
        execution one state-transfer timeout to get there first."""
        if self.target is not None and self.target[0] >= seq:
            return
        self.target = (seq, digest)
        if seq > self._replica.high_watermark:
            self._send_state_request()
        self._out.set_timer(_TIMER, self._config.state_transfer_timeout_ms)

    def reached(self, seq: int) -> None:
        """A checkpoint at ``seq`` became stable here: a target at or below it is met."""
        if self.target is not None and self.target[0] <= seq:
            self.target = None
            self._out.cancel_timer(_TIMER)

    def on_timer(self, timer: Timer) -> None:
        if self.target is not None and self.target[0] > self._replica.last_executed:
            self._send_state_request()
            self._out.set_timer(timer, self._config.state_transfer_timeout_ms)

    def resume(self) -> None:
        """After a restart: keep asking for a target recovered from the log."""
        if self.target is not None:
            self._out.set_timer(_TIMER, self._config.state_transfer_timeout_ms)

    def _send_state_request(self) -> None:
        if self.target is None:
            return
        seq, digest = self.target
        self._out.event(EventKind.STATE_TRANSFER, seq=seq, digest=digest, reason="requested")
        self._out.broadcast(self._out.sign(StateRequest(seq, self._replica.id)))

    def on_state_request(self, request: StateRequest) -> None:
        replica = self._replica
        stable_seq = replica.stable_checkpoint
        if request.replica == replica.id or stable_seq < request.seq or stable_seq == 0:
            return
        self._out.send(request.replica, self._out.sign(StateResponse(replica.stable_snapshot, replica.id)))

    def on_state_response(self, response: StateResponse) -> None:
        stable = response.stable
        if stable.seq <= self._replica.last_executed:
            return
        certified = checkpoint_proof_digest(self._config, self._verifier, stable.seq, stable.proof)
        if certified is None or certified != state_digest(stable.snapshot):
            self._out.reject(response, "snapshot does not match a valid checkpoint certificate")
            return
        try:
            codec.decode(stable.snapshot, ServiceState)
        except codec.DecodeError:
            self._out.reject(response, "certified snapshot does not decode")
            return
        self.install(stable)

    def install(self, stable: StableSnapshot) -> None:
        """Adopt a certified stable checkpoint: restore the service state and advance execution to it."""
        replica = self._replica
        replica.normal_case.restore_service_state(stable.seq, stable.snapshot)
        checkpoints = replica.checkpoints
        checkpoints.own[stable.seq] = stable.snapshot
        digest = state_digest(stable.snapshot)
        self._out.event(EventKind.STATE_TRANSFER, seq=stable.seq, digest=digest, reason="installed")
        if stable.seq > checkpoints.stable_seq:
            checkpoints.make_stable(stable.seq, stable.proof, stable.snapshot)
        replica.normal_case.execute_ready()

    # ------------------------------------------------------------ catch-up

    def send_fetch(self) -> None:
        """Report how far we executed, so that replicas ahead send what we miss (the network does not
        retransmit, and a request we never saw a quorum for would otherwise wait for a checkpoint)."""
        self._out.broadcast(self._out.sign(Fetch(self._replica.last_executed, self._replica.id)))

    def on_fetch(self, fetch: Fetch) -> None:
        """C&L TOCS 5.2: retransmit to a replica that reports it is behind. Below our stable checkpoint
        only the certified state helps (5.3); above it, each batch we executed, with the certificate
        it committed on, one per message, at most one watermark window past what the fetcher
        executed. Only executed batches: the fetcher then executes nothing that no honest replica
        executed before it (the spec's CatchUp), and its checkpoints match ours."""
        replica = self._replica
        if fetch.replica == replica.id:
            return
        stable_seq = replica.stable_checkpoint
        if 0 <= fetch.last_executed < stable_seq:
            self._out.send(fetch.replica, self._out.sign(StateResponse(replica.stable_snapshot, replica.id)))
        start = max(fetch.last_executed, stable_seq)
        last = min(replica.last_executed, start + self._config.watermark_window)
        # Every seq in (stable, last executed] executed from ``committed``, which keeps it until the
        # next stable checkpoint.
        committed = replica.normal_case.committed
        for seq in range(start + 1, last + 1):
            self._out.send(fetch.replica, self._out.sign(CatchUp(committed[seq], replica.id)))

    def on_catch_up(self, catch_up: CatchUp) -> None:
        """Adopt a committed batch we have not executed: the certificate proves it committed, so
        executing it is safe in any view, also during a view change. It is persisted like the
        certificates we assemble ourselves, so a restart executes it again."""
        normal_case = self._replica.normal_case
        certificate = catch_up.certificate
        pp = certificate.pre_prepare
        if (
            pp.seq <= normal_case.last_executed
            or pp.seq in normal_case.committed
            or not self._replica.checkpoints.in_window(pp.seq)
        ):
            return
        if not valid_committed_certificate(self._config, self._verifier, certificate):
            self._out.reject(catch_up, "invalid committed certificate")
            return
        normal_case.commit_fetched(certificate)
