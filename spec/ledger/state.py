"""The ledger's state: accounts, orders, claims, votes, challenges and disputes, as values.

Everything is a ``NamedTuple`` or an ``IntEnum``, so a state is hashable and fingerprints as
itself; ``protocol.apply`` maps one state to the next.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import IntEnum
from typing import NamedTuple

from spec.dispute import Dispute

NO_SEGMENT = -1
"""The ``evidence`` of an ACCEPT vote: it names no faked segment."""


class Role(IntEnum):
    """What an account registered as."""

    NONE = 0
    TRAINER = 1
    VALIDATOR = 2


class OrderStatus(IntEnum):
    """Life cycle of an order: open until Finalize settles it once."""

    OPEN = 0
    PAID = 1
    REFUNDED = 2


class Verdict(IntEnum):
    """A validator's judgement of a claim."""

    ACCEPT = 0
    REJECT = 1


class LedgerParams(NamedTuple):
    """Protocol constants fixed at genesis (part of the state so that ``apply`` needs nothing else)."""

    segments: int
    """S: training segments each claim commits to."""
    sample_size: int
    """q: segments each validator re-executes."""
    validators: int
    """n: size of the validator committee the validation quorum is taken from."""
    byzantine_validators: int
    """f: validators that may be Byzantine."""
    min_trainer_stake: int
    min_validator_stake: int
    challenge_window: int
    """Clock ticks after an order's deadline during which challenges are still accepted."""
    dispute_steps: int = 0
    """k, optimizer steps per segment, for the bisection dispute game; 0: no game, a fraud proof is
    adjudicated by re-executing its whole segment."""
    move_window: int = 0
    """Clock ticks a dispute's party has for each move."""
    dispute_bond: int = 0
    """What a challenger escrows to open a dispute: returned if it wins, paid to the trainer if not."""


class OrderRecord(NamedTuple):
    """An order and its escrow, from placement to settlement."""

    client: int
    bounty: int
    fee: int
    """Paid to the validators who were right, split evenly; the rest returns to the client."""
    deadline: int
    escrow: int
    status: OrderStatus
    winner: int
    """Trainer paid the bounty, or -1."""
    settlements: int
    """How many times Finalize settled this order (the protocol allows one)."""
    settled_at: int
    """Clock value at settlement, or -1."""


class ClaimRecord(NamedTuple):
    """A claim, keyed by (order, trainer): one claim per trainer per order."""

    order: int
    trainer: int
    model: int
    score: int
    faked: frozenset[int]
    forged_at: tuple[int, ...] = ()
    """With the dispute game: per segment, the first committed step that is not an honest step from
    its predecessor (0 for a genuine segment; see spec.dispute). Empty without the game."""


class VoteRecord(NamedTuple):
    """A validation, keyed by (order, trainer, validator)."""

    order: int
    trainer: int
    validator: int
    verdict: Verdict
    score: int
    sample: frozenset[int]
    evidence: int
    """For REJECT: the sampled segment offered as fraud proof; NO_SEGMENT for ACCEPT."""


class ChallengeRecord(NamedTuple):
    """An upheld challenge: re-executing ``segment`` of the claim (order, trainer) proved it faked.

    Challenges are adjudicated on arrival; one that is not upheld is rejected
    (CHALLENGE_NOT_UPHELD) and leaves no record.
    """

    order: int
    trainer: int
    segment: int
    challenger: int


class LedgerState(NamedTuple):
    """Everything the ledger knows; equal logs give equal states on every replica."""

    params: LedgerParams
    now: int
    balances: tuple[int, ...]
    stakes: tuple[int, ...]
    roles: tuple[Role, ...]
    orders: tuple[OrderRecord, ...]
    """Indexed by order id, assigned in log order."""
    claims: frozenset[ClaimRecord]
    votes: frozenset[VoteRecord]
    challenges: frozenset[ChallengeRecord]
    slashed: frozenset[int]
    """Accounts ever slashed (a history variable for HonestValidatorsNeverSlashed)."""
    disputes: frozenset[Dispute] = frozenset()
    """Bisection disputes, open and ended (only with ``params.dispute_steps``)."""


def genesis(params: LedgerParams, balances: Iterable[int]) -> LedgerState:
    """The state before the first transaction: funded accounts, nobody registered, clock 0."""
    funds = tuple(balances)
    if any(amount < 0 for amount in funds):
        raise ValueError("genesis balances must be non-negative")
    return LedgerState(
        params=params,
        now=0,
        balances=funds,
        stakes=(0,) * len(funds),
        roles=(Role.NONE,) * len(funds),
        orders=(),
        claims=frozenset(),
        votes=frozenset(),
        challenges=frozenset(),
        slashed=frozenset(),
    )
