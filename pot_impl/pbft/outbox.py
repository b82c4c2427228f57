"""What one step of a replica asks its host to do, in the order the host must do it.

The replica's parts never perform I/O: they add effects here, and ``Replica.handle`` drains
them, durable records first (a message may be sent only once what it commits to is stored).
While a restarted replica replays its own records (``replaying``), every effect is
suppressed: replay rebuilds state and must neither re-send nor re-store anything.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

from pot_impl import codec
from pot_impl.auth import Signer, sign_message
from pot_impl.pbft.certificates import state_digest
from pot_impl.pbft.io import (
    Broadcast,
    CancelTimer,
    CompactLog,
    DurableRecord,
    Effect,
    Emit,
    EventKind,
    Persist,
    ProtocolEvent,
    ReplyToClient,
    SendTo,
    SetTimer,
    Timer,
)
from pot_impl.pbft.messages import (
    CatchUp,
    Checkpoint,
    Commit,
    Fetch,
    Message,
    NewView,
    Prepare,
    PrePrepare,
    ReplicaMessage,
    Reply,
    Request,
    StateResponse,
    ViewChange,
)

if TYPE_CHECKING:
    from pot_impl.pbft.replica import Replica

M = TypeVar("M", bound=ReplicaMessage)


class Outbox:
    """The effects of ``replica``'s current step; events are stamped with its current view."""

    def __init__(self, replica: Replica, signer: Signer) -> None:
        self._replica = replica
        self._id = replica.id
        self._signer = signer
        self._durable: list[Effect] = []
        self._effects: list[Effect] = []
        self.replaying = False

    def drain(self) -> list[Effect]:
        """The step's effects, durable ones first; the outbox is empty afterwards."""
        effects = self._durable + self._effects
        self._durable, self._effects = [], []
        return effects

    def discard(self) -> None:
        self._durable, self._effects = [], []

    def sign(self, message: M) -> M:
        return sign_message(self._signer, message)

    def event(
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
        if not self.replaying:
            stamped = self._replica.view if view is None else view
            event = ProtocolEvent(kind, self._id, stamped, seq, digest, peer, message, reason)
            self._effects.append(Emit(event))

    def reject(self, message: Message, reason: str) -> None:
        sender = getattr(message, "replica", -1)
        self.event(EventKind.REJECTED, peer=sender, message=type(message).__name__, reason=reason)

    def message_event(self, kind: EventKind, message: ReplicaMessage | Request, peer: int) -> None:
        """A ``received``/``sent`` event that names its message by type, sender, view, seq and digest."""
        if not self.replaying:
            view, seq, digest = message_identity(message)
            sender = -1 if isinstance(message, Request) else message.replica
            name = type(message).__name__
            current = self._replica.view
            event = ProtocolEvent(kind, self._id, current, seq, digest, peer, name, "", view, sender)
            self._effects.append(Emit(event))

    def persist(self, record: DurableRecord) -> None:
        if not self.replaying:
            self._durable.append(Persist(record))

    def compact(self, records: Callable[[], tuple[DurableRecord, ...]]) -> None:
        """Replace the durable log by ``records()`` (evaluated only when not replaying)."""
        if not self.replaying:
            self._durable.append(CompactLog(records()))

    def broadcast(self, message: ReplicaMessage | Request) -> None:
        if not self.replaying:
            self._effects.append(Broadcast(message))
            self.message_event(EventKind.SENT, message, peer=-1)

    def send(self, replica: int, message: ReplicaMessage | Request) -> None:
        if not self.replaying:
            self._effects.append(SendTo(replica, message))
            self.message_event(EventKind.SENT, message, peer=replica)

    def reply(self, client: str, timestamp: int, result: bytes) -> None:
        if not self.replaying:
            reply = Reply(self._replica.view, timestamp, client, self._id, result)
            self._effects.append(ReplyToClient(client, reply))

    def set_timer(self, timer: Timer, delay_ms: int) -> None:
        if not self.replaying:
            self._effects.append(SetTimer(timer, delay_ms))

    def cancel_timer(self, timer: Timer) -> None:
        if not self.replaying:
            self._effects.append(CancelTimer(timer))


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
