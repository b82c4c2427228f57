"""Stateful mode: seeded hypothesis scenarios over the spec's enabled actions."""

from __future__ import annotations

import pytest

import pot_impl.ledger.ledger as impl_ledger
import pot_impl.pbft.normal_case as impl_normal_case
from conformance.bridge_ledger import LedgerBridge
from conformance.bridge_pbft import PbftBridge
from conformance.stateful import enabled, stateful_check
from spec.models import MODELS


@pytest.mark.parametrize("name", ["pbft-tiny", "pbft-twin"])
def test_pbft_scenarios_conform(name: str) -> None:
    model = MODELS[name].instantiate()
    report = stateful_check(model, PbftBridge(model), examples=15, steps=25, seed_value=1)
    assert report.conforms, report.failure
    assert report.steps > 15 and len(report.transitions) > 15


def test_ledger_scenarios_conform() -> None:
    model = MODELS["ledger-tiny"].instantiate()
    report = stateful_check(model, LedgerBridge(model), examples=10, steps=25, seed_value=2)
    assert report.conforms, report.failure
    assert report.steps > 10


def test_same_seed_same_scenarios() -> None:
    model = MODELS["pbft-tiny"].instantiate()
    first = stateful_check(model, PbftBridge(model), examples=5, steps=15, seed_value=7)
    second = stateful_check(model, PbftBridge(model), examples=5, steps=15, seed_value=7)
    assert first.transitions == second.transitions and first.steps == second.steps


def test_divergence_shrinks_to_a_printed_spec_trace(monkeypatch: pytest.MonkeyPatch) -> None:
    """With a prepare quorum one short, hypothesis finds and shrinks a scenario; the failure prints
    the numbered spec trace and the differing fields."""
    monkeypatch.setattr(impl_normal_case, "prepare_quorum", lambda n, f: 2 * ((n - 1) // 3) - 1)
    model = MODELS["pbft-tiny"].instantiate()
    report = stateful_check(model, PbftBridge(model), examples=40, steps=30, seed_value=3)
    assert report.divergence is not None
    assert "spec trace:" in report.failure and "  0: Init" in report.failure
    assert report.divergence.trace[-1] == report.divergence.action
    assert report.divergence.action.startswith("Prepare(")
    assert len(report.divergence.trace) <= 3, "shrinks to the first PRE-PREPARE a backup accepts"
    assert any(d.field.endswith(".commits") for d in report.divergence.diff)


def test_commit_quorum_of_2f_is_caught_by_the_reaction_probe(monkeypatch: pytest.MonkeyPatch) -> None:
    """Committing on 2f COMMITs only shows when a replica hears more than the spec step needs: the
    probe delivers every message of its view and finds it executing where the spec cannot."""
    monkeypatch.setattr(impl_normal_case, "commit_quorum", lambda n, f: 2 * ((n - 1) // 3))
    model = MODELS["pbft-tiny"].instantiate()
    report = stateful_check(model, PbftBridge(model), examples=20, steps=20, seed_value=0)
    assert report.divergence is not None
    assert "heard every message" in report.divergence.action
    assert any(d.field.endswith(".executed") for d in report.divergence.diff)


@pytest.mark.slow
def test_ledger_divergence_is_found(monkeypatch: pytest.MonkeyPatch) -> None:
    """A Finalize that pays no validator its fee share is found by random scenarios and shrunk."""
    monkeypatch.setattr(impl_ledger, "_vote_proved_right", lambda vote, proved, upheld: False)
    model = MODELS["ledger-tiny"].instantiate()
    report = stateful_check(model, LedgerBridge(model), examples=30, steps=25, seed_value=0)
    assert report.divergence is not None
    assert report.divergence.action.startswith("Finalize(")


def test_enabled_lists_every_spec_successor() -> None:
    model = MODELS["ledger-tiny"].instantiate()
    initial = next(iter(model.init()))
    labels = [label for label, _ in enabled(model, initial)]
    assert labels and len(labels) == len(set(labels))
    assert {label.action for label in labels} >= {"PlaceOrder"}
