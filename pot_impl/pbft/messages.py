"""Every message the replicas and clients exchange, as frozen dataclasses.

Names follow Castro and Liskov (OSDI'99, section 4). Each top-level message
names its sender (``client`` or ``replica``) and carries a ``signature`` over
its canonical encoding without that field (see ``pot_impl.codec.signing_payload``),
so a message can be checked without knowing which connection it came on.

Field types are restricted to ``int``, ``bytes``, ``str``, nested wire types and
homogeneous tuples of those: that is all ``pot_impl.codec`` can encode, which
keeps every encoding canonical. Each wire type has a unique ``TAG``.

A *batch* is the tuple of client requests one pre-prepare orders; the empty
batch is the *null request* that a new primary uses to fill gaps (section 4.4).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar


@dataclass(frozen=True)
class Request:
    """<REQUEST, o, t, c>: operation ``operation`` from ``client`` with client timestamp ``timestamp``.

    Timestamps of one client are totally ordered; a replica executes each
    (client, timestamp) at most once and re-sends the stored reply for a repeat.
    """

    TAG: ClassVar[int] = 1
    client: str
    timestamp: int
    operation: bytes
    signature: bytes = b""


@dataclass(frozen=True)
class Reply:
    """<REPLY, v, t, c, i, r>: the result ``result`` of the client's request ``timestamp``."""

    TAG: ClassVar[int] = 2
    view: int
    timestamp: int
    client: str
    replica: int
    result: bytes
    signature: bytes = b""


@dataclass(frozen=True)
class PrePrepare:
    """<PRE-PREPARE, v, n, d> with the batch piggybacked; ``digest`` must equal ``batch_digest(batch)``."""

    TAG: ClassVar[int] = 3
    view: int
    seq: int
    digest: bytes
    batch: tuple[Request, ...]
    replica: int
    signature: bytes = b""


@dataclass(frozen=True)
class Prepare:
    """<PREPARE, v, n, d, i> from a backup that accepted the pre-prepare."""

    TAG: ClassVar[int] = 4
    view: int
    seq: int
    digest: bytes
    replica: int
    signature: bytes = b""


@dataclass(frozen=True)
class Commit:
    """<COMMIT, v, n, d, i> from a replica for which the entry is prepared."""

    TAG: ClassVar[int] = 5
    view: int
    seq: int
    digest: bytes
    replica: int
    signature: bytes = b""


@dataclass(frozen=True)
class Checkpoint:
    """<CHECKPOINT, n, d, i>: the digest of the replica's state after executing sequence ``seq``."""

    TAG: ClassVar[int] = 6
    seq: int
    state_digest: bytes
    replica: int
    signature: bytes = b""


@dataclass(frozen=True)
class PreparedCertificate:
    """One element of a view-change's P set: a pre-prepare and 2f matching prepares (section 4.4)."""

    TAG: ClassVar[int] = 7
    pre_prepare: PrePrepare
    prepares: tuple[Prepare, ...]


@dataclass(frozen=True)
class CommittedCertificate:
    """committed-local (section 4.2): a pre-prepare and 2f+1 matching commits from distinct replicas.

    A replica persists one for every committed sequence number above its stable checkpoint, so a
    restart re-executes batches committed in a view whose messages the log compaction has dropped,
    and sends them, inside ``CatchUp``, to a replica that reports with ``Fetch`` that it is behind."""

    TAG: ClassVar[int] = 15
    pre_prepare: PrePrepare
    commits: tuple[Commit, ...]


@dataclass(frozen=True)
class ViewChange:
    """<VIEW-CHANGE, v+1, n, C, P, i>.

    ``stable_seq`` is the replica's last stable checkpoint n; ``checkpoint_proof``
    is C (2f+1 checkpoint messages for it, empty for the genesis checkpoint 0);
    ``prepared`` is P (one certificate per sequence number above n that
    prepared at the replica, from the highest view in which it prepared).
    """

    TAG: ClassVar[int] = 8
    new_view: int
    stable_seq: int
    checkpoint_proof: tuple[Checkpoint, ...]
    prepared: tuple[PreparedCertificate, ...]
    replica: int
    signature: bytes = b""


@dataclass(frozen=True)
class NewView:
    """<NEW-VIEW, v+1, V, O>: V is 2f+1 view-changes, O the pre-prepares the new primary re-proposes."""

    TAG: ClassVar[int] = 9
    view: int
    view_changes: tuple[ViewChange, ...]
    pre_prepares: tuple[PrePrepare, ...]
    replica: int
    signature: bytes = b""


@dataclass(frozen=True)
class StableSnapshot:
    """A stable checkpoint with its state: ``snapshot`` hashes to the digest that 2f+1 checkpoints in
    ``proof`` certify. Carried by state transfer and persisted for crash recovery."""

    TAG: ClassVar[int] = 10
    seq: int
    snapshot: bytes
    proof: tuple[Checkpoint, ...]


@dataclass(frozen=True)
class StateRequest:
    """Asks the other replicas for a stable checkpoint at ``seq`` or later (state transfer)."""

    TAG: ClassVar[int] = 11
    seq: int
    replica: int
    signature: bytes = b""


@dataclass(frozen=True)
class StateResponse:
    """Answers a ``StateRequest``; the receiver trusts the 2f+1 signed checkpoints, not the sender."""

    TAG: ClassVar[int] = 12
    stable: StableSnapshot
    replica: int
    signature: bytes = b""


@dataclass(frozen=True)
class Fetch:
    """Reports that the sender executed every sequence number up to ``last_executed`` and asks for
    what it misses (C&L TOCS 5.2: retransmission to a replica that reports it is behind). Sent when
    the view-change timer expires; answered with ``CatchUp`` messages, preceded by a
    ``StateResponse`` if the answering replica's stable checkpoint is above ``last_executed``."""

    TAG: ClassVar[int] = 16
    last_executed: int
    replica: int
    signature: bytes = b""


@dataclass(frozen=True)
class CatchUp:
    """Answers a ``Fetch`` with one committed batch; the receiver trusts the certificate (the
    primary's pre-prepare and 2f+1 matching commits), not the sender."""

    TAG: ClassVar[int] = 17
    certificate: CommittedCertificate
    replica: int
    signature: bytes = b""


@dataclass(frozen=True)
class ClientRecord:
    """The last request executed for one client and its result, kept to deduplicate and re-reply."""

    TAG: ClassVar[int] = 13
    client: str
    timestamp: int
    result: bytes


@dataclass(frozen=True)
class ServiceState:
    """The replicated service state a checkpoint certifies: the application's snapshot plus the
    client table (so deduplication survives state transfer). ``StableSnapshot.snapshot`` is its encoding."""

    TAG: ClassVar[int] = 14
    app_state: bytes
    clients: tuple[ClientRecord, ...]


ReplicaMessage = (
    PrePrepare
    | Prepare
    | Commit
    | Checkpoint
    | ViewChange
    | NewView
    | StateRequest
    | StateResponse
    | Fetch
    | CatchUp
)
"""Messages exchanged between replicas."""

Message = Request | Reply | ReplicaMessage
"""Every top-level (signed) message on the wire."""

SIGNED_TYPES: tuple[type[Message], ...] = (
    Request,
    Reply,
    PrePrepare,
    Prepare,
    Commit,
    Checkpoint,
    ViewChange,
    NewView,
    StateRequest,
    StateResponse,
    Fetch,
    CatchUp,
)
"""The top-level message types, each with a ``signature`` field."""

WIRE_TYPES: tuple[type, ...] = (
    *SIGNED_TYPES,
    PreparedCertificate,
    CommittedCertificate,
    StableSnapshot,
    ClientRecord,
    ServiceState,
)
"""Every PBFT type the codec can encode."""
