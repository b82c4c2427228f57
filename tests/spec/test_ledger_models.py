"""The ledger models, checked exhaustively: the protocol holds, every planted bug is caught."""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Iterator
from typing import Any

import pytest

from model_checker.checker import CheckResult, PropertyResult, check
from model_checker.model import Model, SpecError
from model_checker.trace import Trace
from spec.ledger import NO_SEGMENT, ChallengeRecord, ClaimRecord, LedgerBug, LedgerState, OrderStatus
from spec.ledger.model import CONSTANT_DOCS, LEDGER_MODELS, Cast, LedgerModelConfig
from spec.ledger.properties import some_order_open

LIVENESS = "EveryOrderEventuallyFinalized"


def tiny(**constants: Any) -> Model[LedgerState]:
    return LEDGER_MODELS["ledger-tiny"].instantiate(constants)


def violated(result: CheckResult) -> dict[str, PropertyResult]:
    return {p.name: p for p in result.properties if p.status == "violated"}


def test_ledger_tiny_satisfies_every_invariant_and_liveness() -> None:
    result = check(tiny())
    assert result.verdict == "ok"
    assert {p.name for p in result.properties} >= {*tiny().invariants, "deadlock", LIVENESS}
    assert all(p.status == "holds" for p in result.properties)


@pytest.mark.slow
def test_ledger_satisfies_every_invariant_and_liveness() -> None:
    result = check(LEDGER_MODELS["ledger"].instantiate())
    assert result.verdict == "ok"
    assert all(p.status == "holds" for p in result.properties)


SAFETY_BUGS = [
    ("finalize_ignores_challenges", "NoFakeWinner"),
    ("slash_on_unproved_challenge", "HonestValidatorsNeverSlashed"),
    ("pay_before_deadline", "NoPaymentBeforeDeadline"),
    ("finalize_twice", "NoDoublePayment"),
    ("challenge_accepts_foreign_evidence", "HonestValidatorsNeverSlashed"),
]


MODEL_SIZES = ["ledger-tiny", pytest.param("ledger", marks=pytest.mark.slow)]


@pytest.mark.parametrize("name", MODEL_SIZES)
@pytest.mark.parametrize(("bug", "invariant"), SAFETY_BUGS)
def test_planted_ledger_bug_yields_a_shortest_counterexample(name: str, bug: str, invariant: str) -> None:
    model = LEDGER_MODELS[name].instantiate({"bug": bug})
    found = violated(check(model, liveness=False))
    assert invariant in found
    trace = found[invariant].counterexample
    assert trace is not None and trace.loop is None
    assert not model.invariants[invariant](trace.steps[-1].state)
    assert all(model.invariants[invariant](step.state) for step in trace.steps[:-1])
    shallower = check(model, liveness=False, max_depth=len(trace.steps) - 1)
    assert invariant not in violated(shallower), "breadth-first search must report a shortest trace"


def test_symmetry_reduces_safety_checking_without_hiding_violations() -> None:
    full, reduced = check(tiny(), liveness=False), check(tiny(symmetry=True), liveness=False)
    assert reduced.verdict == full.verdict == "ok"
    assert reduced.distinct_states < full.distinct_states
    for bug, invariant in SAFETY_BUGS:
        plain = violated(check(tiny(bug=bug), liveness=False))[invariant].counterexample
        symmetric = violated(check(tiny(bug=bug, symmetry=True), liveness=False))[invariant].counterexample
        assert plain is not None and symmetric is not None
        assert len(symmetric.steps) == len(plain.steps)


def reachable(model: Model[LedgerState]) -> Iterator[LedgerState]:
    seen = set(model.init())
    frontier = deque(seen)
    while frontier:
        state = frontier.popleft()
        yield state
        for action in model.actions:
            for _, successor in action.step(state):
                if successor not in seen:
                    seen.add(successor)
                    frontier.append(successor)


def renamed(state: LedgerState, accounts: dict[int, int], segments: list[int]) -> LedgerState:
    """``state`` with accounts and segment ids renamed (an independent statement of the symmetry)."""

    def acct(a: int) -> int:
        return accounts.get(a, a)

    def seg(s: int) -> int:
        return s if s == NO_SEGMENT else segments[s]

    def per_account(values: tuple[Any, ...]) -> tuple[Any, ...]:
        out = list(values)
        for old, new in accounts.items():
            out[new] = values[old]
        return tuple(out)

    return state._replace(
        balances=per_account(state.balances),
        stakes=per_account(state.stakes),
        roles=per_account(state.roles),
        claims=frozenset(c._replace(faked=frozenset(map(seg, c.faked))) for c in state.claims),
        votes=frozenset(
            v._replace(
                validator=acct(v.validator), sample=frozenset(map(seg, v.sample)), evidence=seg(v.evidence)
            )
            for v in state.votes
        ),
        challenges=frozenset(
            ChallengeRecord(c.order, c.trainer, seg(c.segment), c.challenger) for c in state.challenges
        ),
        slashed=frozenset(map(acct, state.slashed)),
    )


def test_symmetric_states_share_one_canonical_form() -> None:
    model = tiny(honest_validators=2, symmetry=True)
    cast = Cast.of_constants(model.constants)
    canonical = model.symmetry
    assert canonical is not None
    rng = random.Random(7)
    states = list(reachable(tiny(honest_validators=2)))
    for state in rng.sample(states, 400):
        honest = list(cast.honest_validators)
        rng.shuffle(honest)
        segments = list(range(model.constants["segments"]))
        rng.shuffle(segments)
        twin = renamed(state, dict(zip(cast.honest_validators, honest, strict=True)), segments)
        assert canonical(twin) == canonical(state)
    classes = {canonical(s) for s in states}
    assert len(states) / 4 <= len(classes) < len(states)  # at most |group| = 2! * 2! states per class


def stutter_state(trace: Trace[LedgerState]) -> LedgerState:
    assert trace.loop is not None and trace.stutters
    return trace.steps[-1].state


def enabled(model: Model[LedgerState], action: str, state: LedgerState) -> bool:
    family = next(a for a in model.actions if a.name == action)
    return any(successor != state for _, successor in family.step(state))


@pytest.mark.parametrize("unfair", ["Tick", "Finalize"])
def test_without_fairness_an_order_can_stay_open_forever(unfair: str) -> None:
    model = tiny(fair=tuple(a for a in ("Tick", "Finalize") if a != unfair))
    lasso = violated(check(model))[LIVENESS].counterexample
    assert lasso is not None
    end = stutter_state(lasso)
    assert some_order_open(end) and enabled(model, unfair, end)


def test_finalize_waiting_for_every_validator_starves_on_a_silent_one() -> None:
    model = tiny(bug="finalize_needs_all_votes")
    assert "deadlock" in violated(check(model, liveness=False))
    lasso = violated(check(model, deadlock=False))[LIVENESS].counterexample
    assert lasso is not None
    end = stutter_state(lasso)
    cast = Cast.of_constants(model.constants)
    assert some_order_open(end) and not enabled(model, "Finalize", end)
    claims: list[ClaimRecord] = list(end.claims)
    voters = {(v.trainer, v.validator) for v in end.votes}
    assert any((c.trainer, v) not in voters for c in claims for v in cast.validators)
    assert all(o.status is OrderStatus.OPEN for o in end.orders)


def test_bad_constants_are_reported_as_specification_errors() -> None:
    with pytest.raises(SpecError, match="bug of ledger-tiny expects one of none"):
        tiny(bug="no-such-bug")
    with pytest.raises(SpecError, match="sample_size"):
        tiny(sample_size=3)
    with pytest.raises(SpecError, match="must be >= 0"):
        tiny(clients=-1)


def test_every_model_constant_is_documented_and_every_bug_is_exercised() -> None:
    assert set(LedgerModelConfig().constants()) == set(CONSTANT_DOCS)
    for spec in LEDGER_MODELS.values():
        assert set(spec.defaults) == set(spec.instantiate().constants) == set(CONSTANT_DOCS)
    game = {"referee_trusts_supplied_state", "midpoint_off_by_one", "deadline_not_enforced"}  # test_dispute
    exercised = {bug for bug, _ in SAFETY_BUGS} | {"finalize_needs_all_votes", "none"} | game
    assert exercised == {bug.name.lower() for bug in LedgerBug}
