"""The PoT ledger: the deterministic state machine that PBFT replicates.

PBFT orders opaque requests; a replica's ledger state is ``execute(its executed
log, genesis)``. Everything here is pure: ``apply(state, tx)`` returns a new
state and a receipt, and a rejected transaction returns the very same state
(never a partial effect) with a reason code.

Time is a logical clock advanced by the ``Tick`` transaction, ordered in the
log like any other transaction, so every replica sees the same clock at the
same log position (a wall clock read at execution time would break
determinism). Deadlines are clock values.

Training proofs are abstracted (see docs/spec_ledger.md): a claim commits to
``segments`` training segments, and ``ClaimRecord.faked`` is the set of those
whose committed leaf does not match honest re-execution. The ledger never reads
that set wholesale: it consults it only through ``segment_is_faked`` for one
segment named by a transaction (a validator's fraud evidence or a challenge),
which is what coordinators re-executing that one segment learn.

With ``LedgerParams.dispute_steps = k > 0`` a challenge, or a REJECT's fraud
evidence, is not adjudicated by re-executing its segment: it opens a bisection
dispute between trainer and challenger (``spec.dispute``) that ends with
coordinators re-executing one step, and Finalize waits for the order's
disputes to end. With ``0``, the default, disputes do not exist.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from enum import IntEnum
from typing import Any, NamedTuple

from spec import dispute
from spec.dispute import Dispute, Outcome, Supplied
from spec.ledger.config import LedgerBug
from spec.ledger.state import (
    NO_SEGMENT,
    ChallengeRecord,
    ClaimRecord,
    LedgerParams,
    LedgerState,
    OrderRecord,
    OrderStatus,
    Role,
    Verdict,
    VoteRecord,
)
from spec.quorum import validation_quorum


class Reason(IntEnum):
    """Receipt code: OK, or why a transaction was rejected without effect."""

    OK = 0
    UNKNOWN_ACCOUNT = 1
    ALREADY_REGISTERED = 2
    BAD_ROLE = 3
    STAKE_TOO_LOW = 4
    INSUFFICIENT_FUNDS = 5
    BAD_AMOUNT = 6
    DEADLINE_NOT_IN_FUTURE = 7
    UNKNOWN_ORDER = 8
    ORDER_SETTLED = 9
    CLAIM_WINDOW_CLOSED = 10
    NOT_A_TRAINER = 11
    DUPLICATE_CLAIM = 12
    BAD_SEGMENTS = 13
    NOT_A_VALIDATOR = 14
    UNKNOWN_CLAIM = 15
    DUPLICATE_VOTE = 16
    BAD_SAMPLE = 17
    BAD_EVIDENCE = 18
    SCORE_MISMATCH = 19
    UNKNOWN_VOTE = 20
    NOT_AN_ACCEPT = 21
    CHALLENGE_WINDOW_CLOSED = 22
    DUPLICATE_CHALLENGE = 23
    DEADLINE_NOT_REACHED = 24
    CHALLENGE_NOT_UPHELD = 25
    UNKNOWN_DISPUTE = 26
    NOT_YOUR_MOVE = 27
    MOVE_WINDOW_CLOSED = 28
    MOVE_WINDOW_OPEN = 29
    DISPUTES_OPEN = 30


# --------------------------------------------------------------------------- transactions


@dataclass(frozen=True)
class Register:
    """Take ``role`` (once per account) and lock ``stake``, which slashing can take."""

    account: int
    role: Role
    stake: int


@dataclass(frozen=True)
class Order:
    """Escrow ``bounty + fee`` for training; claims and votes close at ``deadline``."""

    client: int
    bounty: int
    fee: int
    deadline: int


@dataclass(frozen=True)
class Claim:
    """Claim an order's bounty with a trained model, its score and a commitment to S segments."""

    trainer: int
    order: int
    model: int
    score: int
    faked: frozenset[int]
    """The abstraction of the commitment to S segment leaves: which leaves are not honest re-executions."""
    forged_at: tuple[int, ...] = ()
    """With the dispute game, the abstraction of the per-step digests committed for each segment:
    the first invalid step of each faked segment, 0 for the others (``ClaimRecord.forged_at``)."""


@dataclass(frozen=True)
class Validate:
    """A validator's verdict on a claim after re-executing the ``sample`` segments."""

    validator: int
    order: int
    trainer: int
    verdict: Verdict
    score: int
    sample: frozenset[int]
    evidence: int = NO_SEGMENT


@dataclass(frozen=True)
class Challenge:
    """Dispute an ACCEPT vote by naming a segment of its claim that re-execution shows to be faked."""

    challenger: int
    order: int
    trainer: int
    validator: int
    segment: int
    proof: tuple[int, int, int] | None = None
    """What the attached evidence re-executes, as (order, trainer, segment), when the challenger built
    it from other material than the segment it names (another segment, another claim's genuine fraud
    proof); None for evidence about exactly the named segment."""


@dataclass(frozen=True)
class Reveal:
    """The trainer's committed digest after the midpoint step of an open dispute, with its Merkle
    proof (keyed as ``Dispute.key``)."""

    dispute: tuple[int, int, int, int]


@dataclass(frozen=True)
class Bisect:
    """The challenger agrees with the revealed midpoint digest, or disagrees."""

    dispute: tuple[int, int, int, int]
    agree: bool


@dataclass(frozen=True)
class Supply:
    """With one step left, the trainer supplies its state after step ``lo``; coordinators re-execute
    that one step and decide the dispute."""

    dispute: tuple[int, int, int, int]
    state: Supplied


@dataclass(frozen=True)
class Timeout:
    """Anyone may end a dispute whose party to move let its deadline pass: that party loses."""

    dispute: tuple[int, int, int, int]


@dataclass(frozen=True)
class Finalize:
    """Settle an order after its windows close: pay, reward, slash, or refund."""

    order: int


@dataclass(frozen=True)
class Tick:
    """Advance the logical clock by one."""


Tx = Register | Order | Claim | Validate | Challenge | Reveal | Bisect | Supply | Timeout | Finalize | Tick
DisputeMove = Reveal | Bisect | Supply | Timeout


class Receipt(NamedTuple):
    """The outcome of one transaction; a rejection's reason tells the sender what to fix."""

    reason: Reason

    @property
    def ok(self) -> bool:
        return self.reason is Reason.OK


ACCEPTED = Receipt(Reason.OK)


# --------------------------------------------------------------------------- queries


def segment_is_faked(claim: ClaimRecord, segment: int) -> bool:
    """What coordinators learn by re-executing one segment of a claim (the only use of ``faked``)."""
    return segment in claim.faked


def find_claim(state: LedgerState, order: int, trainer: int) -> ClaimRecord | None:
    for claim in state.claims:
        if claim.order == order and claim.trainer == trainer:
            return claim
    return None


def find_vote(state: LedgerState, order: int, trainer: int, validator: int) -> VoteRecord | None:
    for vote in state.votes:
        if vote.order == order and vote.trainer == trainer and vote.validator == validator:
            return vote
    return None


def votes_on(state: LedgerState, claim: ClaimRecord) -> list[VoteRecord]:
    return [v for v in state.votes if v.order == claim.order and v.trainer == claim.trainer]


def disputes_of(state: LedgerState, claim: ClaimRecord) -> list[Dispute]:
    return [d for d in state.disputes if d.order == claim.order and d.trainer == claim.trainer]


def find_dispute(state: LedgerState, key: tuple[int, int, int, int]) -> Dispute | None:
    for record in state.disputes:
        if record.key == key:
            return record
    return None


def proved_faked_segments(state: LedgerState, claim: ClaimRecord) -> frozenset[int]:
    """Segments of ``claim`` proved faked on the ledger: upheld challenges and confirmed REJECT evidence,
    or, with the dispute game, the disputes the challenger won."""
    if state.params.dispute_steps:
        return frozenset(d.segment for d in disputes_of(state, claim) if d.outcome is Outcome.FRAUD_PROVED)
    from_challenges = {
        ch.segment for ch in state.challenges if ch.order == claim.order and ch.trainer == claim.trainer
    }
    from_rejects = {
        v.evidence
        for v in votes_on(state, claim)
        if v.verdict is Verdict.REJECT and segment_is_faked(claim, v.evidence)
    }
    return frozenset(from_challenges | from_rejects)


def accept_count(state: LedgerState, claim: ClaimRecord) -> int:
    return sum(1 for v in votes_on(state, claim) if v.verdict is Verdict.ACCEPT)


def has_quorum(state: LedgerState, claim: ClaimRecord) -> bool:
    quorum = validation_quorum(state.params.validators, state.params.byzantine_validators)
    return accept_count(state, claim) >= quorum


def claim_rank(claim: ClaimRecord) -> tuple[int, int]:
    """Higher is better: the higher score wins, ties go to the lower trainer account."""
    return (claim.score, -claim.trainer)


def vote_proved_wrong(
    state: LedgerState, claim: ClaimRecord, vote: VoteRecord, proved: frozenset[int]
) -> bool:
    """An ACCEPT whose own sample contains a proved-faked segment, or a REJECT whose evidence is genuine
    (with the dispute game: whose dispute the trainer won)."""
    if vote.verdict is Verdict.ACCEPT:
        return not vote.sample.isdisjoint(proved)
    if state.params.dispute_steps:
        return _own_dispute(state, vote).outcome.challenger_lost
    return not segment_is_faked(claim, vote.evidence)


def _own_dispute(state: LedgerState, vote: VoteRecord) -> Dispute:
    """The dispute a REJECT opened over its evidence (with the dispute game)."""
    record = find_dispute(state, (vote.order, vote.trainer, vote.evidence, vote.validator))
    assert record is not None, "a REJECT under the dispute game always opens its dispute"
    return record


def lost_a_dispute(state: LedgerState, claim: ClaimRecord) -> bool:
    """The trainer of ``claim`` lost a dispute over it (by proof or by default): it is disqualified."""
    return any(d.outcome.trainer_lost for d in disputes_of(state, claim))


def vote_proved_right(state: LedgerState, vote: VoteRecord, proved: frozenset[int]) -> bool:
    """An ACCEPT of a claim with no proved fraud, or a REJECT whose evidence was confirmed faked
    (with the dispute game: whose dispute the trainer lost)."""
    if vote.verdict is Verdict.ACCEPT:
        return not proved
    if state.params.dispute_steps:
        return _own_dispute(state, vote).outcome.trainer_lost
    return vote.evidence in proved


def settlement_time(state: LedgerState, order: OrderRecord) -> int:
    """The first clock value at which the order may be finalized: after claims and challenges close."""
    return order.deadline + state.params.challenge_window


def total_value(state: LedgerState) -> int:
    """Balances + escrow + stakes + open disputes' bonds: constant under every transaction
    (ValueConservation)."""
    bonds = sum(d.bond for d in state.disputes if d.outcome is Outcome.OPEN)
    return sum(state.balances) + sum(o.escrow for o in state.orders) + sum(state.stakes) + bonds


# --------------------------------------------------------------------------- apply


def _with(values: tuple[int, ...], index: int, delta: int) -> tuple[int, ...]:
    return (*values[:index], values[index] + delta, *values[index + 1 :])


def _known_account(state: LedgerState, account: int) -> bool:
    return 0 <= account < len(state.balances)


def _live_role(state: LedgerState, account: int, role: Role, min_stake: int) -> bool:
    return (
        _known_account(state, account) and state.roles[account] is role and state.stakes[account] >= min_stake
    )


def claims_open(state: LedgerState, order: int) -> Reason:
    """OK while ``order`` accepts claims and votes: it exists, is unsettled and its deadline is ahead."""
    if not 0 <= order < len(state.orders):
        return Reason.UNKNOWN_ORDER
    record = state.orders[order]
    if record.status is not OrderStatus.OPEN:
        return Reason.ORDER_SETTLED
    if state.now >= record.deadline:
        return Reason.CLAIM_WINDOW_CLOSED
    return Reason.OK


def challenges_open(state: LedgerState, order: int) -> Reason:
    """OK while ``order`` accepts challenges: unsettled and the challenge window after its deadline open."""
    if not 0 <= order < len(state.orders):
        return Reason.UNKNOWN_ORDER
    record = state.orders[order]
    if record.status is not OrderStatus.OPEN:
        return Reason.ORDER_SETTLED
    if state.now >= settlement_time(state, record):
        return Reason.CHALLENGE_WINDOW_CLOSED
    return Reason.OK


def _register(state: LedgerState, tx: Register) -> LedgerState | Reason:
    if not _known_account(state, tx.account):
        return Reason.UNKNOWN_ACCOUNT
    if state.roles[tx.account] is not Role.NONE:
        return Reason.ALREADY_REGISTERED
    if tx.role is Role.TRAINER:
        minimum = state.params.min_trainer_stake
    elif tx.role is Role.VALIDATOR:
        minimum = state.params.min_validator_stake
    else:
        return Reason.BAD_ROLE
    if tx.stake < minimum:
        return Reason.STAKE_TOO_LOW
    if state.balances[tx.account] < tx.stake:
        return Reason.INSUFFICIENT_FUNDS
    roles = list(state.roles)
    roles[tx.account] = tx.role
    return state._replace(
        balances=_with(state.balances, tx.account, -tx.stake),
        stakes=_with(state.stakes, tx.account, tx.stake),
        roles=tuple(roles),
    )


def _order(state: LedgerState, tx: Order) -> LedgerState | Reason:
    if not _known_account(state, tx.client):
        return Reason.UNKNOWN_ACCOUNT
    if tx.bounty <= 0 or tx.fee < 0:
        return Reason.BAD_AMOUNT
    if tx.deadline <= state.now:
        return Reason.DEADLINE_NOT_IN_FUTURE
    escrow = tx.bounty + tx.fee
    if state.balances[tx.client] < escrow:
        return Reason.INSUFFICIENT_FUNDS
    record = OrderRecord(tx.client, tx.bounty, tx.fee, tx.deadline, escrow, OrderStatus.OPEN, -1, 0, -1)
    return state._replace(balances=_with(state.balances, tx.client, -escrow), orders=(*state.orders, record))


def _claim(state: LedgerState, tx: Claim) -> LedgerState | Reason:
    if not _live_role(state, tx.trainer, Role.TRAINER, state.params.min_trainer_stake):
        return Reason.NOT_A_TRAINER
    reason = claims_open(state, tx.order)
    if reason is not Reason.OK:
        return reason
    if find_claim(state, tx.order, tx.trainer) is not None:
        return Reason.DUPLICATE_CLAIM
    if not all(0 <= s < state.params.segments for s in tx.faked):
        return Reason.BAD_SEGMENTS
    if not _commitment_well_formed(state.params, tx):
        return Reason.BAD_SEGMENTS
    record = ClaimRecord(tx.order, tx.trainer, tx.model, tx.score, tx.faked, tx.forged_at)
    return state._replace(claims=state.claims | {record})


def _commitment_well_formed(params: LedgerParams, tx: Claim) -> bool:
    """Per-step commitments come with the dispute game only: one first invalid step (1..k) per faked
    segment, 0 for the others."""
    if not params.dispute_steps:
        return tx.forged_at == ()
    return len(tx.forged_at) == params.segments and all(
        (step > 0) == (segment in tx.faked) and 0 <= step <= params.dispute_steps
        for segment, step in enumerate(tx.forged_at)
    )


def _validate(state: LedgerState, tx: Validate) -> LedgerState | Reason:
    if not _live_role(state, tx.validator, Role.VALIDATOR, state.params.min_validator_stake):
        return Reason.NOT_A_VALIDATOR
    reason = claims_open(state, tx.order)
    if reason is not Reason.OK:
        return reason
    claim = find_claim(state, tx.order, tx.trainer)
    if claim is None:
        return Reason.UNKNOWN_CLAIM
    if find_vote(state, tx.order, tx.trainer, tx.validator) is not None:
        return Reason.DUPLICATE_VOTE
    if len(tx.sample) != state.params.sample_size or not all(
        0 <= s < state.params.segments for s in tx.sample
    ):
        return Reason.BAD_SAMPLE
    if tx.verdict is Verdict.ACCEPT:
        if tx.evidence != NO_SEGMENT:
            return Reason.BAD_EVIDENCE
        if tx.score != claim.score:
            return Reason.SCORE_MISMATCH
    elif tx.evidence not in tx.sample:
        return Reason.BAD_EVIDENCE
    record = VoteRecord(tx.order, tx.trainer, tx.validator, tx.verdict, tx.score, tx.sample, tx.evidence)
    voted = state._replace(votes=state.votes | {record})
    if tx.verdict is Verdict.REJECT and state.params.dispute_steps:
        if find_dispute(state, (tx.order, tx.trainer, tx.evidence, tx.validator)) is not None:
            return Reason.DUPLICATE_CHALLENGE
        return _dispute_opened(voted, claim, tx.evidence, tx.validator, bond=0)
    return voted


def _challenge(state: LedgerState, tx: Challenge, bug: LedgerBug) -> LedgerState | Reason:
    if not _known_account(state, tx.challenger):
        return Reason.UNKNOWN_ACCOUNT
    reason = challenges_open(state, tx.order)
    if reason is not Reason.OK:
        return reason
    vote = find_vote(state, tx.order, tx.trainer, tx.validator)
    claim = find_claim(state, tx.order, tx.trainer)
    if vote is None or claim is None:
        return Reason.UNKNOWN_VOTE
    if vote.verdict is not Verdict.ACCEPT:
        return Reason.NOT_AN_ACCEPT
    if not 0 <= tx.segment < state.params.segments:
        return Reason.BAD_SEGMENTS
    if any(
        (ch.order, ch.trainer, ch.segment) == (tx.order, tx.trainer, tx.segment) for ch in state.challenges
    ):
        return Reason.DUPLICATE_CHALLENGE
    if state.params.dispute_steps:
        return _challenge_disputed(state, tx, claim)
    if tx.proof is not None and tx.proof != (tx.order, tx.trainer, tx.segment):
        if not _foreign_evidence_upheld(state, tx.proof, bug):
            return Reason.BAD_EVIDENCE
    elif not segment_is_faked(claim, tx.segment):
        if bug is LedgerBug.SLASH_ON_UNPROVED_CHALLENGE:
            return _slashed(state, tx.validator, state.orders[tx.order].client)
        return Reason.CHALLENGE_NOT_UPHELD
    record = ChallengeRecord(tx.order, tx.trainer, tx.segment, tx.challenger)
    return state._replace(challenges=state.challenges | {record})


def _challenge_disputed(state: LedgerState, tx: Challenge, claim: ClaimRecord) -> LedgerState | Reason:
    """With the dispute game, a challenge bonds the challenger into a dispute of the named segment;
    the game is the evidence, so evidence built from other material is refused outright."""
    if tx.proof is not None and tx.proof != (tx.order, tx.trainer, tx.segment):
        return Reason.BAD_EVIDENCE
    if find_dispute(state, (tx.order, tx.trainer, tx.segment, tx.challenger)) is not None:
        return Reason.DUPLICATE_CHALLENGE
    if tx.segment in proved_faked_segments(state, claim):
        return Reason.DUPLICATE_CHALLENGE
    bond = state.params.dispute_bond
    if state.balances[tx.challenger] < bond:
        return Reason.INSUFFICIENT_FUNDS
    bonded = state._replace(balances=_with(state.balances, tx.challenger, -bond))
    return _dispute_opened(bonded, claim, tx.segment, tx.challenger, bond)


def _dispute_opened(
    state: LedgerState, claim: ClaimRecord, segment: int, challenger: int, bond: int
) -> LedgerState:
    record = dispute.opened(
        (claim.order, claim.trainer, segment, challenger),
        bond,
        claim.forged_at[segment],
        state.params.dispute_steps,
        state.now + state.params.move_window,
    )
    return state._replace(disputes=state.disputes | {record})


def _dispute_move(state: LedgerState, tx: DisputeMove, bug: LedgerBug) -> LedgerState | Reason:
    """A move in an open dispute: by the party whose turn it is, no later than its deadline; or a
    timeout once the deadline has passed. An ended dispute releases its bond to the winner."""
    record = find_dispute(state, tx.dispute)
    if record is None or record.outcome is not Outcome.OPEN:
        return Reason.UNKNOWN_DISPUTE
    if isinstance(tx, Timeout):
        if state.now <= record.due or bug is LedgerBug.DEADLINE_NOT_ENFORCED:
            return Reason.MOVE_WINDOW_OPEN
        return _dispute_ended(state, record, dispute.timed_out(record))
    if state.now > record.due:
        return Reason.MOVE_WINDOW_CLOSED
    due = state.now + state.params.move_window
    if isinstance(tx, Bisect) and record.mover is dispute.Mover.CHALLENGER:
        moved = dispute.bisected(record, tx.agree, due, bug is LedgerBug.MIDPOINT_OFF_BY_ONE)
    elif isinstance(tx, Reveal) and record.mover is dispute.Mover.TRAINER and not record.one_step_left:
        moved = dispute.revealed(record, due)
    elif isinstance(tx, Supply) and record.mover is dispute.Mover.TRAINER and record.one_step_left:
        checked = bug is not LedgerBug.REFEREE_TRUSTS_SUPPLIED_STATE
        return _dispute_ended(state, record, dispute.adjudicated(record, tx.state, checked))
    else:
        return Reason.NOT_YOUR_MOVE
    return state._replace(disputes=(state.disputes - {record}) | {moved})


def _dispute_ended(state: LedgerState, record: Dispute, ended: Dispute) -> LedgerState:
    winner = record.trainer if ended.outcome.challenger_lost else record.challenger
    return state._replace(
        balances=_with(state.balances, winner, record.bond),
        disputes=(state.disputes - {record}) | {ended},
    )


def _foreign_evidence_upheld(state: LedgerState, proof: tuple[int, int, int], bug: LedgerBug) -> bool:
    """Evidence re-executing another segment or claim proves nothing about the one challenged;
    only the planted bug takes any genuine fraud proof on the ledger as proof of the named segment."""
    source = find_claim(state, proof[0], proof[1])
    return (
        bug is LedgerBug.CHALLENGE_ACCEPTS_FOREIGN_EVIDENCE
        and source is not None
        and segment_is_faked(source, proof[2])
    )


def _slashed(state: LedgerState, account: int, beneficiary: int) -> LedgerState:
    """``account`` forfeits its whole stake to ``beneficiary``."""
    balances = _with(state.balances, beneficiary, state.stakes[account])
    return state._replace(
        balances=balances,
        stakes=_with(state.stakes, account, -state.stakes[account]),
        slashed=state.slashed | {account},
    )


def _finalize(state: LedgerState, tx: Finalize, bug: LedgerBug) -> LedgerState | Reason:
    if not 0 <= tx.order < len(state.orders):
        return Reason.UNKNOWN_ORDER
    order = state.orders[tx.order]
    if order.status is not OrderStatus.OPEN and bug is not LedgerBug.FINALIZE_TWICE:
        return Reason.ORDER_SETTLED
    if state.now < settlement_time(state, order) and bug is not LedgerBug.PAY_BEFORE_DEADLINE:
        return Reason.DEADLINE_NOT_REACHED
    if any(d.order == tx.order and d.outcome is Outcome.OPEN for d in state.disputes):
        return Reason.DISPUTES_OPEN
    claims = sorted((c for c in state.claims if c.order == tx.order), key=claim_rank, reverse=True)
    if bug is LedgerBug.FINALIZE_NEEDS_ALL_VOTES and any(
        len(votes_on(state, c)) < state.params.validators for c in claims
    ):
        return Reason.DEADLINE_NOT_REACHED
    winner: ClaimRecord | None = None
    right: set[int] = set()
    wrong: set[int] = set()
    for claim in claims:
        proved = proved_faked_segments(state, claim)
        if bug is LedgerBug.FINALIZE_IGNORES_CHALLENGES:
            proved = frozenset(v.evidence for v in votes_on(state, claim) if v.evidence in proved)
        if proved or lost_a_dispute(state, claim):
            wrong.add(claim.trainer)
        elif winner is None and has_quorum(state, claim):
            winner = claim
        for vote in votes_on(state, claim):
            if vote_proved_wrong(state, claim, vote, proved):
                wrong.add(vote.validator)
            elif vote_proved_right(state, vote, proved):
                right.add(vote.validator)
    for account in sorted(wrong):
        state = _slashed(state, account, order.client)
    rewarded = sorted(right - wrong)
    share = order.fee // len(rewarded) if rewarded else 0
    balances = _with(state.balances, winner.trainer if winner else order.client, order.bounty)
    for validator in rewarded:
        balances = _with(balances, validator, share)
    balances = _with(balances, order.client, order.fee - share * len(rewarded))
    record = order._replace(
        escrow=order.escrow - order.bounty - order.fee,
        status=OrderStatus.PAID if winner else OrderStatus.REFUNDED,
        winner=winner.trainer if winner else -1,
        settlements=order.settlements + 1,
        settled_at=state.now,
    )
    orders = (*state.orders[: tx.order], record, *state.orders[tx.order + 1 :])
    return state._replace(balances=balances, orders=orders)


def _tick(state: LedgerState, tx: Tick) -> LedgerState:
    return state._replace(now=state.now + 1)


_HANDLERS: dict[type, Callable[[LedgerState, Any], LedgerState | Reason]] = {
    Tick: _tick,
    Register: _register,
    Order: _order,
    Claim: _claim,
    Validate: _validate,
}


def apply(state: LedgerState, tx: Tx, bug: LedgerBug = LedgerBug.NONE) -> tuple[LedgerState, Receipt]:
    """Execute one transaction: the new state and an OK receipt, or the unchanged state and a reason."""
    result: LedgerState | Reason
    if isinstance(tx, Finalize):
        result = _finalize(state, tx, bug)
    elif isinstance(tx, Challenge):
        result = _challenge(state, tx, bug)
    elif isinstance(tx, Reveal | Bisect | Supply | Timeout):
        result = _dispute_move(state, tx, bug)
    else:
        result = _HANDLERS[type(tx)](state, tx)
    if isinstance(result, Reason):
        return state, Receipt(result)
    return result, ACCEPTED


def execute(log: Iterable[Tx], start: LedgerState, bug: LedgerBug = LedgerBug.NONE) -> LedgerState:
    """The ledger state after applying an ordered log to ``start`` (rejected transactions have no effect)."""
    state = start
    for tx in log:
        state, _ = apply(state, tx, bug)
    return state
