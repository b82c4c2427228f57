"""What the PBFT bridge drives beyond the spec's own steps, and how it judges it: batches and their
client signatures, retransmitted requests, catch-up, forged certificates, crashes between a step's
effects. Each is silent on the implementation in scenarios where it applies, and finds a planted
defect of its kind."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

import conformance.bridge_pbft as bridge_pbft
import pot_impl.pbft.certificates as certificates
import pot_impl.pbft.normal_case as impl_normal_case
from conformance.adversaries.messages import short_quorums
from conformance.write_ahead import crash_points
from model_checker.model import Model
from pot_impl.auth import verify_message
from pot_impl.pbft.io import Broadcast, CompactLog, Effect, Persist
from pot_impl.pbft.messages import Checkpoint, NewView, Prepare, PrePrepare, Request
from pot_impl.pbft.outbox import Outbox
from spec.models import MODELS
from tests.conformance.pbft_driving import driven

EXECUTED_BY_ONE = (
    "Prepare(replica=1, seq=1, request=1)",
    "Prepare(replica=2, seq=1, request=1)",
    "Prepare(replica=3, seq=1, request=1)",
    "Commit(replica=2, seq=1, request=1)",
    "Commit(replica=3, seq=1, request=1)",
    "Execute(replica=2, request=1)",
)
"""pbft-tiny: request 1 committed at replicas 2 and 3, executed (and checkpointed) by 2 only."""

EXECUTED_BY_ALL = (
    "PrePrepare(primary=0, seq=1, request=1)",
    *(f"Prepare(replica={i}, seq=1, request=1)" for i in (2, 3)),
    *(f"Commit(replica={i}, seq=1, request=1)" for i in (0, 2, 3)),
    *(f"Execute(replica={i}, request=1)" for i in (0, 2, 3)),
)
"""pbft-twin: honest primary 0 orders request 1 and every honest replica executes it."""

VIEW_CHANGE_AFTER_ONE_CHECKPOINT = (
    *EXECUTED_BY_ONE,
    "StartViewChange(replica=1, view=1)",
    "StartViewChange(replica=3, view=1)",
)
"""Then the new primary 1 and replica 3 start the view change: a third VIEW-CHANGE completes V."""

EXECUTED_IN_VIEW_1_PREPARED = (
    "StartViewChange(replica=0, view=1)",
    "StartViewChange(replica=1, view=1)",
    "StartViewChange(replica=3, view=1)",
    "NewView(primary=1, O=())",
    "AcceptNewView(replica=0, view=1, O=())",
    "AcceptNewView(replica=3, view=1, O=())",
    "PrePrepare(primary=1, seq=1, request=1)",
    "Prepare(replica=0, seq=1, request=1)",
    "Prepare(replica=3, seq=1, request=1)",
    "Commit(replica=0, seq=1, request=1)",
    "Commit(replica=1, seq=1, request=1)",
    "Commit(replica=3, seq=1, request=1)",
    "StartViewChange(replica=0, view=2)",
    "StartViewChange(replica=1, view=2)",
    "StartViewChange(replica=3, view=2)",
)
"""Views 0..2 with Byzantine replica 2 (primary of view 2): request 1 prepared in view 1, then every
honest replica moves on to view 2, whose VIEW-CHANGEs carry it while those for view 1 do not."""


def model(name: str, **constants: Any) -> Model[Any]:
    return MODELS[name].instantiate(constants)


@pytest.fixture
def every_forgery(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each probe delivers every forged certificate, not a rotating sample of them."""
    monkeypatch.setattr(bridge_pbft, "FORGED_CERTIFICATES_PER_PROBE", 1_000)


# -- the adversary's certificates and the crash points --------------------------------------------


@given(st.lists(st.integers(0, 9), unique=True, max_size=6), st.integers(1, 7))
def test_short_quorums_never_show_a_quorum_of_distinct_senders(votes: list[int], quorum: int) -> None:
    shapes = dict(short_quorums(votes, quorum))
    assert all(len(set(shown)) < quorum for shown in shapes.values())
    if votes and quorum > 1:
        assert len(shapes["duplicate-votes"]) == quorum and set(shapes["duplicate-votes"]) <= set(votes)


def _effects(kinds: str) -> list[Effect]:
    """``p`` persists the next record, ``c`` compacts the store to it alone, ``s`` sends a PREPARE."""
    effects: list[Effect] = []
    for number, kind in enumerate(kinds):
        record = Checkpoint(number, b"", 0)
        if kind == "s":
            effects.append(Broadcast(Prepare(0, number, b"", 0)))
        else:
            effects.append(Persist(record) if kind == "p" else CompactLog((record,)))
    return effects


@given(st.text("pcs", max_size=12))
def test_a_crash_point_follows_every_send_with_the_store_of_that_moment(kinds: str) -> None:
    effects = _effects(kinds)
    points = crash_points(0, (), effects)
    store: list[Any] = []
    sent: list[Any] = []
    for effect in effects:
        if isinstance(effect, Persist):
            store.append(effect.record)
        elif isinstance(effect, CompactLog):
            store = list(effect.records)
        elif isinstance(effect, Broadcast):
            sent.append(effect.message)
            assert any(kept == tuple(store) and sent == told[: len(sent)] for kept, told in points)
    assert (points[-1][1] if points else []) == sent


# -- batches, retransmissions, catch-up -----------------------------------------------------------


def test_each_spec_request_is_a_batch_of_client_requests() -> None:
    bridge, _ = driven(model("pbft-twin"), ["PrePrepare(primary=0, seq=1, request=1)"])
    batch = next(m for m in bridge.sent[0] if isinstance(m, PrePrepare)).batch
    assert batch == bridge.requests[1] and len(batch) == bridge_pbft.BATCH_SIZE > 1


def test_a_backup_that_skips_client_signatures_in_a_batch_is_found(monkeypatch: pytest.MonkeyPatch) -> None:
    """The Byzantine primary's batch with one request's client signature flipped, re-signed."""
    monkeypatch.setattr(
        impl_normal_case, "verify_message", lambda v, m: isinstance(m, Request) or verify_message(v, m)
    )
    bridge, state = driven(model("pbft-tiny"), EXECUTED_BY_ONE[:1])
    found = bridge.probe(state)
    assert found is not None and "bad-client-signature" in found[0]


def test_retransmitted_requests_are_answered_from_the_client_table() -> None:
    bridge, state = driven(model("pbft-tiny"), EXECUTED_BY_ONE)
    fork = bridge.retransmitted(2)
    answers = fork.replied[2][len(bridge.replied[2]) :]
    assert {reply.client for reply in answers} == {request.client for request in bridge.requests[1]}
    assert all(reply.result in bridge.results[(reply.client, reply.timestamp)] for reply in answers)
    assert fork.abstract() == state
    assert bridge.probe(state) is None


def test_a_replica_behind_catches_up_on_what_another_executed() -> None:
    bridge, _ = driven(model("pbft-tiny"), EXECUTED_BY_ONE)
    fork = bridge.caught_up(1)
    assert fork is not None and fork.abstract().replicas[1].executed == (1,)
    assert bridge.caught_up(2) is None  # nobody is ahead of replica 2


# -- forged certificates --------------------------------------------------------------------------


SCENARIOS: dict[str, tuple[str, tuple[str, ...]]] = {
    "pbft-tiny initial": ("pbft-tiny", ()),
    "pbft-tiny view change after one checkpoint": ("pbft-tiny", VIEW_CHANGE_AFTER_ONE_CHECKPOINT),
    "pbft-twin initial": ("pbft-twin", ()),
    "pbft-twin executed by all": ("pbft-twin", EXECUTED_BY_ALL),
}


@pytest.mark.usefixtures("every_forgery")
@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_forged_certificates_change_nothing_the_spec_forbids(scenario: str) -> None:
    name, labels = SCENARIOS[scenario]
    bridge, state = driven(model(name), labels)
    assert all(bridge._forged_certificates(replica, state) for replica in bridge.spec.honest)
    assert bridge.probe(state) is None


@pytest.mark.usefixtures("every_forgery")
def test_a_new_view_from_view_changes_of_an_earlier_view_is_refused() -> None:
    """View 1's VIEW-CHANGEs do not carry the request prepared in view 1: a NEW-VIEW for view 2 built
    from them re-proposes nothing, and a replica that took it would diverge."""
    cast = model("pbft-tiny", max_view=2, byzantine=frozenset({2}))
    bridge, state = driven(cast, EXECUTED_IN_VIEW_1_PREPARED)
    forged = [m.message for m in bridge._forged_certificates(0, state) if "earlier view" in m.operator]
    assert len(forged) == 1 and isinstance(forged[0], NewView)
    current = [vc for i in bridge.spec.honest for vc in bridge._sent_for(i, 2)]
    assert certificates.plan_new_view(current).proposals
    assert not certificates.plan_new_view(forged[0].view_changes).proposals
    assert bridge.probe(state) is None


def _without_distinct_senders(patch: pytest.MonkeyPatch) -> None:
    patch.setattr(certificates, "_distinct_valid_replicas", lambda config, senders: True)


def _checkpoint_certificates_of_f_plus_1(patch: pytest.MonkeyPatch) -> None:
    patch.setattr(certificates, "checkpoint_quorum", lambda n, f: f + 1)


def _sends_before_persisting(patch: pytest.MonkeyPatch) -> None:
    drain = Outbox.drain

    def sends_first(outbox: Outbox) -> list[Effect]:
        return sorted(drain(outbox), key=lambda effect: isinstance(effect, Persist | CompactLog))

    patch.setattr(Outbox, "drain", sends_first)


DEFECTS = {
    "duplicate COMMITs in a catch-up": (_without_distinct_senders, "pbft-tiny", (), "CatchUp's certificate"),
    "duplicate VIEW-CHANGEs in a NEW-VIEW": (
        _without_distinct_senders,
        "pbft-twin",
        EXECUTED_BY_ALL,
        "NEW-VIEW's V",
    ),
    "checkpoint certificates of f + 1": (
        _checkpoint_certificates_of_f_plus_1,
        "pbft-tiny",
        VIEW_CHANGE_AFTER_ONE_CHECKPOINT,
        "VIEW-CHANGE's checkpoint certificate",
    ),
    "sends before persisting": (_sends_before_persisting, "pbft-tiny", EXECUTED_BY_ONE[:1], "has forgotten"),
}


@pytest.mark.usefixtures("every_forgery")
@pytest.mark.parametrize("defect", sorted(DEFECTS))
def test_a_planted_defect_is_found(monkeypatch: pytest.MonkeyPatch, defect: str) -> None:
    plant, name, labels, found = DEFECTS[defect]
    plant(monkeypatch)
    bridge, state = driven(model(name), labels)
    divergence = bridge.probe(state)
    assert divergence is not None and found in divergence[0]
