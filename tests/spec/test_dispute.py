"""The bisection dispute game in the ledger specification: moves, rejections, the model and its bugs."""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from model_checker.checker import check
from model_checker.model import ConstantError, check_plain
from spec import dispute
from spec.dispute import Dispute, Outcome, Supplied
from spec.ledger import (
    Bisect,
    Challenge,
    Claim,
    Finalize,
    LedgerState,
    OrderStatus,
    Reason,
    Reveal,
    Supply,
    Tick,
    Timeout,
    Tx,
    Validate,
    Verdict,
    apply,
    find_dispute,
    genesis,
    total_value,
)
from spec.ledger.model import LEDGER_MODELS, LedgerModelConfig
from spec.ledger.properties import no_double_payment, value_conserved
from tests.spec.test_ledger import (
    CHALLENGER,
    DEADLINE,
    FUNDS,
    PARAMS,
    REJECTIONS,
    SETUP,
    TRAINER_A,
    TRAINER_B,
    V1,
    V2,
    V3,
    accept,
    rejected_whole,
    run,
)
from tests.spec.test_ledger_models import violated

STEPS = 8
GAME = PARAMS._replace(dispute_steps=STEPS, move_window=1, dispute_bond=4)
GAME_FUNDS = (*FUNDS[:-1], 4)
GENUINE = Claim(TRAINER_A, 0, 11, 5, frozenset(), (0, 0, 0))
FORGED_AT = 6
FAKED = Claim(TRAINER_B, 0, 12, 7, frozenset({2}), (0, 0, FORGED_AT))
ON_GENUINE = (0, TRAINER_A, 0, CHALLENGER)
ON_FAKED = (0, TRAINER_B, 2, V2)
"""The dispute V2's REJECT of segment 2 of the faked claim opens."""


def game_run(log: Sequence[Tx]) -> LedgerState:
    return run(log, GAME, GAME_FUNDS)


OPENED = (*SETUP, GENUINE, accept(V1, TRAINER_A, 5, 0), Challenge(CHALLENGER, 0, TRAINER_A, V1, 0))
REJECTED = (*SETUP, FAKED, Validate(V2, 0, TRAINER_B, Verdict.REJECT, 7, frozenset({2}), 2))


def honest_challenger_plays(state: LedgerState, key: tuple[int, int, int, int]) -> LedgerState:
    """Both parties move until the dispute ends: the trainer reveals and finally supplies its committed
    state, the challenger agrees exactly with honest digests."""
    while (record := find_dispute(state, key)) is not None and record.outcome is Outcome.OPEN:
        if record.mover is dispute.Mover.CHALLENGER:
            agree = dispute.honest_digest(record, dispute.midpoint(record.lo, record.hi))
            tx: Tx = Bisect(key, agree)
        elif record.one_step_left:
            tx = Supply(key, Supplied.COMMITTED)
        else:
            tx = Reveal(key)
        state, receipt = apply(state, tx)
        assert receipt.ok, (tx, receipt.reason)
    return state


def test_bisection_finds_the_forged_step_in_log_moves_and_the_fraud_is_proved() -> None:
    state = honest_challenger_plays(game_run(REJECTED), ON_FAKED)
    record = find_dispute(state, ON_FAKED)
    assert record is not None
    assert (record.outcome, record.lo, record.hi) == (Outcome.FRAUD_PROVED, FORGED_AT - 1, FORGED_AT)
    assert record.moves == dispute.max_moves(STEPS) == 7


def test_a_challenger_bonds_and_loses_the_bond_to_an_honest_trainer() -> None:
    state = game_run(OPENED)
    assert state.balances[CHALLENGER] == 0
    assert total_value(state) == sum(GAME_FUNDS)
    ended = honest_challenger_plays(state, ON_GENUINE)
    record = find_dispute(ended, ON_GENUINE)
    assert record is not None and record.outcome is Outcome.STEP_VALID
    assert ended.balances[TRAINER_A] == state.balances[TRAINER_A] + GAME.dispute_bond
    assert total_value(ended) == sum(GAME_FUNDS)


def test_finalize_waits_for_disputes_and_a_default_convicts_only_the_trainer() -> None:
    """A trainer that lets its deadline pass is disqualified and slashed; the validator who accepted
    the segment is not, since a default proves nothing about the segment."""
    waited = game_run((*REJECTED, accept(V1, TRAINER_B, 7, 2), *[Tick()] * (DEADLINE + 1)))
    assert apply(waited, Finalize(0))[1].reason is Reason.DISPUTES_OPEN
    state, receipt = apply(waited, Timeout(ON_FAKED))
    record = find_dispute(state, ON_FAKED)
    assert receipt.ok and record is not None and record.outcome is Outcome.TRAINER_DEFAULTED
    settled, receipt = apply(state, Finalize(0))
    assert receipt.ok
    assert settled.orders[0].status is OrderStatus.REFUNDED
    assert settled.slashed == {TRAINER_B}


def test_a_validator_that_accepted_a_proved_forgery_is_slashed() -> None:
    state = honest_challenger_plays(game_run((*REJECTED, accept(V1, TRAINER_B, 7, 2))), ON_FAKED)
    finish: list[Tx] = [*[Tick()] * (DEADLINE + 1), Finalize(0)]
    for tx in finish:
        state, receipt = apply(state, tx)
        assert receipt.ok
    assert state.slashed == {TRAINER_B, V1}
    assert state.balances[V2] > GAME_FUNDS[V2] - GAME.min_validator_stake  # V2 was right: rewarded


GAME_REJECTIONS = [
    (SETUP, Claim(TRAINER_A, 0, 0, 1, frozenset(), ()), Reason.BAD_SEGMENTS),
    (SETUP, Claim(TRAINER_A, 0, 0, 1, frozenset({2}), (0, 0, 0)), Reason.BAD_SEGMENTS),
    (SETUP, Claim(TRAINER_A, 0, 0, 1, frozenset({2}), (0, 0, STEPS + 1)), Reason.BAD_SEGMENTS),
    (OPENED, Reveal((0, TRAINER_A, 1, CHALLENGER)), Reason.UNKNOWN_DISPUTE),
    (OPENED, Bisect(ON_GENUINE, True), Reason.NOT_YOUR_MOVE),
    (OPENED, Supply(ON_GENUINE, Supplied.COMMITTED), Reason.NOT_YOUR_MOVE),
    ((*OPENED, Reveal(ON_GENUINE)), Reveal(ON_GENUINE), Reason.NOT_YOUR_MOVE),
    ((*OPENED, Tick(), Tick()), Reveal(ON_GENUINE), Reason.MOVE_WINDOW_CLOSED),
    ((*OPENED, Tick()), Timeout(ON_GENUINE), Reason.MOVE_WINDOW_OPEN),
    ((*OPENED, Tick(), Tick(), Timeout(ON_GENUINE)), Timeout(ON_GENUINE), Reason.UNKNOWN_DISPUTE),
    ((*OPENED, *[Tick()] * (DEADLINE + 1)), Finalize(0), Reason.DISPUTES_OPEN),
    (OPENED, Challenge(CHALLENGER, 0, TRAINER_A, V1, 0), Reason.DUPLICATE_CHALLENGE),
    (OPENED, Challenge(V3, 0, TRAINER_A, V1, 1), Reason.INSUFFICIENT_FUNDS),
    (OPENED, Challenge(V3, 0, TRAINER_A, V1, 1, (0, TRAINER_A, 2)), Reason.BAD_EVIDENCE),
]  # fmt: skip


@pytest.mark.parametrize(
    ("setup", "tx", "reason"), GAME_REJECTIONS, ids=[r.name for _, _, r in GAME_REJECTIONS]
)
def test_invalid_moves_are_rejected_whole_with_their_reason(
    setup: Sequence[Tx], tx: Tx, reason: Reason
) -> None:
    rejected_whole(game_run(setup), tx, reason)


def test_every_rejection_reason_is_exercised() -> None:
    exercised = {reason for _, _, reason in [*REJECTIONS, *GAME_REJECTIONS]}
    assert exercised == set(Reason) - {Reason.OK}


def test_without_the_game_moves_and_commitments_are_refused() -> None:
    state = genesis(PARAMS, FUNDS)
    for tx in SETUP:
        state = apply(state, tx)[0]
    assert apply(state, Claim(TRAINER_A, 0, 0, 1, frozenset(), (0, 0, 0)))[1].reason is Reason.BAD_SEGMENTS
    assert apply(state, Reveal(ON_GENUINE))[1].reason is Reason.UNKNOWN_DISPUTE


@given(st.integers(1, 64), st.data())
def test_honest_parties_win_against_any_opponent_in_log_moves(steps: int, data: st.DataObject) -> None:
    """The game alone: an honest challenger against a forged segment, or an honest trainer against any
    challenger, wins within max_moves whatever the other side chooses."""
    forged_at = data.draw(st.integers(0, steps))
    honest_trainer = forged_at == 0
    record: Dispute = dispute.opened((0, 1, 0, 2), 0, forged_at, steps, due=0)
    while record.outcome is Outcome.OPEN:
        if record.mover is dispute.Mover.CHALLENGER:
            honest = dispute.honest_digest(record, dispute.midpoint(record.lo, record.hi))
            agree = data.draw(st.booleans()) if honest_trainer else honest
            record = dispute.bisected(record, agree, due=0)
        elif record.one_step_left:
            supplied = Supplied.COMMITTED if honest_trainer else data.draw(st.sampled_from(Supplied))
            record = dispute.adjudicated(record, supplied)
        else:
            record = dispute.revealed(record, due=0)
        assert record.moves <= dispute.max_moves(steps)
    assert record.outcome.challenger_lost if honest_trainer else record.outcome.trainer_lost


GAME_TX: st.SearchStrategy[Tx] = st.one_of(
    st.builds(Tick),
    st.builds(Reveal, st.sampled_from((ON_GENUINE, ON_FAKED))),
    st.builds(Bisect, st.sampled_from((ON_GENUINE, ON_FAKED)), st.booleans()),
    st.builds(Supply, st.sampled_from((ON_GENUINE, ON_FAKED)), st.sampled_from(Supplied)),
    st.builds(Timeout, st.sampled_from((ON_GENUINE, ON_FAKED))),
    st.builds(Challenge, st.sampled_from((CHALLENGER, V3)), st.just(0),
              st.sampled_from((TRAINER_A, TRAINER_B)), st.sampled_from((V1, V2)), st.integers(0, 2)),
    st.builds(Finalize, st.just(0)),
)  # fmt: skip


@settings(max_examples=200, deadline=None)
@given(st.lists(GAME_TX, max_size=40))
def test_any_game_log_conserves_value_and_settles_once(log: list[Tx]) -> None:
    """Whatever the parties send and PBFT orders, bonds and stakes move and are never minted."""
    state = game_run((*REJECTED, GENUINE, accept(V1, TRAINER_A, 5, 0)))
    conserved = value_conserved(total_value(genesis(GAME, GAME_FUNDS)))
    for tx in log:
        after, receipt = apply(state, tx)
        assert receipt.ok or after is state
        state = after
        assert conserved(state) and no_double_payment(state)
        check_plain(state)


def test_the_dispute_model_holds_every_property() -> None:
    result = check(LEDGER_MODELS["ledger-dispute"].instantiate())
    assert result.verdict == "ok"
    assert {"HonestNeverLosesDispute", "DisputesEndInLogMoves", "EveryDisputeEnds"} <= {
        p.name for p in result.properties if p.status == "holds"
    }
    assert result.distinct_states == 8_674


@pytest.mark.parametrize(
    ("bug", "violation", "length", "culprit"),
    [
        ("referee_trusts_supplied_state", "HonestNeverLosesDispute", 9, "ByzantineSupply"),
        ("midpoint_off_by_one", "HonestNeverLosesDispute", 10, "ByzantineBisect"),
        ("deadline_not_enforced", "deadlock", 12, "Tick"),
    ],
)
def test_each_planted_game_bug_has_a_shortest_counterexample(
    bug: str, violation: str, length: int, culprit: str
) -> None:
    found = violated(check(LEDGER_MODELS["ledger-dispute"].instantiate({"bug": bug}), liveness=False))
    trace = found[violation].counterexample
    assert trace is not None and len(trace.steps) == length
    assert culprit in {s.label.action for s in trace.steps if s.label is not None}


def test_the_game_constants_are_checked() -> None:
    with pytest.raises(ConstantError, match="symmetry"):
        LedgerModelConfig(dispute_steps=2, symmetry=True)
    with pytest.raises(ConstantError, match="dispute_steps"):
        LedgerModelConfig(dispute_steps=-1)
