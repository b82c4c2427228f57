"""Accounts in two roles and forged fraud evidence: ``ledger-overlap`` drives the real ledger with a
client that is also a (Byzantine) validator and a Byzantine trainer that also challenges, whose
challenges carry evidence built from other segments and other claims. Bookkeeping that is keyed by
role, or a ledger that upholds foreign evidence, diverges; the disjoint casts of the other models
cannot show the former."""

from __future__ import annotations

import inspect
import textwrap
from collections.abc import Callable, Iterable
from typing import Any

import pytest

import pot_impl.ledger.ledger as impl_ledger
from conformance.bridge_core import Divergence, Gap
from conformance.bridge_ledger import LedgerBridge
from conformance.replay import cover, run_behaviour
from conformance.runner import run_mode
from conformance.stateful import stateful_check
from model_checker.graph import Behaviour
from model_checker.model import Label, Model
from pot_impl.ledger.records import ClaimRecord, OrderRecord
from spec import ledger as sl
from spec.ledger.model import Cast
from spec.ledger.participants import forgeries
from spec.models import MODELS

State = sl.LedgerState


@pytest.fixture(scope="module")
def model() -> Model[Any]:
    return MODELS["ledger-overlap"].instantiate()


@pytest.fixture(scope="module")
def cast(model: Model[Any]) -> Cast:
    return Cast.of_constants(model.constants)


@pytest.fixture(scope="module")
def behaviours(model: Model[Any]) -> list[Behaviour]:
    return cover(model)[0]


def _ends(behaviours: list[Behaviour], wanted: Callable[[State], bool]) -> list[Behaviour]:
    return [b for b in behaviours if wanted(b[-1][1])]


def _first_divergence(model: Model[Any], behaviours: Iterable[Behaviour]) -> Divergence | None:
    bridge = LedgerBridge(model)
    for behaviour in behaviours:
        _, outcome = run_behaviour(model, bridge, behaviour)
        assert not isinstance(outcome, Gap), outcome
        if isinstance(outcome, Divergence):
            return outcome
    return None


def test_the_cast_shares_accounts(model: Model[Any], cast: Cast) -> None:
    """One account is the client and the Byzantine validator, one the Byzantine trainer and the
    challenger; each starts with both roles' funds, so the ledger holds no more value than before."""
    assert cast.clients == cast.byzantine_validators and cast.byzantine_trainers == cast.challengers
    assert cast.shared == frozenset(cast.clients + cast.challengers) and cast.accounts == 4
    initial = next(iter(model.init()))
    constants = model.constants
    assert initial.balances[cast.clients[0]] == constants["bounty"] + constants["fee"] + 1
    bridge = LedgerBridge(model)
    bridge.start(initial, ())
    assert bridge.abstract() == initial


def test_overlap_replay_conforms() -> None:
    """Every transition of ledger-overlap, driven on the unmodified implementation, conforms."""
    report = run_mode("ledger-overlap", "replay")
    assert report.verdict == "ok", report.summary()
    assert not report.gaps and report.transitions_covered == report.transitions_total


def test_overlap_scenarios_conform(model: Model[Any]) -> None:
    """Stateful scenarios, with the forged-challenge probes after every step, conform."""
    report = stateful_check(model, LedgerBridge(model), examples=8, steps=25, seed_value=4)
    assert report.conforms, report.failure
    assert report.steps > 8


def _settle_with_stale_record() -> Callable[..., None]:
    """``Ledger._settle`` zeroing a slashed stake on the record read before the slash was paid out:
    right for distinct accounts, but a client slashed as validator loses its own stake's payout."""
    right = "dataclasses.replace(self._accounts[account], stake=0)"
    source = textwrap.dedent(inspect.getsource(impl_ledger.Ledger._settle))
    assert source.count(right) == 1
    namespace = dict(vars(impl_ledger))
    exec(source.replace(right, "dataclasses.replace(record, stake=0)"), namespace)
    planted: Callable[..., None] = namespace["_settle"]
    return planted


def test_stake_slashed_to_its_own_account_is_caught(
    model: Model[Any], cast: Cast, behaviours: list[Behaviour], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The client slashed as a validator: its stake is paid to itself, and a stale record drops it.
    The disjoint cast of ledger-tiny slashes validators too, and conforms with the same defect."""
    monkeypatch.setattr(impl_ledger.Ledger, "_settle", _settle_with_stale_record())
    client = cast.clients[0]
    divergence = _first_divergence(model, _ends(behaviours, lambda s: client in s.slashed))
    assert divergence is not None and divergence.action.startswith("Finalize(")
    assert f"balances[{client}]" in {d.field for d in divergence.diff}

    tiny = MODELS["ledger-tiny"].instantiate()
    slashing = _ends(cover(tiny)[0], lambda s: bool(s.slashed))
    assert slashing and _first_divergence(tiny, slashing[:40]) is None


def _fraud_proved_against_any_claim(
    self: impl_ledger.Ledger, order: OrderRecord, claim: ClaimRecord, segment: int, evidence: bytes
) -> bool:
    """``Ledger._fraud_proved`` asking whether the evidence proves fraud in some claim on the order,
    not in the challenged one: a genuine proof against one trainer frames another."""
    task = impl_ledger.committed_order(order)
    return self._checker.segment_of(evidence) == segment and any(
        self._checker.check_fraud_proof(task, other.proof_root, evidence)
        for (order_id, _), other in self._claims.items()
        if order_id == order.order_id
    )


def _frameable(state: State) -> bool:
    """An ACCEPT vote on a genuine claim is open to challenges while another claim has a faked segment."""
    claims = {(c.order, c.trainer): c for c in state.claims}
    return any(c.faked for c in claims.values()) and any(
        v.verdict is sl.Verdict.ACCEPT
        and not claims[(v.order, v.trainer)].faked
        and sl.challenges_open(state, v.order) is sl.Reason.OK
        for v in state.votes
    )


def test_foreign_fraud_proof_is_caught(
    model: Model[Any], behaviours: list[Behaviour], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A ledger upholding a fraud proof built against the rival's faked claim, submitted against a
    vote on the honest claim, records a challenge the spec rejects: the forged-challenge probe sees it."""
    monkeypatch.setattr(impl_ledger.Ledger, "_fraud_proved", _fraud_proved_against_any_claim)
    divergence = _first_divergence(model, _ends(behaviours, _frameable))
    assert divergence is not None
    assert divergence.action.startswith("rejected by the spec") and "ForgedChallenge(" in divergence.action
    assert "challenges" in {d.field for d in divergence.diff}


def test_a_forged_challenge_does_not_block_the_genuine_one(
    model: Model[Any], behaviours: list[Behaviour]
) -> None:
    """A challenger names a faked segment with forged evidence: the spec rejects it without effect
    and upholds the genuine fraud proof after it, and so must the implementation (it once recorded
    the failed challenge and refused the genuine one as a duplicate, shielding the faked claim)."""
    behaviour = next(
        b
        for b in behaviours
        if b[-1][0] is not None and b[-1][0].action == "Challenge" and len(b[-2][1].claims) > 1
    )
    *prefix, (label, _) = behaviour
    assert label is not None
    bridge = LedgerBridge(model)
    assert run_behaviour(model, bridge, prefix)[1] is None
    state = prefix[-1][1]
    args = dict(label.args)
    (proof,) = forgeries(state, (args["order"], args["trainer"], args["segment"]), state.params.segments)
    spec_forged = sl.Challenge(
        args["challenger"], args["order"], args["trainer"], args["validator"], args["segment"], proof
    )
    assert sl.apply(state, spec_forged)[1].reason is sl.Reason.BAD_EVIDENCE
    assert sl.apply(state, sl.Challenge(*(args[k] for k in CHALLENGE_ARGS)))[1].ok
    assert bridge.stimulate(Label("ForgedChallenge", (*label.args, ("proof", proof))), state) == ()
    assert bridge.stimulate(label, state) == ()
    assert bridge.abstract() == behaviour[-1][1]


CHALLENGE_ARGS = ("challenger", "order", "trainer", "validator", "segment")


def _claims_open_past_the_deadline(self: impl_ledger.Ledger, order_id: int) -> OrderRecord:
    """``Ledger._claims_open`` without the claim window: claims and votes after the deadline."""
    return self._open_order(order_id)


def test_a_byzantine_claim_after_the_deadline_is_probed(
    model: Model[Any], cast: Cast, behaviours: list[Behaviour], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A Byzantine trainer that did not claim before the deadline claims after it: the spec refuses,
    and so must the ledger (the probes craft the claim; no spec step drives it)."""
    (byzantine,) = cast.byzantine_trainers
    late = _ends(
        behaviours,
        lambda s: any(
            s.now >= o.deadline and sl.find_claim(s, i, byzantine) is None for i, o in enumerate(s.orders)
        ),
    )
    assert late and _first_divergence(model, late[:10]) is None
    monkeypatch.setattr(impl_ledger.Ledger, "_claims_open", _claims_open_past_the_deadline)
    divergence = _first_divergence(model, late[:10])
    assert divergence is not None and "ByzantineClaim(" in divergence.action


def _role_whatever_the_stake(self: impl_ledger.Ledger, account: str, role: int, min_stake: int) -> bool:
    """``Ledger._has_role`` ignoring the stake: a validator slashed to nothing still votes."""
    record = self.accounts.get(account)
    return record is not None and record.role == role


def test_a_slashed_validators_vote_is_refused_for_its_role(
    model: Model[Any], cast: Cast, behaviours: list[Behaviour], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The client-validator slashed at Finalize crafts a vote on the claim it left alone. Both ledgers
    refuse it, so the state cannot tell them apart; the receipt does: the spec refuses the vote for
    the validator's role, the planted ledger only because the order is settled."""
    monkeypatch.setattr(impl_ledger.Ledger, "_has_role", _role_whatever_the_stake)
    (validator,) = cast.byzantine_validators
    slashed = _ends(behaviours, lambda s: validator in s.slashed)
    divergence = _first_divergence(model, slashed)
    assert divergence is not None and divergence.action.startswith("rejected by the spec: ByzantineAccept(")
    assert [(d.field, d.spec, d.impl) for d in divergence.diff] == [
        ("receipt", "not-a-validator", "order-settled")
    ]
