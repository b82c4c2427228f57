"""Named safety invariants and the liveness property of the PoT ledger.

Each predicate cites where its requirement comes from: the PoT design (clients
escrow bounties, validators re-execute sampled segments, a mismatch is a fraud
proof any coordinator can check, Finalize pays the best qualifying claim; see
docs/spec_ledger.md). Some invariants need ground truth the ledger itself
never sees (which participants are honest, which segments are faked); the
``Honesty`` value supplies the former, ``ClaimRecord.faked`` the latter.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import NamedTuple

from spec.dispute import Outcome, max_moves
from spec.ledger.protocol import (
    claim_rank,
    find_claim,
    has_quorum,
    lost_a_dispute,
    proved_faked_segments,
    settlement_time,
    total_value,
    votes_on,
)
from spec.ledger.state import ClaimRecord, LedgerState, OrderStatus

LedgerPredicate = Callable[[LedgerState], bool]


class Honesty(NamedTuple):
    """Which accounts follow the protocol (a model constant; the ledger cannot tell)."""

    validators: frozenset[int]
    trainers: frozenset[int]


def value_conserved(supply: int) -> LedgerPredicate:
    """ValueConservation (PoT design: escrowed bounties and stakes are moved, never minted).

    Balances + escrow + stakes equal the genesis supply, and none is negative.
    """

    def holds(state: LedgerState) -> bool:
        non_negative = (
            min(state.balances, default=0) >= 0
            and min(state.stakes, default=0) >= 0
            and all(o.escrow >= 0 for o in state.orders)
        )
        return non_negative and total_value(state) == supply

    return holds


def no_double_payment(state: LedgerState) -> bool:
    """NoDoublePayment (PoT design: Finalize settles an order's escrow exactly once)."""
    return all(
        o.settlements <= 1 and (o.settlements == 1) == (o.status is not OrderStatus.OPEN)
        for o in state.orders
    )


def _detected_by_honest(claim: ClaimRecord, honesty: Honesty, state: LedgerState) -> bool:
    return any(
        v.validator in honesty.validators and not v.sample.isdisjoint(claim.faked)
        for v in votes_on(state, claim)
    )


def _upheld_challenge(claim: ClaimRecord, state: LedgerState) -> bool:
    """A challenge upheld, or (with the dispute game) a dispute the challenger won."""
    return any(ch.order == claim.order and ch.trainer == claim.trainer for ch in state.challenges) or any(
        d.order == claim.order and d.trainer == claim.trainer and d.outcome.trainer_lost
        for d in state.disputes
    )


def _winning_claim(state: LedgerState, order_id: int) -> ClaimRecord | None:
    order = state.orders[order_id]
    if order.status is not OrderStatus.PAID:
        return None
    return find_claim(state, order_id, order.winner)


def no_fake_winner(honesty: Honesty) -> LedgerPredicate:
    """NoFakeWinner (PoT design: a segment mismatch found by a validator or a challenger is a
    fraud proof): a claim whose fake an honest validator's sample hit, or against which a challenge was
    upheld, is never paid."""

    def holds(state: LedgerState) -> bool:
        for order_id in range(len(state.orders)):
            winner = _winning_claim(state, order_id)
            if winner is not None and (
                _detected_by_honest(winner, honesty, state) or _upheld_challenge(winner, state)
            ):
                return False
        return True

    return holds


def honest_validators_never_slashed(honesty: Honesty) -> LedgerPredicate:
    """HonestValidatorsNeverSlashed (PoT design: only a checkable fraud proof may cost a stake)."""
    return lambda state: state.slashed.isdisjoint(honesty.validators)


def honest_trainers_never_slashed(honesty: Honesty) -> LedgerPredicate:
    """HonestTrainersNeverSlashed (PoT design: a trainer loses its stake only for a proved-faked segment)."""
    return lambda state: state.slashed.isdisjoint(honesty.trainers)


def best_valid_claim_wins(state: LedgerState) -> bool:
    """BestValidClaimWins (PoT design: Finalize pays the best claim with a validation quorum).

    A settled order's winner has a quorum and no proved fraud, and no genuine claim (no faked segment)
    that reached a quorum is passed over for a lower-ranked winner or a refund, unless its trainer
    lost a dispute over it (a trainer that does not defend its claim in time forfeits it). An
    undetected fake may still outrank it: sampling bounds that risk, the ledger cannot.
    """
    for order_id, order in enumerate(state.orders):
        if order.status is OrderStatus.OPEN:
            continue
        winner = _winning_claim(state, order_id)
        if order.status is OrderStatus.PAID and (
            winner is None or not has_quorum(state, winner) or proved_faked_segments(state, winner)
        ):
            return False
        for claim in state.claims:
            genuine_qualified = (
                claim.order == order_id
                and not claim.faked
                and has_quorum(state, claim)
                and not lost_a_dispute(state, claim)
            )
            if genuine_qualified and (winner is None or claim_rank(claim) > claim_rank(winner)):
                return False
    return True


def no_payment_before_deadline(state: LedgerState) -> bool:
    """NoPaymentBeforeDeadline (PoT design: an order settles only after its claim and challenge windows
    close, so every claim, vote and challenge made in time is taken into account)."""
    return all(
        o.status is OrderStatus.OPEN or o.settled_at >= settlement_time(state, o) for o in state.orders
    )


def honest_never_loses_dispute(honesty: Honesty) -> LedgerPredicate:
    """HonestNeverLosesDispute (Srivastava, Arora and Boneh; Verde: the bisection game is won by
    whoever is honest): no dispute ends against an honest trainer or an honest validator defending
    its REJECT, however the other side plays, as long as the honest party moves in time."""

    def holds(state: LedgerState) -> bool:
        return not any(
            (d.outcome.trainer_lost and d.trainer in honesty.trainers)
            or (d.outcome.challenger_lost and d.challenger in honesty.validators)
            for d in state.disputes
        )

    return holds


def disputes_end_in_log_moves(state: LedgerState) -> bool:
    """DisputesEndInLogMoves (the game's cost bound): a dispute of a k-step segment takes at most
    2 * ceil(log2 k) + 1 moves, a reveal and a bisection per halving and the last state."""
    bound = max_moves(state.params.dispute_steps)
    return all(d.moves <= bound for d in state.disputes)


def ledger_invariants(supply: int, honesty: Honesty, disputes: bool = False) -> Mapping[str, LedgerPredicate]:
    """All ledger invariants by name, for a ledger whose genesis holds ``supply`` in total; with
    ``disputes``, the dispute game's too."""
    game: dict[str, LedgerPredicate] = (
        {
            "HonestNeverLosesDispute": honest_never_loses_dispute(honesty),
            "DisputesEndInLogMoves": disputes_end_in_log_moves,
        }
        if disputes
        else {}
    )
    return {
        "ValueConservation": value_conserved(supply),
        "NoDoublePayment": no_double_payment,
        "NoFakeWinner": no_fake_winner(honesty),
        "HonestValidatorsNeverSlashed": honest_validators_never_slashed(honesty),
        "HonestTrainersNeverSlashed": honest_trainers_never_slashed(honesty),
        "BestValidClaimWins": best_valid_claim_wins,
        "NoPaymentBeforeDeadline": no_payment_before_deadline,
        **game,
    }


def some_order_open(state: LedgerState) -> bool:
    return any(o.status is OrderStatus.OPEN for o in state.orders)


def no_order_open(state: LedgerState) -> bool:
    return not some_order_open(state)


def some_dispute_open(state: LedgerState) -> bool:
    return any(d.outcome is Outcome.OPEN for d in state.disputes)


def no_dispute_open(state: LedgerState) -> bool:
    return not some_dispute_open(state)
