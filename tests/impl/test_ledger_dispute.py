"""The ledger's bisection dispute game: moves, deadlines, bonds, and what each outcome settles."""

from __future__ import annotations

import dataclasses

from hypothesis import given, settings
from hypothesis import strategies as st

from pot_impl.ledger.ledger import Ledger, Reason
from pot_impl.ledger.records import DisputeOutcome, DisputeRecord, LedgerParams, OrderStatus
from pot_impl.ledger.standin import (
    StandInProofChecker,
    derive_sample,
    fraud_evidence,
    seed_signature,
    step_state,
)
from pot_impl.ledger.transactions import (
    Bisect,
    Challenge,
    Claim,
    Finalize,
    Order,
    Register,
    Reveal,
    Role,
    Supply,
    Timeout,
    Transaction,
    Validate,
    Verdict,
)
from tests.impl.test_ledger import ok, rejected

K, WINDOW, BOND = 4, 2, 7
PARAMS = LedgerParams(
    segments=2,
    sample_size=1,
    validation_quorum=1,
    min_trainer_stake=5,
    min_validator_stake=10,
    challenge_window=3,
    dispute_steps=K,
    move_window=WINDOW,
    dispute_bond=BOND,
)
TASK = b"task"
GOOD_ROOT, FAKE_ROOT = b"honest-root", b"faked-root"
ACCOUNTS = {"client": 1_000, "trainer": 100, "cheat": 100, "v1": 100, "challenger": BOND, "anyone": 0}
DEADLINE = 10


def with_claim(trainer: str, root: bytes, params: LedgerParams = PARAMS) -> Ledger:
    """One order, ``trainer``'s claim under ``root`` (every segment faked under FAKE_ROOT), a validator."""
    ledger = Ledger(params, ACCOUNTS, StandInProofChecker(PARAMS.segments, 1, {FAKE_ROOT: frozenset({0, 1})}))
    ok(ledger, trainer, Register(Role.TRAINER, b"k", 5), 1)
    ok(ledger, "v1", Register(Role.VALIDATOR, b"v1", 10), 1)
    assert ledger.apply("client", Order(TASK, 100, 30, DEADLINE), 2).created_id == 0
    ok(ledger, trainer, Claim(0, b"model", 90, root), 3)
    return ledger


def vote(ledger: Ledger, trainer: str, root: bytes, verdict: Verdict) -> int:
    """v1's vote on ``trainer``'s claim; returns its sampled segment."""
    signature = seed_signature(b"v1", TASK, root)
    sample = derive_sample(signature, PARAMS.segments, 1)
    evidence = (sample[0], fraud_evidence(sample[0])) if verdict == Verdict.REJECT else ()
    ok(ledger, "v1", Validate(0, trainer, verdict, 90, sample, signature, *evidence), 4)
    return sample[0]


def dispute(ledger: Ledger) -> DisputeRecord:
    (record,) = ledger.disputes.values()
    return record


def play(ledger: Ledger, root: bytes, segment: int, challenger: str, agrees: list[bool], height: int) -> int:
    """The trainer reveals and the challenger bisects as ``agrees`` says, down to one step; returns
    the height after the last bisection."""
    trainer = dispute(ledger).trainer
    for agree in agrees:
        ok(ledger, trainer, Reveal(0, segment, challenger, b"opening"), height)
        assert dispute(ledger).digest == step_state(
            root, segment, (dispute(ledger).lo + dispute(ledger).hi) // 2
        )
        ok(ledger, challenger, Bisect(0, trainer, segment, int(agree)), height + 1)
        height += 2
    assert dispute(ledger).hi - dispute(ledger).lo == 1
    return height


def test_an_unfounded_challenge_bisects_to_one_valid_step_and_pays_its_bond_to_the_trainer() -> None:
    ledger = with_claim("trainer", GOOD_ROOT)
    vote(ledger, "trainer", GOOD_ROOT, Verdict.ACCEPT)
    total = ledger.total_value()
    ok(ledger, "challenger", Challenge(0, "trainer", "v1", 1, b""), 5)
    assert ledger.balance("challenger") == 0 and ledger.total_value() == total
    assert dispute(ledger) == DisputeRecord(
        0, "trainer", 1, "challenger", BOND, 0, K, 0, b"", 5 + WINDOW, 0, int(DisputeOutcome.OPEN)
    )
    height = play(ledger, GOOD_ROOT, 1, "challenger", [True, False], 5)
    assert (dispute(ledger).lo, dispute(ledger).hi) == (2, 3)
    ok(ledger, "trainer", Supply(0, 1, "challenger", step_state(GOOD_ROOT, 1, 2), b"opening"), height)
    ended = dispute(ledger)
    assert ended.outcome == DisputeOutcome.STEP_VALID and ended.moves == 5  # 2 * log2(K) + 1
    assert ledger.balance("trainer") == 100 - 5 + BOND and ledger.total_value() == total
    ok(ledger, "client", Finalize(0), DEADLINE + PARAMS.challenge_window)
    assert ledger.orders[0].winner == "trainer" and not ledger.slashed


def test_a_rejects_dispute_proves_the_fraud_slashes_the_trainer_and_rewards_the_validator() -> None:
    ledger = with_claim("cheat", FAKE_ROOT)
    segment = vote(ledger, "cheat", FAKE_ROOT, Verdict.REJECT)
    assert dispute(ledger).bond == 0  # a validator disputes with its stake
    height = play(ledger, FAKE_ROOT, segment, "v1", [False, False], 5)
    ok(ledger, "cheat", Supply(0, segment, "v1", step_state(FAKE_ROOT, segment, 0), b"opening"), height)
    assert dispute(ledger).outcome == DisputeOutcome.FRAUD_PROVED
    assert ledger.proved_segments(ledger.claims[(0, "cheat")]) == {segment}
    ok(ledger, "client", Finalize(0), DEADLINE + 3)
    assert ledger.slashed == {"cheat"} and ledger.orders[0].status == OrderStatus.REFUNDED
    assert ledger.balance("v1") == 90 + 30  # the whole fee: the one validator proved right


def test_a_wrong_supplied_state_loses_the_dispute_without_proving_the_segment_faked() -> None:
    """The trainer defaults: disqualified and slashed, but the validator who accepted the genuine
    segment is not convicted (or a trainer could frame its validators by defending badly)."""
    ledger = with_claim("trainer", GOOD_ROOT)
    vote(ledger, "trainer", GOOD_ROOT, Verdict.ACCEPT)
    ok(ledger, "challenger", Challenge(0, "trainer", "v1", 1, b""), 5)
    height = play(ledger, GOOD_ROOT, 1, "challenger", [False, False], 5)
    ok(ledger, "trainer", Supply(0, 1, "challenger", step_state(GOOD_ROOT, 1, 1), b"opening"), height)
    assert dispute(ledger).outcome == DisputeOutcome.TRAINER_DEFAULTED
    assert ledger.balance("challenger") == BOND and not ledger.proved_segments(ledger.claims[(0, "trainer")])
    ok(ledger, "client", Finalize(0), DEADLINE + 3)
    assert ledger.slashed == {"trainer"} and ledger.accounts["v1"].stake == 10


def test_finalize_waits_for_the_orders_open_disputes() -> None:
    ledger = with_claim("trainer", GOOD_ROOT, dataclasses.replace(PARAMS, move_window=20))
    vote(ledger, "trainer", GOOD_ROOT, Verdict.ACCEPT)
    ok(ledger, "challenger", Challenge(0, "trainer", "v1", 0, b""), 5)
    rejected(ledger, "client", Finalize(0), DEADLINE + PARAMS.challenge_window, Reason.DISPUTES_OPEN)
    ok(ledger, "trainer", Reveal(0, 0, "challenger", b""), 20)
    ok(ledger, "anyone", Timeout(0, "trainer", 0, "challenger"), 41)
    ok(ledger, "client", Finalize(0), 41)
    assert ledger.orders[0].winner == "trainer"


def test_deadlines_a_timeout_waits_for_the_deadline_and_the_party_to_move_loses() -> None:
    ledger = with_claim("trainer", GOOD_ROOT)
    vote(ledger, "trainer", GOOD_ROOT, Verdict.ACCEPT)
    ok(ledger, "challenger", Challenge(0, "trainer", "v1", 0, b""), 5)
    ok(ledger, "trainer", Reveal(0, 0, "challenger", b"opening"), 5 + WINDOW)  # the last height it may
    due = dispute(ledger).due
    timeout = Timeout(0, "trainer", 0, "challenger")
    rejected(ledger, "anyone", timeout, due, Reason.MOVE_WINDOW_OPEN)
    rejected(ledger, "challenger", Bisect(0, "trainer", 0, 1), due + 1, Reason.MOVE_WINDOW_CLOSED)
    ok(ledger, "anyone", timeout, due + 1)
    assert dispute(ledger).outcome == DisputeOutcome.CHALLENGER_DEFAULTED
    assert ledger.balance("trainer") == 100 - 5 + BOND
    rejected(ledger, "anyone", timeout, due + 2, Reason.UNKNOWN_DISPUTE)


def test_moves_out_of_turn_and_malformed_challenges_are_rejected_without_effect() -> None:
    ledger = with_claim("trainer", GOOD_ROOT)
    vote(ledger, "trainer", GOOD_ROOT, Verdict.ACCEPT)
    rejected(ledger, "challenger", Challenge(0, "trainer", "v1", 0, b"evidence"), 5, Reason.BAD_EVIDENCE)
    ok(ledger, "challenger", Challenge(0, "trainer", "v1", 0, b""), 5)
    rejected(ledger, "challenger", Challenge(0, "trainer", "v1", 0, b""), 5, Reason.DUPLICATE_CHALLENGE)
    rejected(ledger, "challenger", Challenge(0, "trainer", "v1", 1, b""), 5, Reason.INSUFFICIENT_FUNDS)
    state = step_state(GOOD_ROOT, 0, 0)
    rejected(ledger, "challenger", Bisect(0, "trainer", 0, 1), 5, Reason.NOT_YOUR_MOVE)
    rejected(ledger, "trainer", Supply(0, 0, "challenger", state, b""), 5, Reason.NOT_YOUR_MOVE)
    rejected(ledger, "v1", Reveal(0, 0, "challenger", b""), 5, Reason.UNKNOWN_DISPUTE)  # not the trainer
    ok(ledger, "trainer", Reveal(0, 0, "challenger", b""), 5)
    rejected(ledger, "trainer", Reveal(0, 0, "challenger", b""), 5, Reason.NOT_YOUR_MOVE)
    rejected(ledger, "challenger", Bisect(0, "trainer", 0, 2), 5, Reason.MALFORMED)


class _Unopenable(StandInProofChecker):
    """A checker for which no opening opens anything and no step can be refereed."""

    def step_digest(self, task: bytes, proof_root: bytes, segment: int, step: int, opening: bytes) -> None:
        return None

    def referee(self, *args: object) -> None:
        return None


def test_a_trainer_that_cannot_open_its_commitment_cannot_move_and_times_out() -> None:
    ledger = with_claim("trainer", GOOD_ROOT)
    ledger._checker = _Unopenable(PARAMS.segments, 1, {})
    vote(ledger, "trainer", GOOD_ROOT, Verdict.ACCEPT)
    ok(ledger, "challenger", Challenge(0, "trainer", "v1", 0, b""), 5)
    rejected(ledger, "trainer", Reveal(0, 0, "challenger", b"junk"), 5, Reason.BAD_EVIDENCE)
    ok(ledger, "anyone", Timeout(0, "trainer", 0, "challenger"), 5 + WINDOW + 1)
    assert dispute(ledger).outcome == DisputeOutcome.TRAINER_DEFAULTED


def test_params_without_the_game_keep_their_encoding() -> None:
    """Ledgers without the game keep their genesis state: the game's parameters default to off."""
    plain = dataclasses.replace(PARAMS, dispute_steps=0, move_window=0, dispute_bond=0)
    assert LedgerParams(2, 1, 1, 5, 10, 3) == plain


MOVES = st.sampled_from(["reveal", "agree", "disagree", "supply-committed", "supply-other", "timeout"])


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(MOVES, st.integers(0, 3)), max_size=14), st.booleans())
def test_any_sequence_of_moves_conserves_value_and_survives_a_snapshot(
    moves: list[tuple[str, int]], faked: bool
) -> None:
    """Whatever anyone sends in whatever order, value is conserved, every dispute ends within
    2 log2(k) + 1 moves, and a restored snapshot is the same ledger."""
    trainer, root = ("cheat", FAKE_ROOT) if faked else ("trainer", GOOD_ROOT)
    ledger = with_claim(trainer, root)
    vote(ledger, trainer, root, Verdict.ACCEPT)
    ok(ledger, "challenger", Challenge(0, trainer, "v1", 0, b""), 5)
    total, height = ledger.total_value(), 5
    for move, wait in moves:
        height += wait
        lo = dispute(ledger).lo
        choices: dict[str, Transaction] = {
            "reveal": Reveal(0, 0, "challenger", b""),
            "agree": Bisect(0, trainer, 0, 1),
            "disagree": Bisect(0, trainer, 0, 0),
            "supply-committed": Supply(0, 0, "challenger", step_state(root, 0, lo), b""),
            "supply-other": Supply(0, 0, "challenger", step_state(root, 0, lo + 1), b""),
            "timeout": Timeout(0, trainer, 0, "challenger"),
        }
        tx = choices[move]
        sender = (
            "challenger" if isinstance(tx, Bisect) else ("anyone" if isinstance(tx, Timeout) else trainer)
        )
        ledger.apply(sender, tx, height)
        assert ledger.total_value() == total
        assert dispute(ledger).moves <= 2 * (K - 1).bit_length() + 1
    copy = Ledger(PARAMS, {}, StandInProofChecker(PARAMS.segments, 1, {}))
    copy.restore(ledger.snapshot())
    assert copy.state() == ledger.state()
