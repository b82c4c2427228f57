"""The ledger's state records, as codec wire types: the snapshot is their canonical encoding."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import ClassVar


class OrderStatus(enum.IntEnum):
    """Life cycle of an order: open until Finalize settles it, exactly once."""

    OPEN = 0
    PAID = 1
    REFUNDED = 2


@dataclass(frozen=True)
class LedgerParams:
    """Protocol constants fixed at genesis; ``validation_quorum`` ACCEPTs qualify a claim."""

    TAG: ClassVar[int] = 48
    segments: int
    sample_size: int
    validation_quorum: int
    min_trainer_stake: int
    min_validator_stake: int
    challenge_window: int
    dispute_steps: int = 0
    """k, steps per segment, for the bisection dispute game; 0: a fraud proof re-executes a segment."""
    move_window: int = 0
    """Heights a dispute's party has for each move."""
    dispute_bond: int = 0
    """What a challenger escrows per dispute: returned if it wins, paid to the trainer otherwise."""


@dataclass(frozen=True)
class AccountRecord:
    TAG: ClassVar[int] = 49
    account: str
    balance: int
    stake: int
    role: int
    public_key: bytes


@dataclass(frozen=True)
class OrderRecord:
    """``escrow`` is what the order still holds; ``winner`` the paid trainer ("" if none)."""

    TAG: ClassVar[int] = 50
    order_id: int
    client: str
    task: bytes
    bounty: int
    fee: int
    deadline: int
    escrow: int
    status: int
    winner: str
    settled_at: int
    data_order_seed: bytes
    """Fixed by the ledger when the order executes (``Ledger`` derives it from its own state), so
    neither the client who posts ``task`` nor a trainer chooses the order in which data is seen."""


@dataclass(frozen=True)
class CommittedOrder:
    """What the ledger hands its ``ProofChecker`` as an order: the task bytes the client posted and
    the data-order seed the ledger fixed; ``codec.encode`` of it is the checker's ``order`` bytes."""

    TAG: ClassVar[int] = 55
    task: bytes
    data_order_seed: bytes


@dataclass(frozen=True)
class ClaimRecord:
    TAG: ClassVar[int] = 51
    order_id: int
    trainer: str
    model_commitment: bytes
    claimed_score: int
    proof_root: bytes


@dataclass(frozen=True)
class VoteRecord:
    """A validation; ``evidence_upheld`` is 1 when a REJECT's fraud proof checked."""

    TAG: ClassVar[int] = 52
    order_id: int
    trainer: str
    validator: str
    verdict: int
    score: int
    sample: tuple[int, ...]
    evidence_segment: int
    evidence_upheld: int


@dataclass(frozen=True)
class ChallengeRecord:
    TAG: ClassVar[int] = 53
    order_id: int
    trainer: str
    validator: str
    segment: int
    challenger: str
    upheld: int


class DisputeOutcome(enum.IntEnum):
    """How a dispute ended (the ledger specification's ``spec.dispute.Outcome``)."""

    OPEN = 0
    FRAUD_PROVED = 1
    """One step from the agreed state did not give the trainer's committed digest."""
    TRAINER_DEFAULTED = 2
    """The trainer missed a deadline or supplied a state that is not the committed one."""
    STEP_VALID = 3
    """One step from the agreed state gave the trainer's committed digest."""
    CHALLENGER_DEFAULTED = 4
    """The challenger missed a deadline."""

    @property
    def trainer_lost(self) -> bool:
        return self in (DisputeOutcome.FRAUD_PROVED, DisputeOutcome.TRAINER_DEFAULTED)


@dataclass(frozen=True)
class DisputeRecord:
    """A bisection dispute of ``segment`` of the claim (order, trainer) by ``challenger``: steps
    ``lo`` (agreed) to ``hi`` (disputed) of the segment remain; ``revealed`` is 1 once the trainer
    revealed ``digest``, its state after the midpoint (the challenger moves next); the party to move
    may move up to height ``due``. A rejecting validator disputes with its stake (``bond`` 0)."""

    TAG: ClassVar[int] = 56
    order_id: int
    trainer: str
    segment: int
    challenger: str
    bond: int
    lo: int
    hi: int
    revealed: int
    digest: bytes
    due: int
    moves: int
    outcome: int


@dataclass(frozen=True)
class LedgerSnapshot:
    """The whole ledger state in canonical order (every tuple sorted by its key)."""

    TAG: ClassVar[int] = 54
    params: LedgerParams
    height: int
    accounts: tuple[AccountRecord, ...]
    orders: tuple[OrderRecord, ...]
    claims: tuple[ClaimRecord, ...]
    votes: tuple[VoteRecord, ...]
    challenges: tuple[ChallengeRecord, ...]
    slashed: tuple[str, ...]
    disputes: tuple[DisputeRecord, ...] = ()


WIRE_TYPES: tuple[type, ...] = (
    LedgerParams,
    AccountRecord,
    OrderRecord,
    CommittedOrder,
    ClaimRecord,
    VoteRecord,
    ChallengeRecord,
    DisputeRecord,
    LedgerSnapshot,
)
