"""What goes into a replica (inputs) and what comes out (effects).

The replica is sans-IO: ``Replica.handle(input)`` returns a list of effects
and does nothing else. The runtime (asyncio + SQLite) or the simulator
performs them. Contract for whoever performs effects:

* ``Persist`` and ``CompactLog`` effects come first in the list; they must be durable before any
  ``SendTo``/``Broadcast``/``ReplyToClient`` of the same list is performed
  (write-ahead), otherwise a restarted replica could contradict what it sent.
* ``SetTimer`` replaces a pending timer with the same ``Timer`` value.
* ``Emit`` carries one structured event per protocol step for the JSON event log.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from pot_impl.pbft.messages import (
    Checkpoint,
    Commit,
    CommittedCertificate,
    Message,
    NewView,
    Prepare,
    PreparedCertificate,
    PrePrepare,
    ReplicaMessage,
    Reply,
    Request,
    StableSnapshot,
    StateRequest,
    StateResponse,
    ViewChange,
)


class TimerKind(enum.StrEnum):
    """The replica's timers."""

    VIEW_CHANGE = "view-change"
    """Runs while a request waits to execute, or while a view change waits for its new-view."""
    BATCH = "batch"
    """The primary's batch timeout: flush a partial batch."""
    STATE_TRANSFER = "state-transfer"
    """Retry a state request that no one answered."""


@dataclass(frozen=True)
class Timer:
    """A timer identity; ``view`` scopes it so a stale firing is recognised and ignored."""

    kind: TimerKind
    view: int


# ---------------------------------------------------------------- inputs


@dataclass(frozen=True)
class MessageReceived:
    """A decoded message from another replica (or a client's request relayed by one)."""

    message: Message


@dataclass(frozen=True)
class TimerFired:
    """A timer set earlier by ``SetTimer`` expired."""

    timer: Timer


@dataclass(frozen=True)
class ClientRequestReceived:
    """A request arrived directly from a client."""

    request: Request


Input = MessageReceived | TimerFired | ClientRequestReceived


# ---------------------------------------------------------------- effects


@dataclass(frozen=True)
class SendTo:
    """Send ``message`` to replica ``replica``."""

    replica: int
    message: ReplicaMessage | Request


@dataclass(frozen=True)
class Broadcast:
    """Send ``message`` to every other replica."""

    message: ReplicaMessage | Request


@dataclass(frozen=True)
class SetTimer:
    """Arm ``timer`` to fire after ``delay_ms`` milliseconds (logical ticks in the simulator)."""

    timer: Timer
    delay_ms: int


@dataclass(frozen=True)
class CancelTimer:
    """Disarm ``timer`` if pending."""

    timer: Timer


@dataclass(frozen=True)
class ReplyToClient:
    """Deliver ``reply`` to client ``client``. The reply is unsigned: whoever delivers it
    authenticates it on the way (the runtime signs each frame of replies to a connection once, as
    Castro and Liskov authenticate replies on the client's channel rather than one by one)."""

    client: str
    reply: Reply


DurableRecord = ReplicaMessage | StableSnapshot | PreparedCertificate | CommittedCertificate
"""What ``Persist`` carries; every variant is a codec wire type (store ``codec.encode(record)``,
read back with ``codec.decode(data, DURABLE_TYPES)``)."""

DURABLE_TYPES: tuple[type[DurableRecord], ...] = (
    PrePrepare,
    Prepare,
    Commit,
    Checkpoint,
    ViewChange,
    NewView,
    StateRequest,
    StateResponse,
    StableSnapshot,
    PreparedCertificate,
    CommittedCertificate,
)


@dataclass(frozen=True)
class Persist:
    """Append ``record`` to the replica's durable log.

    Records are the protocol messages the replica accepted or sent, in order,
    plus a ``StableSnapshot`` when it installs state. On restart, pass the
    stored records in their original order to ``Replica.recover``.
    """

    record: DurableRecord


@dataclass(frozen=True)
class CompactLog:
    """Atomically replace the whole durable log with ``records`` (emitted when a checkpoint becomes
    stable: it starts with the ``StableSnapshot`` and keeps only what is still needed)."""

    records: tuple[DurableRecord, ...]


@dataclass(frozen=True)
class Emit:
    """A structured event for the event log (one per protocol step)."""

    event: ProtocolEvent


Effect = SendTo | Broadcast | SetTimer | CancelTimer | ReplyToClient | Persist | CompactLog | Emit


# ---------------------------------------------------------------- events


class EventKind(enum.StrEnum):
    """The protocol steps that the event log records."""

    RECEIVED = "received"
    SENT = "sent"
    REJECTED = "rejected"
    REQUEST = "request"
    PRE_PREPARED = "pre-prepared"
    PREPARED = "prepared"
    COMMITTED = "committed"
    CAUGHT_UP = "caught-up"
    """The next batch executes on a certificate fetched from another replica (``Fetch``/``CatchUp``),
    not on a commit quorum of its own; its ``executed`` event follows."""
    EXECUTED = "executed"
    CHECKPOINT = "checkpoint"
    CHECKPOINT_STABLE = "checkpoint-stable"
    VIEW_CHANGE = "view-change"
    NEW_VIEW = "new-view"
    STATE_TRANSFER = "state-transfer"
    RECOVERED = "recovered"


@dataclass(frozen=True)
class ProtocolEvent:
    """One protocol step at replica ``node``.

    ``view`` is the replica's view after the step; ``seq`` and ``digest`` name
    the log entry or checkpoint concerned (-1 / empty when none); ``peer`` is
    the other replica of a received/sent message (-1 for broadcasts or none);
    ``message`` the message type name; ``reason`` why something was rejected.

    A ``received``/``sent`` event also identifies its message, so a trace
    validator can pair each receipt with the send it came from: ``seq`` and
    ``digest`` are the message's (see ``pot_impl.pbft.outbox.message_identity``: a batch
    digest for agreement messages, equal to the ``pre-prepared``/``committed``
    digest of the same (view, seq)), ``message_view`` the view it is for (-1 if
    it has none) and ``sender`` the replica that signed it (-1 for a client's).
    """

    kind: EventKind
    node: int
    view: int
    seq: int = -1
    digest: bytes = b""
    peer: int = -1
    message: str = ""
    reason: str = ""
    message_view: int = -1
    sender: int = -1

    def to_json(self) -> dict[str, str | int]:
        """A JSON-ready dict (digest in hex)."""
        return {
            "kind": self.kind.value,
            "node": self.node,
            "view": self.view,
            "seq": self.seq,
            "digest": self.digest.hex(),
            "peer": self.peer,
            "message": self.message,
            "reason": self.reason,
            "message_view": self.message_view,
            "sender": self.sender,
        }
