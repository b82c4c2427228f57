"""Ledger transactions: the ``operation`` bytes of a client request are ``codec.encode(tx)``.

The transaction's sender is the authenticated client of the PBFT request, so no
transaction carries its own signature. All amounts, scores and heights are
integers (scores in fixed point, e.g. basis points); nothing is a float, so
every replica computes the same result. Heights are logical: the sequence
number of the batch that executes the transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

ACCEPT, REJECT = 1, 0
"""The two verdicts of a ``Validate``."""


@dataclass(frozen=True)
class Register:
    """Makes the sender a participant (miner, validator, challenger) with ``public_key`` and moves
    ``stake`` from its balance into its stake (what a proved-wrong validator loses)."""

    TAG: ClassVar[int] = 32
    public_key: bytes
    stake: int


@dataclass(frozen=True)
class Order:
    """Posts a training task. ``bounty`` (paid to the best qualifying claim) and ``validator_fee``
    (shared by the correct validators) are escrowed. Claims are accepted up to height ``deadline``;
    a claim qualifies with ``quorum`` accepting validations of score at least ``min_score``."""

    TAG: ClassVar[int] = 33
    task: bytes
    bounty: int
    validator_fee: int
    deadline: int
    min_score: int
    quorum: int


@dataclass(frozen=True)
class Claim:
    """A miner's claim on order ``order_id``: the trained model's commitment, its claimed score and
    the Merkle root of the per-segment training proof."""

    TAG: ClassVar[int] = 34
    order_id: int
    model_commitment: bytes
    claimed_score: int
    proof_root: bytes


@dataclass(frozen=True)
class Validate:
    """A validator's verdict on claim ``claim_id`` after re-executing the ``sample`` of segments
    derived from ``seed_signature`` (its signature over the order and proof root)."""

    TAG: ClassVar[int] = 35
    claim_id: int
    verdict: int
    score: int
    sample: tuple[int, ...]
    seed_signature: bytes


@dataclass(frozen=True)
class Challenge:
    """Fraud proof against claim ``claim_id``: ``evidence`` shows that ``segment`` was not produced by
    honest training. Validators that accepted the claim after re-executing that segment are
    proved wrong."""

    TAG: ClassVar[int] = 36
    claim_id: int
    segment: int
    evidence: bytes


@dataclass(frozen=True)
class Finalize:
    """Settles order ``order_id`` once its challenge window has passed."""

    TAG: ClassVar[int] = 37
    order_id: int


@dataclass(frozen=True)
class Receipt:
    """The result of one transaction: ``ok`` is 1 when applied, 0 when rejected (then ``reason`` says
    why and the state is unchanged); ``created_id`` names a new order or claim (0 otherwise)."""

    TAG: ClassVar[int] = 38
    height: int
    ok: int
    reason: str
    created_id: int


Transaction = Register | Order | Claim | Validate | Challenge | Finalize
"""Every ledger transaction."""

TRANSACTION_TYPES: tuple[type[Transaction], ...] = (Register, Order, Claim, Validate, Challenge, Finalize)

WIRE_TYPES: tuple[type, ...] = (*TRANSACTION_TYPES, Receipt)
"""Ledger types the codec encodes (ledger state records are added by ``pot_impl.ledger.state``)."""
