"""The PoT ledger: every rejection reason, settlement, and property-based invariants."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pot_impl import codec
from pot_impl.encoded import EncodedRecords
from pot_impl.ledger.ledger import Ledger, Reason
from pot_impl.ledger.records import AccountRecord, CommittedOrder, LedgerParams, OrderStatus
from pot_impl.ledger.standin import StandInProofChecker, derive_sample, fraud_evidence, seed_signature
from pot_impl.ledger.transactions import (
    NO_SEGMENT,
    Challenge,
    Claim,
    Finalize,
    Order,
    Receipt,
    Register,
    Role,
    Transaction,
    Validate,
    Verdict,
)

PARAMS = LedgerParams(
    segments=8,
    sample_size=3,
    validation_quorum=2,
    min_trainer_stake=5,
    min_validator_stake=10,
    challenge_window=3,
)
TASK = b"task"
GOOD_ROOT, FAKE_ROOT = b"honest-root", b"faked-root"
FAKED = frozenset({0, 1, 2, 3, 4, 5})  # most segments faked, so every sample of 3 hits one
ACCOUNTS = {"client": 1_000, "trainer": 100, "cheat": 100, "v1": 100, "v2": 100, "v3": 100, "anyone": 10}


def checker() -> StandInProofChecker:
    return StandInProofChecker(PARAMS.segments, PARAMS.sample_size, {FAKE_ROOT: FAKED})


def fresh() -> Ledger:
    return Ledger(PARAMS, ACCOUNTS, checker())


def validation(
    validator: str, root: bytes, verdict: Verdict, score: int, trainer: str = "trainer"
) -> Validate:
    signature = seed_signature(validator.encode(), TASK, root)
    sample = derive_sample(signature, PARAMS.segments, PARAMS.sample_size)
    if verdict == Verdict.ACCEPT:
        return Validate(0, trainer, verdict, score, sample, signature)
    faked = [s for s in sample if s in FAKED] or [sample[0]]
    return Validate(0, trainer, verdict, score, sample, signature, faked[0], fraud_evidence(faked[0]))


def registered() -> Ledger:
    """Roles registered, one order (deadline 10) and the honest trainer's claim."""
    ledger = fresh()
    ok(ledger, "trainer", Register(Role.TRAINER, b"kt", 5), 1)
    ok(ledger, "cheat", Register(Role.TRAINER, b"kc", 5), 1)
    for v in ("v1", "v2", "v3"):
        ok(ledger, v, Register(Role.VALIDATOR, v.encode(), 10), 1)
    assert ledger.apply("client", Order(TASK, 100, 30, 10), 2).created_id == 0
    ok(ledger, "trainer", Claim(0, b"model", 90, GOOD_ROOT), 3)
    return ledger


def ok(ledger: Ledger, sender: str, tx: Transaction, height: int) -> None:
    receipt = ledger.apply(sender, tx, height)
    assert receipt.ok, receipt


def rejected(ledger: Ledger, sender: str, tx: Transaction, height: int, reason: Reason) -> None:
    """The transaction is rejected for ``reason`` and the state is exactly as before."""
    ledger.apply(sender, Register(Role.NONE, b"", 0), height)  # move the clock first, harmlessly rejected
    before = ledger.digest()
    receipt = ledger.apply(sender, tx, height)
    assert receipt.reason == reason.value
    assert ledger.digest() == before


def test_rejections_name_their_reason_and_change_nothing() -> None:
    ledger = registered()
    v1_accept = validation("v1", GOOD_ROOT, Verdict.ACCEPT, 90)
    cases: list[tuple[str, Transaction, int, Reason]] = [
        ("stranger", Order(TASK, 1, 0, 20), 4, Reason.UNKNOWN_ACCOUNT),
        ("trainer", Register(Role.VALIDATOR, b"k", 10), 4, Reason.ALREADY_REGISTERED),
        ("anyone", Register(7, b"k", 10), 4, Reason.BAD_ROLE),
        ("anyone", Register(Role.TRAINER, b"", 5), 4, Reason.BAD_PUBLIC_KEY),
        ("anyone", Register(Role.VALIDATOR, b"k", 9), 4, Reason.STAKE_TOO_LOW),
        ("client", Order(TASK, 10_000, 0, 20), 4, Reason.INSUFFICIENT_FUNDS),
        ("client", Order(TASK, 0, 5, 20), 4, Reason.BAD_AMOUNT),
        ("client", Order(TASK, 10, 5, 4), 4, Reason.DEADLINE_NOT_IN_FUTURE),
        ("cheat", Claim(9, b"m", 1, FAKE_ROOT), 4, Reason.UNKNOWN_ORDER),
        ("anyone", Claim(0, b"m", 1, FAKE_ROOT), 4, Reason.NOT_A_TRAINER),
        ("trainer", Claim(0, b"m", 1, GOOD_ROOT), 4, Reason.DUPLICATE_CLAIM),
        ("trainer", v1_accept, 4, Reason.NOT_A_VALIDATOR),
        ("v1", validation("v1", GOOD_ROOT, Verdict.ACCEPT, 90, trainer="cheat"), 4, Reason.UNKNOWN_CLAIM),
        ("v1", validation("v1", GOOD_ROOT, Verdict.ACCEPT, 80), 4, Reason.SCORE_MISMATCH),
        ("v2", v1_accept, 4, Reason.BAD_SAMPLE),  # another validator's sample and signature
        ("v1", Validate(0, "trainer", Verdict.ACCEPT, 90, (0, 1), b"s"), 4, Reason.BAD_SAMPLE),
        (
            "v1",
            Validate(0, "trainer", Verdict.REJECT, 0, v1_accept.sample, b"s", 99, b""),
            4,
            Reason.BAD_EVIDENCE,
        ),
        ("anyone", Challenge(0, "trainer", "v1", 0, fraud_evidence(0)), 4, Reason.UNKNOWN_VOTE),
    ]
    for sender, tx, height, reason in cases:
        rejected(ledger, sender, tx, height, reason)
    assert ledger.balance("stranger") == 0  # a rejected sender is given no account
    ok(ledger, "v1", v1_accept, 4)
    rejected(ledger, "v1", v1_accept, 4, Reason.DUPLICATE_VOTE)
    rejected(ledger, "anyone", Challenge(0, "trainer", "v1", 8, b"x"), 5, Reason.BAD_SEGMENT)
    ok(ledger, "anyone", Challenge(0, "trainer", "v1", 1, fraud_evidence(1)), 5)  # recorded, not upheld
    rejected(ledger, "cheat", Claim(0, b"m", 1, FAKE_ROOT), 10, Reason.CLAIM_WINDOW_CLOSED)
    rejected(ledger, "v2", validation("v2", GOOD_ROOT, Verdict.ACCEPT, 90), 10, Reason.CLAIM_WINDOW_CLOSED)
    rejected(ledger, "client", Finalize(0), 12, Reason.DEADLINE_NOT_REACHED)
    rejected(ledger, "client", Finalize(5), 12, Reason.UNKNOWN_ORDER)
    rejected(
        ledger,
        "anyone",
        Challenge(0, "trainer", "v1", 2, fraud_evidence(2)),
        13,
        Reason.CHALLENGE_WINDOW_CLOSED,
    )
    ok(ledger, "client", Finalize(0), 13)
    rejected(ledger, "client", Finalize(0), 14, Reason.ORDER_SETTLED)
    rejected(ledger, "trainer", Claim(0, b"m", 1, GOOD_ROOT), 14, Reason.ORDER_SETTLED)


def test_malformed_operation_bytes_are_rejected_by_execute() -> None:
    ledger = fresh()
    before = ledger.digest()
    receipt = codec.decode(ledger.execute("client", b"\x93garbage", 0), Receipt)
    assert receipt.reason == Reason.MALFORMED.value and ledger.digest() == before


def test_best_qualifying_claim_is_paid_and_right_validators_share_the_fee() -> None:
    ledger = registered()
    ok(ledger, "cheat", Claim(0, b"better?", 99, FAKE_ROOT), 3)
    for v in ("v1", "v2"):
        ok(ledger, v, validation(v, GOOD_ROOT, Verdict.ACCEPT, 90), 4)
    ok(ledger, "v3", validation("v3", FAKE_ROOT, Verdict.ACCEPT, 99, trainer="cheat"), 4)
    ok(ledger, "v1", validation("v1", FAKE_ROOT, Verdict.REJECT, 0, trainer="cheat"), 5)
    v3_sample = ledger.votes[(0, "cheat", "v3")].sample
    proved = next(s for s in v3_sample if s in FAKED)
    ok(ledger, "anyone", Challenge(0, "cheat", "v3", proved, fraud_evidence(proved)), 6)
    total = ledger.total_value()
    client_before = ledger.balance("client")
    ok(ledger, "client", Finalize(0), 13)
    order = ledger.orders[0]
    assert order.status == OrderStatus.PAID and order.winner == "trainer" and order.escrow == 0
    assert ledger.balance("trainer") == 95 + 100
    # right: v1 and v2 (accepted the winner; v1 also rejected the cheat with valid evidence); v3 wrong.
    assert ledger.balance("v1") == 90 + 15 and ledger.balance("v2") == 90 + 15
    assert ledger.accounts["v3"].stake == 0 and ledger.accounts["cheat"].stake == 0
    assert ledger.slashed == {"v3", "cheat"}
    assert ledger.balance("client") == client_before + 10 + 5  # the slashed stakes
    assert ledger.total_value() == total


def test_refund_when_no_claim_qualifies() -> None:
    ledger = registered()
    ok(ledger, "v1", validation("v1", GOOD_ROOT, Verdict.ACCEPT, 90), 4)  # one accept, quorum is 2
    client_before = ledger.balance("client")
    ok(ledger, "anyone", Finalize(0), 13)
    assert ledger.orders[0].status == OrderStatus.REFUNDED
    assert ledger.balance("client") == client_before + 100 and ledger.balance("trainer") == 95
    assert ledger.balance("v1") == 90 + 30  # its ACCEPT was not proved wrong: it did the work, it is paid


def test_fee_returns_to_the_client_when_no_validator_was_right() -> None:
    ledger = registered()
    client_before = ledger.balance("client")
    ok(ledger, "anyone", Finalize(0), 13)
    assert ledger.balance("client") == client_before + 100 + 30


def test_a_fraud_proof_must_be_for_the_segment_it_names() -> None:
    ledger = registered()
    ok(ledger, "cheat", Claim(0, b"m", 50, FAKE_ROOT), 3)
    ok(ledger, "v1", validation("v1", FAKE_ROOT, Verdict.ACCEPT, 50, trainer="cheat"), 4)
    sample = ledger.votes[(0, "cheat", "v1")].sample
    named = next(s for s in sample if s in FAKED)
    other = next(s for s in FAKED if s != named)
    ok(ledger, "anyone", Challenge(0, "cheat", "v1", named, fraud_evidence(other)), 5)
    assert not ledger.challenges[(0, "cheat", "v1", named)].upheld


def test_a_failed_challenge_does_not_shield_the_segment_from_the_genuine_one() -> None:
    """Worthless evidence filed first must not close the segment: the genuine fraud proof that
    follows is upheld; only an upheld challenge closes it."""
    ledger = registered()
    ok(ledger, "cheat", Claim(0, b"m", 50, FAKE_ROOT), 3)
    ok(ledger, "v1", validation("v1", FAKE_ROOT, Verdict.ACCEPT, 50, trainer="cheat"), 4)
    named = next(s for s in ledger.votes[(0, "cheat", "v1")].sample if s in FAKED)
    other = next(s for s in FAKED if s != named)
    ok(ledger, "cheat", Challenge(0, "cheat", "v1", named, fraud_evidence(other)), 5)
    ok(ledger, "anyone", Challenge(0, "cheat", "v1", named, fraud_evidence(named)), 5)
    assert ledger.challenges[(0, "cheat", "v1", named)].upheld
    again = Challenge(0, "cheat", "v1", named, fraud_evidence(named))
    rejected(ledger, "anyone", again, 5, Reason.DUPLICATE_CHALLENGE)


# ---------------------------------------------------------------- the data-order seed


class RecordingChecker(StandInProofChecker):
    """The stand-in checker, remembering the order bytes the ledger asks it about."""

    def __init__(self) -> None:
        super().__init__(PARAMS.segments, PARAMS.sample_size, {FAKE_ROOT: FAKED})
        self.orders: list[bytes] = []

    def check_sample(
        self, task: bytes, proof_root: bytes, validator_key: bytes, sample: tuple[int, ...], signature: bytes
    ) -> bool:
        self.orders.append(task)
        return super().check_sample(task, proof_root, validator_key, sample, signature)

    def check_fraud_proof(self, task: bytes, proof_root: bytes, evidence: bytes) -> bool:
        self.orders.append(task)
        return super().check_fraud_proof(task, proof_root, evidence)


def test_same_task_ordered_at_different_points_gets_different_ledger_seeds() -> None:
    ledger = fresh()
    ok(ledger, "client", Order(TASK, 10, 0, 50), 2)
    ok(ledger, "client", Order(TASK, 10, 0, 50), 2)
    ok(ledger, "client", Order(TASK, 10, 0, 50), 7)
    seeds = [ledger.orders[i].data_order_seed for i in range(3)]
    assert len(set(seeds)) == 3 and all(len(seed) == 32 for seed in seeds)
    restored = fresh()
    restored.restore(ledger.snapshot())
    assert [restored.orders[i].data_order_seed for i in range(3)] == seeds


def test_seed_depends_on_ledger_state_the_client_does_not_control() -> None:
    """The same client posting the same order at the same height gets another seed when anyone
    else's earlier transaction differs, and the same seed when the whole log is equal."""
    seeds = []
    for stake in (10, 10, 11):
        ledger = fresh()
        ok(ledger, "v1", Register(Role.VALIDATOR, b"v1", stake), 1)
        ok(ledger, "client", Order(TASK, 100, 30, 10), 2)
        seeds.append(ledger.orders[0].data_order_seed)
    assert seeds[0] == seeds[1] != seeds[2]


def test_checker_gets_the_posted_task_with_the_ledgers_seed() -> None:
    checker = RecordingChecker()
    ledger = Ledger(PARAMS, ACCOUNTS, checker)
    for v in ("v1", "v2"):
        ok(ledger, v, Register(Role.VALIDATOR, v.encode(), 10), 1)
    ok(ledger, "cheat", Register(Role.TRAINER, b"kc", 5), 1)
    ok(ledger, "client", Order(TASK, 100, 30, 10), 2)
    ok(ledger, "cheat", Claim(0, b"m", 50, FAKE_ROOT), 3)
    ok(ledger, "v1", validation("v1", FAKE_ROOT, Verdict.REJECT, 0, trainer="cheat"), 4)
    ok(ledger, "v2", validation("v2", FAKE_ROOT, Verdict.ACCEPT, 50, trainer="cheat"), 4)
    ok(ledger, "anyone", Challenge(0, "cheat", "v2", 0, fraud_evidence(0)), 5)
    expected = CommittedOrder(TASK, ledger.orders[0].data_order_seed)
    assert len(checker.orders) >= 3
    assert {codec.decode(order, CommittedOrder) for order in checker.orders} == {expected}


# ---------------------------------------------------------------- properties

SENDERS = [*sorted(ACCOUNTS), "stranger"]
VALIDATORS = ("v1", "v2", "v3")


def transactions() -> st.SearchStrategy[tuple[str, Transaction]]:
    """Plausible and implausible transactions over a small world, so many are applied and many rejected."""
    order_ids = st.integers(0, 2)
    trainers = st.sampled_from(["trainer", "cheat"])
    roots = {"trainer": GOOD_ROOT, "cheat": FAKE_ROOT}

    def vote(validator: str, trainer: str, verdict: Verdict, order_id: int) -> tuple[str, Transaction]:
        tx = validation(validator, roots[trainer], verdict, 90, trainer)
        return validator, dataclasses.replace(tx, order_id=order_id)

    def claim(trainer: str, order_id: int) -> tuple[str, Transaction]:
        return trainer, Claim(order_id, b"m", 90, roots[trainer])

    return st.one_of(
        st.tuples(
            st.sampled_from(SENDERS),
            st.builds(Register, st.sampled_from([1, 2]), st.just(b"k"), st.integers(0, 30)),
        ),
        st.tuples(st.sampled_from(VALIDATORS), st.just(Register(Role.VALIDATOR, b"key", 10))).map(
            lambda p: (p[0], Register(Role.VALIDATOR, p[0].encode(), 10))
        ),
        st.tuples(
            st.just("client"),
            st.builds(Order, st.just(TASK), st.integers(0, 300), st.integers(0, 50), st.integers(0, 30)),
        ),
        st.builds(claim, trainers, order_ids),
        st.builds(vote, st.sampled_from(VALIDATORS), trainers, st.sampled_from(list(Verdict)), order_ids),
        st.tuples(
            st.sampled_from(SENDERS),
            st.builds(
                Challenge,
                order_ids,
                trainers,
                st.sampled_from(VALIDATORS),
                st.integers(0, 7),
                st.integers(0, 7).map(fraud_evidence),
            ),
        ),
        st.tuples(st.sampled_from(SENDERS), st.builds(Finalize, order_ids)),
    )


SETUP: list[tuple[str, Transaction, int]] = [
    ("trainer", Register(Role.TRAINER, b"kt", 5), 0),
    ("cheat", Register(Role.TRAINER, b"kc", 5), 0),
    *((v, Register(Role.VALIDATOR, v.encode(), 10), 0) for v in VALIDATORS),
    *(("client", Order(TASK, 100, 30, deadline), 0) for deadline in (6, 12, 20)),
    *(
        (trainer, Claim(order, b"m", 90, root), 0)
        for trainer, root in (("trainer", GOOD_ROOT), ("cheat", FAKE_ROOT))
        for order in (0, 1)
    ),
    *((v, validation(v, GOOD_ROOT, Verdict.ACCEPT, 90), 0) for v in ("v1", "v2")),
    ("v3", validation("v3", FAKE_ROOT, Verdict.ACCEPT, 90, trainer="cheat"), 0),
]
"""Registrations, orders, claims and votes first, so random steps reach challenges and settlement."""

logs = st.lists(st.tuples(transactions(), st.integers(0, 2)), max_size=50).map(
    lambda steps: SETUP + _with_heights(steps)
)


def _with_heights(steps: list[tuple[tuple[str, Transaction], int]]) -> list[tuple[str, Transaction, int]]:
    height, out = 0, []
    for (sender, tx), advance in steps:
        height += advance
        out.append((sender, tx, height))
    return out


def run(
    log: list[tuple[str, Transaction, int]], observe: Callable[[Ledger, object], None] | None = None
) -> Ledger:
    ledger = fresh()
    for sender, tx, height in log:
        receipt = ledger.apply(sender, tx, height)
        if observe:
            observe(ledger, receipt)
    return ledger


@settings(max_examples=150, deadline=None)
@given(logs)
def test_value_is_conserved_and_never_negative(log: list[tuple[str, Transaction, int]]) -> None:
    total = sum(ACCOUNTS.values())

    def check(ledger: Ledger, _: object) -> None:
        assert ledger.total_value() == total
        assert all(a.balance >= 0 and a.stake >= 0 for a in ledger.accounts.values())

    run(log, check)


@settings(max_examples=150, deadline=None)
@given(logs)
def test_no_order_is_paid_twice(log: list[tuple[str, Transaction, int]]) -> None:
    settlements: dict[int, int] = {}
    ledger = fresh()
    for sender, tx, height in log:
        receipt = ledger.apply(sender, tx, height)
        if isinstance(tx, Finalize) and receipt.ok:
            settlements[tx.order_id] = settlements.get(tx.order_id, 0) + 1
            assert ledger.orders[tx.order_id].escrow == 0
    assert all(count == 1 for count in settlements.values())
    assert all((o.status != OrderStatus.OPEN) == (o.order_id in settlements) for o in ledger.orders.values())


@settings(max_examples=100, deadline=None)
@given(logs)
def test_the_snapshot_from_kept_encodings_is_the_canonical_encoding_after_every_step(
    log: list[tuple[str, Transaction, int]],
) -> None:
    def check(ledger: Ledger, _: object) -> None:
        assert ledger.snapshot() == codec.encode(ledger.state())

    restored = fresh()
    restored.restore(run(log, check).snapshot())
    assert restored.snapshot() == codec.encode(restored.state())


def test_ledger_tables_change_by_assignment_only() -> None:
    table = EncodedRecords([(1, AccountRecord("a", 1, 0, 0, b""))])
    with pytest.raises(TypeError):
        table.pop(1)
    with pytest.raises(TypeError):
        table.update({2: AccountRecord("b", 1, 0, 0, b"")})


@settings(max_examples=100, deadline=None)
@given(logs)
def test_equal_logs_give_byte_identical_digests_and_snapshots_restore(
    log: list[tuple[str, Transaction, int]],
) -> None:
    first, second = run(log), run(log)
    assert first.snapshot() == second.snapshot() and first.digest() == second.digest()
    via_bytes = fresh()
    for sender, tx, height in log:
        via_bytes.execute(sender, codec.encode(tx), height)
    assert via_bytes.digest() == first.digest()
    restored = fresh()
    restored.restore(first.snapshot())
    assert restored.digest() == first.digest() and restored.state() == first.state()


@settings(max_examples=100, deadline=None)
@given(logs, st.data())
def test_rejected_transactions_leave_the_state_untouched(
    log: list[tuple[str, Transaction, int]], data: st.DataObject
) -> None:
    ledger = run(log)
    sender, tx = data.draw(transactions())
    height = ledger.height
    before = ledger.snapshot()
    receipt = ledger.apply(sender, tx, height)
    if not receipt.ok:
        assert ledger.snapshot() == before
    assert receipt.reason in {r.value for r in Reason}


def test_honest_validators_accepting_an_honest_claim_are_never_slashed() -> None:
    ledger = registered()
    for v in VALIDATORS:
        ok(ledger, v, validation(v, GOOD_ROOT, Verdict.ACCEPT, 90), 4)
        for segment in range(PARAMS.segments):  # nothing is faked under the honest root
            ok(ledger, "anyone", Challenge(0, "trainer", v, segment, fraud_evidence(segment)), 5)
    ok(ledger, "client", Finalize(0), 13)
    assert ledger.slashed == frozenset() and ledger.orders[0].winner == "trainer"
    assert NO_SEGMENT == -1
