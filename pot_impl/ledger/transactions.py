"""Ledger transactions: the ``operation`` bytes of a client request are ``codec.encode(tx)``.

The transaction's sender is the authenticated client of the PBFT request, so no
transaction carries its own signature. Amounts, scores and heights are
integers (scores in fixed point, e.g. basis points); nothing is a float, so
every replica computes the same result. Time is logical: the *height* of a
transaction is the sequence number of the batch that executes it.

A claim is named by (order, trainer): one claim per trainer per order. With the
bisection dispute game (``LedgerParams.dispute_steps``), a dispute is named by
(order, trainer, segment, challenger) and its parties move with ``Reveal``,
``Bisect`` and ``Supply``; anyone ends it with ``Timeout`` once the party to
move let its deadline pass.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import ClassVar


class Role(enum.IntEnum):
    """What an account registered as."""

    NONE = 0
    TRAINER = 1
    VALIDATOR = 2


class Verdict(enum.IntEnum):
    """A validator's judgement of a claim."""

    ACCEPT = 0
    REJECT = 1


NO_SEGMENT = -1
"""``evidence_segment`` of an ACCEPT: it names no faked segment."""


@dataclass(frozen=True)
class Register:
    """Registers the sender as a trainer or validator with ``public_key`` (the key its sample-seed
    signatures verify under) and moves ``stake`` from its balance into its stake."""

    TAG: ClassVar[int] = 32
    role: int
    public_key: bytes
    stake: int


@dataclass(frozen=True)
class Order:
    """Posts training task ``task`` (opaque canonical bytes the proof checker understands);
    ``bounty`` (for the best qualifying claim) and ``fee`` (shared by the validators proved right)
    are escrowed. Claims and validations are accepted below height ``deadline``."""

    TAG: ClassVar[int] = 33
    task: bytes
    bounty: int
    fee: int
    deadline: int


@dataclass(frozen=True)
class Claim:
    """The sender (a trainer) claims order ``order_id`` with its model commitment, claimed score
    and the Merkle root of its per-segment training proof."""

    TAG: ClassVar[int] = 34
    order_id: int
    model_commitment: bytes
    claimed_score: int
    proof_root: bytes


@dataclass(frozen=True)
class Validate:
    """The sender (a validator) judges ``trainer``'s claim on ``order_id`` after re-executing
    ``sample``, which must derive from ``seed_signature`` (its signature over order and proof root).
    An ACCEPT repeats the claimed score; a REJECT names a sampled ``evidence_segment`` and carries
    the fraud proof ``evidence`` for it."""

    TAG: ClassVar[int] = 35
    order_id: int
    trainer: str
    verdict: int
    score: int
    sample: tuple[int, ...]
    seed_signature: bytes
    evidence_segment: int = NO_SEGMENT
    evidence: bytes = b""


@dataclass(frozen=True)
class Challenge:
    """Disputes ``validator``'s ACCEPT of ``trainer``'s claim on ``order_id``: ``evidence`` is a fraud
    proof for ``segment``. It is adjudicated on arrival (recorded as upheld or not; a challenge that
    was not upheld may be filed again with other evidence). With the dispute game it carries no
    evidence: it escrows the bond and opens a dispute of ``segment`` with the trainer."""

    TAG: ClassVar[int] = 36
    order_id: int
    trainer: str
    validator: str
    segment: int
    evidence: bytes


@dataclass(frozen=True)
class Reveal:
    """The trainer's move in its dispute with ``challenger`` over ``segment``: its committed state
    digest after the midpoint step, opened by ``opening`` (the claim and the segment's leaf with
    its Merkle path, in ``FraudEvidence``'s format) against the proof root."""

    TAG: ClassVar[int] = 39
    order_id: int
    segment: int
    challenger: str
    opening: bytes


@dataclass(frozen=True)
class Bisect:
    """The challenger's move: it agrees (1) with the revealed midpoint digest, and the dispute moves
    past it, or disagrees (0), and the dispute narrows to the steps before it."""

    TAG: ClassVar[int] = 40
    order_id: int
    trainer: str
    segment: int
    agree: int


@dataclass(frozen=True)
class Supply:
    """The trainer's last move, with one step left: ``state``, its encoded checkpoint after the
    agreed step, and ``opening`` (as for ``Reveal``, with the previous leaf for the segment's start);
    coordinators re-execute that one step and decide the dispute."""

    TAG: ClassVar[int] = 41
    order_id: int
    segment: int
    challenger: str
    state: bytes
    opening: bytes


@dataclass(frozen=True)
class Timeout:
    """Ends a dispute whose party to move let its deadline pass: that party loses. Anyone may send it."""

    TAG: ClassVar[int] = 42
    order_id: int
    trainer: str
    segment: int
    challenger: str


@dataclass(frozen=True)
class Finalize:
    """Settles order ``order_id`` once its challenge window has passed."""

    TAG: ClassVar[int] = 37
    order_id: int


@dataclass(frozen=True)
class Receipt:
    """The result of one transaction at ``height``: ``reason`` is ``"ok"`` when applied, otherwise
    why it was rejected (and the state is unchanged); ``created_id`` is a new order's id, else -1."""

    TAG: ClassVar[int] = 38
    height: int
    reason: str
    created_id: int = -1

    @property
    def ok(self) -> bool:
        return self.reason == "ok"


Transaction = Register | Order | Claim | Validate | Challenge | Reveal | Bisect | Supply | Timeout | Finalize
"""Every ledger transaction."""

TRANSACTION_TYPES: tuple[type[Transaction], ...] = (
    Register,
    Order,
    Claim,
    Validate,
    Challenge,
    Reveal,
    Bisect,
    Supply,
    Timeout,
    Finalize,
)

WIRE_TYPES: tuple[type, ...] = (*TRANSACTION_TYPES, Receipt)
"""Ledger transaction types the codec encodes."""
