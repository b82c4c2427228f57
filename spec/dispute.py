"""The bisection dispute game: a disputed segment settled by re-executing one training step.

Without the game, a fraud proof makes every coordinator re-execute a whole
segment of ``k`` optimizer steps. With it (``LedgerParams.dispute_steps = k``),
a challenge opens a dispute between the trainer and the challenger on the
ledger, in the manner of Srivastava, Arora and Boneh's dispute protocol and of
Gensyn's Verde: the interval ``[lo, hi]`` of steps starts as the whole segment;
the trainer reveals its digest after the midpoint step, with a Merkle proof
against the per-step digests its claim commits to; the challenger agrees (the
interval becomes ``[mid, hi]``) or disagrees (``[lo, mid]``), until one step
remains; the trainer then supplies its state after step ``lo`` and coordinators
check it against the committed digest and re-execute that one step. Each move
has a deadline on the ledger clock; a party that misses it loses.

The abstraction of the commitment: a segment's committed digests follow honest
re-execution from the segment's start up to its first invalid step
``forged_at`` (0 for a genuine segment) and the trainer's own trajectory after
it, so step ``forged_at`` is the one step of the segment that re-execution
refutes. An honest challenger agrees exactly with the digests its own
re-execution gives, so it keeps that step inside the interval; an honest
trainer commits no invalid step; whoever is honest wins however the other side
plays (``HonestNeverLosesDispute``).

The outcome says what the dispute proves to third parties. FRAUD_PROVED (the
referee re-executed an invalid committed step) proves the segment faked, so it
convicts the validators who accepted it too; a party that only defaulted (ran
out of time, or supplied a state that is not the committed one) loses its own
dispute and nothing more, or a Byzantine trainer could have honest validators
slashed by failing to defend its genuine segment.

Everything here is pure; ``spec.ledger`` calls these functions from its
transactions and keeps the disputes in its state.
"""

from __future__ import annotations

from enum import IntEnum
from typing import NamedTuple


class Supplied(IntEnum):
    """The state a trainer supplies for the last step: the committed one at ``lo``, or a forged
    predecessor that one step takes to the committed digest at ``hi``."""

    COMMITTED = 0
    FORGED = 1


class Outcome(IntEnum):
    """How a dispute ended (see the module docstring for what each proves)."""

    OPEN = 0
    FRAUD_PROVED = 1
    """The referee re-executed the remaining step and it did not give the committed digest."""
    TRAINER_DEFAULTED = 2
    """The trainer missed a deadline or supplied a state that is not the committed one."""
    STEP_VALID = 3
    """The referee re-executed the remaining step and it gave the committed digest."""
    CHALLENGER_DEFAULTED = 4
    """The challenger missed a deadline."""

    @property
    def trainer_lost(self) -> bool:
        return self in (Outcome.FRAUD_PROVED, Outcome.TRAINER_DEFAULTED)

    @property
    def challenger_lost(self) -> bool:
        return self in (Outcome.STEP_VALID, Outcome.CHALLENGER_DEFAULTED)


class Mover(IntEnum):
    TRAINER = 0
    CHALLENGER = 1


class Dispute(NamedTuple):
    """One challenger's dispute of one segment of the claim (order, trainer)."""

    order: int
    trainer: int
    segment: int
    challenger: int
    bond: int
    """Held in escrow while the dispute is open: returned to a challenger who wins, paid to the
    trainer otherwise. A rejecting validator disputes with its stake instead (bond 0)."""
    forged_at: int
    """The claim's first invalid committed step in this segment (1..k), or 0: ground truth the
    ledger learns only by re-executing one step (``step_is_valid``)."""
    lo: int
    """The last step whose committed digest both parties agree on (0: the segment's start)."""
    hi: int
    """The first step whose committed digest the challenger disputes (at first the segment's end)."""
    revealed: bool
    """Whether the trainer has revealed the midpoint's digest (the challenger moves next)."""
    due: int
    """The last clock value at which the party to move may still move."""
    moves: int
    outcome: Outcome

    @property
    def key(self) -> tuple[int, int, int, int]:
        """(order, trainer, segment, challenger): one dispute per challenger and segment, ever."""
        return (self.order, self.trainer, self.segment, self.challenger)

    @property
    def mover(self) -> Mover:
        """Who moves next: the trainer (a midpoint's digest, or the last state), or the challenger."""
        return Mover.CHALLENGER if self.revealed else Mover.TRAINER

    @property
    def one_step_left(self) -> bool:
        return self.hi - self.lo <= 1


def midpoint(lo: int, hi: int, off_by_one: bool = False) -> int:
    """The step whose digest the trainer reveals next; strictly inside ``(lo, hi)`` when ``hi - lo >= 2``.
    ``off_by_one`` is the planted bug that rounds up past the middle (``hi`` itself when ``hi - lo = 2``)."""
    return (lo + hi) // 2 + (1 if off_by_one else 0)


def honest_digest(record: Dispute, step: int) -> bool:
    """Whether the committed digest after ``step`` is what honest re-execution from the start gives."""
    return record.forged_at == 0 or step < record.forged_at


def step_is_valid(record: Dispute, lo: int, hi: int) -> bool:
    """What the referee learns by re-executing one step from the committed state after ``lo``: whether
    it gives the committed digest after ``hi`` (only if ``hi`` is the next step, and not the forged one)."""
    return hi == lo + 1 and hi != record.forged_at


def max_moves(steps: int) -> int:
    """A dispute's moves when both sides play to the end: a reveal and a bisection per halving of
    ``steps``, and the last state (``2 * ceil(log2(steps)) + 1``)."""
    return 2 * max(steps - 1, 0).bit_length() + 1


def opened(key: tuple[int, int, int, int], bond: int, forged_at: int, steps: int, due: int) -> Dispute:
    """A new dispute over a whole segment of ``steps`` steps: agreed start, disputed end."""
    order, trainer, segment, challenger = key
    return Dispute(
        order, trainer, segment, challenger, bond, forged_at, 0, steps, False, due, 0, Outcome.OPEN
    )


def revealed(record: Dispute, due: int) -> Dispute:
    """The trainer reveals its committed digest after the midpoint step; the challenger moves next."""
    return record._replace(revealed=True, due=due, moves=record.moves + 1)


def bisected(record: Dispute, agree: bool, due: int, off_by_one: bool = False) -> Dispute:
    """The challenger agrees with the midpoint's digest (the dispute moves past it) or disagrees."""
    mid = midpoint(record.lo, record.hi, off_by_one)
    narrowed = record._replace(lo=mid) if agree else record._replace(hi=mid)
    return narrowed._replace(revealed=False, due=due, moves=record.moves + 1)


def adjudicated(record: Dispute, supplied: Supplied, check_supplied: bool = True) -> Dispute:
    """The referee re-executes the one remaining step from the state the trainer supplies.

    A state that is not the committed one fails the digest check (unless ``check_supplied`` is off:
    the planted bug, under which a forged predecessor of the committed digest at ``hi`` passes).
    """
    if supplied is Supplied.FORGED:
        outcome = Outcome.STEP_VALID if not check_supplied else Outcome.TRAINER_DEFAULTED
    elif step_is_valid(record, record.lo, record.hi):
        outcome = Outcome.STEP_VALID
    else:
        outcome = Outcome.FRAUD_PROVED
    return record._replace(outcome=outcome, moves=record.moves + 1)


def timed_out(record: Dispute) -> Dispute:
    """The party to move missed its deadline and loses."""
    by_trainer = record.mover is Mover.TRAINER
    return record._replace(outcome=Outcome.TRAINER_DEFAULTED if by_trainer else Outcome.CHALLENGER_DEFAULTED)
