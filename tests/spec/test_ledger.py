"""The PoT ledger state machine: settlement arithmetic, fraud proofs, rejections, atomicity."""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from model_checker.model import check_plain
from spec.ledger import (
    NO_SEGMENT,
    Challenge,
    Claim,
    Finalize,
    LedgerParams,
    LedgerState,
    Order,
    OrderStatus,
    Reason,
    Register,
    Role,
    Tick,
    Tx,
    Validate,
    Verdict,
    apply,
    execute,
    genesis,
    total_value,
)
from spec.ledger.properties import (
    Honesty,
    ledger_invariants,
    no_double_payment,
    no_payment_before_deadline,
    value_conserved,
)

PARAMS = LedgerParams(
    segments=3,
    sample_size=1,
    validators=3,
    byzantine_validators=1,
    min_trainer_stake=2,
    min_validator_stake=2,
    challenge_window=1,
)
CLIENT, TRAINER_A, TRAINER_B, V1, V2, V3, CHALLENGER = range(7)
FUNDS = (100, 5, 5, 5, 5, 5, 0)
BOUNTY, FEE, DEADLINE = 10, 4, 2
SETTLE_AT = DEADLINE + PARAMS.challenge_window

SETUP: tuple[Tx, ...] = (
    Register(TRAINER_A, Role.TRAINER, 2),
    Register(TRAINER_B, Role.TRAINER, 2),
    Register(V1, Role.VALIDATOR, 2),
    Register(V2, Role.VALIDATOR, 2),
    Register(V3, Role.VALIDATOR, 2),
    Order(CLIENT, BOUNTY, FEE, DEADLINE),
)
GENUINE_A = Claim(TRAINER_A, 0, 11, 5, frozenset())
FAKED_B = Claim(TRAINER_B, 0, 12, 7, frozenset({2}))


def accept(validator: int, trainer: int, score: int, segment: int) -> Validate:
    return Validate(validator, 0, trainer, Verdict.ACCEPT, score, frozenset({segment}))


def reject(validator: int, trainer: int, score: int, segment: int) -> Validate:
    return Validate(validator, 0, trainer, Verdict.REJECT, score, frozenset({segment}), segment)


def run(log: Sequence[Tx], params: LedgerParams = PARAMS, funds: Sequence[int] = FUNDS) -> LedgerState:
    """Execute ``log`` from genesis, insisting that every transaction is accepted."""
    state = genesis(params, funds)
    for tx in log:
        state, receipt = apply(state, tx)
        assert receipt.ok, (tx, receipt.reason)
    return state


def settle(*txs: Tx) -> LedgerState:
    return run([*SETUP, *txs, *[Tick()] * SETTLE_AT, Finalize(0)])


def invariants_hold(state: LedgerState) -> None:
    start = genesis(PARAMS, FUNDS)
    honesty = Honesty(validators=frozenset({V1, V2}), trainers=frozenset({TRAINER_A}))
    failing = [
        name for name, holds in ledger_invariants(total_value(start), honesty).items() if not holds(state)
    ]
    assert failing == []


def test_best_claim_with_quorum_is_paid_and_right_validators_share_the_fee() -> None:
    genuine_b = Claim(TRAINER_B, 0, 12, 7, frozenset())
    state = settle(GENUINE_A, genuine_b, accept(V1, TRAINER_A, 5, 0), accept(V2, TRAINER_A, 5, 1),
                   accept(V1, TRAINER_B, 7, 0), accept(V3, TRAINER_B, 7, 2))  # fmt: skip
    order = state.orders[0]
    assert (order.status, order.winner, order.escrow, order.settlements) == (
        OrderStatus.PAID,
        TRAINER_B,
        0,
        1,
    )
    assert state.balances[TRAINER_B] == FUNDS[TRAINER_B] - 2 + BOUNTY
    # V1, V2, V3 all voted right (ACCEPTs of claims with no proved fraud): FEE // 3 each, remainder back.
    share = FEE // 3
    assert [state.balances[v] for v in (V1, V2, V3)] == [FUNDS[v] - 2 + share for v in (V1, V2, V3)]
    assert state.balances[CLIENT] == FUNDS[CLIENT] - BOUNTY - FEE + (FEE - 3 * share)
    assert state.slashed == frozenset()
    invariants_hold(state)


def test_ties_go_to_the_lower_trainer_account() -> None:
    tied_b = Claim(TRAINER_B, 0, 12, 5, frozenset())
    state = settle(tied_b, GENUINE_A, accept(V1, TRAINER_A, 5, 0), accept(V2, TRAINER_A, 5, 0),
                   accept(V1, TRAINER_B, 5, 0), accept(V2, TRAINER_B, 5, 0))  # fmt: skip
    assert state.orders[0].winner == min(TRAINER_A, TRAINER_B)


def test_refund_when_no_claim_reaches_the_quorum() -> None:
    state = settle(GENUINE_A, accept(V1, TRAINER_A, 5, 0))
    assert state.orders[0].status is OrderStatus.REFUNDED
    # V1 was right, so it earns the whole fee; the client gets the bounty back.
    assert state.balances[CLIENT] == FUNDS[CLIENT] - FEE
    assert state.balances[V1] == FUNDS[V1] - 2 + FEE
    invariants_hold(state)


def test_honest_fraud_proof_disqualifies_the_fake_and_slashes_its_trainer() -> None:
    quorum_for_a = (accept(V1, TRAINER_A, 5, 0), accept(V2, TRAINER_A, 5, 1))
    votes_on_b = (reject(V1, TRAINER_B, 7, 2), accept(V3, TRAINER_B, 7, 0), accept(V2, TRAINER_B, 7, 1))
    state = settle(GENUINE_A, FAKED_B, *quorum_for_a, *votes_on_b)
    order = state.orders[0]
    assert (order.status, order.winner) == (OrderStatus.PAID, TRAINER_A)
    assert state.slashed == {TRAINER_B}
    assert state.stakes[TRAINER_B] == 0
    invariants_hold(state)


def test_upheld_challenge_slashes_exactly_the_accepts_whose_sample_held_the_fake() -> None:
    before = run([*SETUP, FAKED_B, accept(V1, TRAINER_B, 7, 0), accept(V3, TRAINER_B, 7, 2)])
    state, receipt = apply(before, Challenge(CHALLENGER, 0, TRAINER_B, V1, 2))
    assert receipt.ok
    state = execute([*[Tick()] * SETTLE_AT, Finalize(0)], state)
    # V1 sampled segment 0 (genuine) and accepted honestly; V3 accepted the very segment proved faked.
    assert state.orders[0].status is OrderStatus.REFUNDED
    assert state.slashed == {V3, TRAINER_B}
    assert state.stakes[V1] == 2
    invariants_hold(state)


def test_false_fraud_evidence_slashes_the_accuser_and_the_claim_still_wins() -> None:
    state = settle(
        GENUINE_A, accept(V1, TRAINER_A, 5, 0), accept(V2, TRAINER_A, 5, 1), reject(V3, TRAINER_A, 5, 2)
    )
    assert (state.orders[0].status, state.orders[0].winner) == (OrderStatus.PAID, TRAINER_A)
    assert state.slashed == {V3}
    assert state.balances[CLIENT] == FUNDS[CLIENT] - BOUNTY - FEE + 2 + (FEE - 2 * (FEE // 2))


def challenge(validator: int, segment: int) -> Challenge:
    """A challenge of ``validator``'s vote on TRAINER_A's claim."""
    return Challenge(CHALLENGER, 0, TRAINER_A, validator, segment)


REGISTERED = (*SETUP, GENUINE_A, accept(V1, TRAINER_A, 5, 0))
AFTER_DEADLINE = (*REGISTERED, *[Tick()] * DEADLINE)
SETTLED = (*REGISTERED, *[Tick()] * SETTLE_AT, Finalize(0))

REJECTIONS = [
    ((), Register(99, Role.TRAINER, 2), Reason.UNKNOWN_ACCOUNT),
    (SETUP, Register(TRAINER_A, Role.VALIDATOR, 2), Reason.ALREADY_REGISTERED),
    ((), Register(TRAINER_A, Role.NONE, 2), Reason.BAD_ROLE),
    ((), Register(TRAINER_A, Role.TRAINER, 1), Reason.STAKE_TOO_LOW),
    ((), Register(TRAINER_A, Role.TRAINER, 6), Reason.INSUFFICIENT_FUNDS),
    ((), Order(CLIENT, 0, 1, 3), Reason.BAD_AMOUNT),
    ((), Order(CLIENT, 1, -1, 3), Reason.BAD_AMOUNT),
    ((Tick(),), Order(CLIENT, 1, 1, 1), Reason.DEADLINE_NOT_IN_FUTURE),
    ((), Order(TRAINER_A, 10, 0, 3), Reason.INSUFFICIENT_FUNDS),
    (SETUP, Claim(TRAINER_A, 1, 0, 1, frozenset()), Reason.UNKNOWN_ORDER),
    (SETTLED, Claim(TRAINER_B, 0, 0, 1, frozenset()), Reason.ORDER_SETTLED),
    (AFTER_DEADLINE, Claim(TRAINER_B, 0, 0, 1, frozenset()), Reason.CLAIM_WINDOW_CLOSED),
    (SETUP, Claim(V1, 0, 0, 1, frozenset()), Reason.NOT_A_TRAINER),
    (REGISTERED, Claim(TRAINER_A, 0, 0, 1, frozenset()), Reason.DUPLICATE_CLAIM),
    (SETUP, Claim(TRAINER_A, 0, 0, 1, frozenset({3})), Reason.BAD_SEGMENTS),
    (REGISTERED, accept(TRAINER_B, TRAINER_A, 5, 0), Reason.NOT_A_VALIDATOR),
    (REGISTERED, accept(V2, TRAINER_B, 5, 0), Reason.UNKNOWN_CLAIM),
    (REGISTERED, accept(V1, TRAINER_A, 5, 1), Reason.DUPLICATE_VOTE),
    (REGISTERED, Validate(V2, 0, TRAINER_A, Verdict.ACCEPT, 5, frozenset({0, 1})), Reason.BAD_SAMPLE),
    (REGISTERED, Validate(V2, 0, TRAINER_A, Verdict.ACCEPT, 5, frozenset({0}), 0), Reason.BAD_EVIDENCE),
    (REGISTERED, Validate(V2, 0, TRAINER_A, Verdict.REJECT, 5, frozenset({0}), 1), Reason.BAD_EVIDENCE),
    (REGISTERED, accept(V2, TRAINER_A, 4, 0), Reason.SCORE_MISMATCH),
    (AFTER_DEADLINE, accept(V2, TRAINER_A, 5, 0), Reason.CLAIM_WINDOW_CLOSED),
    (REGISTERED, Challenge(CHALLENGER, 0, TRAINER_A, V2, 0), Reason.UNKNOWN_VOTE),
    ((*REGISTERED, reject(V2, TRAINER_A, 5, 1)), challenge(V2, 1), Reason.NOT_AN_ACCEPT),
    (REGISTERED, Challenge(CHALLENGER, 0, TRAINER_A, V1, 3), Reason.BAD_SEGMENTS),
    (REGISTERED, Challenge(CHALLENGER, 0, TRAINER_A, V1, 0), Reason.CHALLENGE_NOT_UPHELD),
    (SETTLED, Challenge(CHALLENGER, 0, TRAINER_A, V1, 0), Reason.ORDER_SETTLED),
    ((*REGISTERED, *[Tick()] * SETTLE_AT), challenge(V1, 0), Reason.CHALLENGE_WINDOW_CLOSED),
    (
        (*SETUP, FAKED_B, accept(V1, TRAINER_B, 7, 0), Challenge(CHALLENGER, 0, TRAINER_B, V1, 2)),
        Challenge(CHALLENGER, 0, TRAINER_B, V1, 2),
        Reason.DUPLICATE_CHALLENGE,
    ),
    (AFTER_DEADLINE, Finalize(0), Reason.DEADLINE_NOT_REACHED),
    (SETTLED, Finalize(0), Reason.ORDER_SETTLED),
    (SETUP, Finalize(1), Reason.UNKNOWN_ORDER),
]  # fmt: skip


@pytest.mark.parametrize(("setup", "tx", "reason"), REJECTIONS, ids=[r.name for _, _, r in REJECTIONS])
def test_invalid_transactions_are_rejected_whole_with_their_reason(
    setup: Sequence[Tx], tx: Tx, reason: Reason
) -> None:
    rejected_whole(run(setup), tx, reason)


def rejected_whole(before: LedgerState, tx: Tx, reason: Reason) -> None:
    """``tx`` is refused for ``reason`` and leaves the very same state."""
    after, receipt = apply(before, tx)
    assert receipt.reason is reason
    assert after is before


ACCOUNTS = st.integers(min_value=0, max_value=len(FUNDS))
SEGMENT = st.integers(min_value=-1, max_value=PARAMS.segments)
SEGMENTS = st.frozensets(st.integers(min_value=0, max_value=PARAMS.segments), max_size=2)
SMALL = st.integers(min_value=-1, max_value=6)
ANY_TX: st.SearchStrategy[Tx] = st.one_of(
    st.builds(Tick),
    st.builds(Register, ACCOUNTS, st.sampled_from(Role), SMALL),
    st.builds(Order, ACCOUNTS, SMALL, SMALL, st.integers(min_value=0, max_value=4)),
    st.builds(Claim, ACCOUNTS, st.integers(0, 2), st.just(0), st.integers(0, 3), SEGMENTS),
    st.builds(Validate, ACCOUNTS, st.integers(0, 2), ACCOUNTS, st.sampled_from(Verdict), st.integers(0, 3),
              SEGMENTS, SEGMENT),
    st.builds(Challenge, ACCOUNTS, st.integers(0, 2), ACCOUNTS, ACCOUNTS, SEGMENT),
    st.builds(Finalize, st.integers(0, 2)),
)  # fmt: skip
"""Arbitrary transactions over a small domain: mostly rejected, which is the point."""

TRAINERS = st.sampled_from((TRAINER_A, TRAINER_B))
VALIDATORS = st.sampled_from((V1, V2, V3))
SCORES = st.sampled_from((5, 7))
ONE_SEGMENT = st.integers(min_value=0, max_value=PARAMS.segments - 1)
CLAIM = st.builds(Claim, TRAINERS, st.just(0), st.just(0), SCORES, st.frozensets(ONE_SEGMENT))
PLAUSIBLE_TX: st.SearchStrategy[Tx] = st.one_of(
    st.builds(Tick),
    CLAIM,
    st.builds(accept, VALIDATORS, TRAINERS, SCORES, ONE_SEGMENT),
    st.builds(reject, VALIDATORS, TRAINERS, SCORES, ONE_SEGMENT),
    st.builds(Challenge, st.just(CHALLENGER), st.just(0), TRAINERS, VALIDATORS, ONE_SEGMENT),
    st.builds(Finalize, st.just(0)),
)  # fmt: skip
"""Transactions on the one order of SETUP, well formed often enough to reach settlement and slashing."""

VOTE = st.one_of(
    st.builds(accept, VALIDATORS, TRAINERS, SCORES, ONE_SEGMENT),
    st.builds(reject, VALIDATORS, TRAINERS, SCORES, ONE_SEGMENT),
)
PHASED_LOG = st.builds(
    lambda claims, votes, during, after: [*claims, *votes, *[Tick()] * DEADLINE, *during,
                                          *[Tick()] * PARAMS.challenge_window, Finalize(0), *after],
    st.lists(CLAIM, max_size=3),
    st.lists(VOTE, max_size=8),
    st.lists(PLAUSIBLE_TX, max_size=5),
    st.lists(PLAUSIBLE_TX, max_size=3),
)  # fmt: skip
"""Plausible logs shaped like an order's life: activity, deadline, challenges, settlement, stragglers."""


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(ANY_TX, PLAUSIBLE_TX), max_size=40))
def test_any_log_conserves_value_and_settles_each_order_once_after_its_deadline(log: list[Tx]) -> None:
    """Whatever PBFT orders, accepted or not: these invariants need no honesty assumption."""
    start = genesis(PARAMS, FUNDS)
    conserved = value_conserved(total_value(start))
    state = run(SETUP)
    for tx in log:
        after, receipt = apply(state, tx)
        assert receipt.ok or after is state
        assert after.now == state.now + (1 if isinstance(tx, Tick) else 0)
        state = after
        assert conserved(state) and no_double_payment(state) and no_payment_before_deadline(state)
        check_plain(state)
    assert execute([*SETUP, *log], start) == state


@settings(max_examples=200, deadline=None)
@given(PHASED_LOG)
def test_honest_behaviour_keeps_every_invariant(log: list[Tx]) -> None:
    """Random logs in which V1, V2 vote only what their sample shows and TRAINER_A never fakes."""
    start = genesis(PARAMS, FUNDS)
    honesty = Honesty(validators=frozenset({V1, V2}), trainers=frozenset({TRAINER_A}))
    invariants = ledger_invariants(total_value(start), honesty)
    state = run(SETUP)
    for tx in log:
        state, _ = apply(state, honest_version(state, tx))
        assert [name for name, holds in invariants.items() if not holds(state)] == []


def honest_version(state: LedgerState, tx: Tx) -> Tx:
    """``tx`` as an honest participant would send it (an honest party never sends the faked alternative)."""
    if isinstance(tx, Claim) and tx.trainer == TRAINER_A:
        return Claim(tx.trainer, tx.order, tx.model, tx.score, frozenset())
    if isinstance(tx, Validate) and tx.validator in (V1, V2):
        claim = next((c for c in state.claims if (c.order, c.trainer) == (tx.order, tx.trainer)), None)
        if claim is None:
            return tx
        hits = sorted(tx.sample & claim.faked)
        verdict, evidence = (Verdict.REJECT, hits[0]) if hits else (Verdict.ACCEPT, NO_SEGMENT)
        return Validate(tx.validator, tx.order, tx.trainer, verdict, claim.score, tx.sample, evidence)
    return tx
