"""Where each protocol action lives in every layer: one table per layer pair, checked by a test.

Look here first. A row names, for one spec action, the implementation's entry point (the code a
node runs when it takes that step), the bridge's stimulus (what the conformance bridge does to
make the implementation take it) and the trace events the step writes (what trace validation
matches it with). The layers name PBFT steps differently on purpose: the spec after the message a
replica sends (its ``Prepare`` is a backup sending PREPARE), the implementation after the message
it receives (``NormalCase.accept_pre_prepare``). ``tests/conformance/test_actions.py`` fails when a
spec action, a handler, a stimulus or a trace event kind has no row, or a row names one that does
not exist.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass

from pot_impl.pbft.io import EventKind


class PbftAction(enum.StrEnum):
    """The PBFT spec's actions (``spec/pbft/protocol.py``); ``Honest*`` are the fairness-carrying
    copies the liveness models split off, taken by the same code as their namesakes."""

    PRE_PREPARE = "PrePrepare"
    PREPARE = "Prepare"
    COMMIT = "Commit"
    EXECUTE = "Execute"
    STABLE_CHECKPOINT = "StableCheckpoint"
    START_VIEW_CHANGE = "StartViewChange"
    NEW_VIEW = "NewView"
    ACCEPT_NEW_VIEW = "AcceptNewView"
    QUIESCENT = "Quiescent"
    HONEST_PRE_PREPARE = "HonestPrePrepare"
    HONEST_PREPARE = "HonestPrepare"
    HONEST_COMMIT = "HonestCommit"
    HONEST_EXECUTE = "HonestExecute"
    HONEST_STABLE_CHECKPOINT = "HonestStableCheckpoint"
    HONEST_NEW_VIEW = "HonestNewView"
    HONEST_ACCEPT_NEW_VIEW = "HonestAcceptNewView"
    JOIN_VIEW_CHANGE = "JoinViewChange"
    CATCH_UP = "CatchUp"
    GST = "GST"


class LedgerAction(enum.StrEnum):
    """The ledger spec's actions (``spec/ledger/participants.py``)."""

    TICK = "Tick"
    REGISTER_TRAINER = "RegisterTrainer"
    REGISTER_VALIDATOR = "RegisterValidator"
    PLACE_ORDER = "PlaceOrder"
    HONEST_CLAIM = "HonestClaim"
    BYZANTINE_CLAIM = "ByzantineClaim"
    HONEST_ACCEPT = "HonestAccept"
    HONEST_REJECT = "HonestReject"
    BYZANTINE_ACCEPT = "ByzantineAccept"
    BYZANTINE_REJECT = "ByzantineReject"
    CHALLENGE = "Challenge"
    FORGED_CHALLENGE = "ForgedChallenge"
    HONEST_REVEAL = "HonestReveal"
    BYZANTINE_REVEAL = "ByzantineReveal"
    HONEST_BISECT = "HonestBisect"
    BYZANTINE_BISECT = "ByzantineBisect"
    HONEST_SUPPLY = "HonestSupply"
    BYZANTINE_SUPPLY = "ByzantineSupply"
    TIMEOUT = "Timeout"
    FINALIZE = "Finalize"
    TERMINATED = "Terminated"


@dataclass(frozen=True)
class Row:
    """One spec action across the layers. ``implementation`` and ``stimulus`` are ``Class.method``
    (None where that layer takes no part: an environment step, a stutter, or a liveness model the
    bridge does not replay); ``events`` the trace event kinds the step writes."""

    implementation: str | None
    stimulus: str | None
    events: tuple[EventKind, ...] = ()


PBFT: Mapping[PbftAction, Row] = {
    PbftAction.PRE_PREPARE: Row(
        "NormalCase.propose_batches", "PbftBridge._pre_prepare", (EventKind.PRE_PREPARED,)
    ),
    PbftAction.PREPARE: Row(
        "NormalCase.accept_pre_prepare", "PbftBridge._prepare", (EventKind.PRE_PREPARED,)
    ),
    PbftAction.COMMIT: Row("NormalCase.check_prepared", "PbftBridge._commit", (EventKind.PREPARED,)),
    PbftAction.EXECUTE: Row(
        "NormalCase.execute_ready",
        "PbftBridge._execute",
        (EventKind.EXECUTED, EventKind.CHECKPOINT),
    ),
    PbftAction.STABLE_CHECKPOINT: Row(
        "Checkpoints.make_stable",
        "PbftBridge._stable_checkpoint",
        (EventKind.CHECKPOINT_STABLE, EventKind.STATE_TRANSFER),
    ),
    PbftAction.START_VIEW_CHANGE: Row(
        "ViewChanges.start", "PbftBridge._start_view_change", (EventKind.VIEW_CHANGE,)
    ),
    PbftAction.NEW_VIEW: Row("ViewChanges.send_new_view", "PbftBridge._new_view", (EventKind.NEW_VIEW,)),
    PbftAction.ACCEPT_NEW_VIEW: Row(
        "ViewChanges.install_new_view", "PbftBridge._accept_new_view", (EventKind.NEW_VIEW,)
    ),
    PbftAction.QUIESCENT: Row(None, "PbftBridge._quiescent"),
    PbftAction.HONEST_PRE_PREPARE: Row("NormalCase.propose_batches", None, (EventKind.PRE_PREPARED,)),
    PbftAction.HONEST_PREPARE: Row("NormalCase.accept_pre_prepare", None, (EventKind.PRE_PREPARED,)),
    PbftAction.HONEST_COMMIT: Row("NormalCase.check_prepared", None, (EventKind.PREPARED,)),
    PbftAction.HONEST_EXECUTE: Row("NormalCase.execute_ready", None, (EventKind.EXECUTED,)),
    PbftAction.HONEST_STABLE_CHECKPOINT: Row("Checkpoints.make_stable", None, (EventKind.CHECKPOINT_STABLE,)),
    PbftAction.HONEST_NEW_VIEW: Row("ViewChanges.send_new_view", None, (EventKind.NEW_VIEW,)),
    PbftAction.HONEST_ACCEPT_NEW_VIEW: Row("ViewChanges.install_new_view", None, (EventKind.NEW_VIEW,)),
    PbftAction.JOIN_VIEW_CHANGE: Row("ViewChanges.join_higher_view_change", None, (EventKind.VIEW_CHANGE,)),
    PbftAction.CATCH_UP: Row("StateTransfer.on_catch_up", None, (EventKind.CAUGHT_UP, EventKind.EXECUTED)),
    PbftAction.GST: Row(None, None),
}
"""PBFT: spec action -> implementation (the replica's parts, ``pot_impl/pbft/``), stimulus
(``conformance/bridge_pbft.py``), trace events (``conformance/trace/validate.py``)."""

STATE_CHECKS: Mapping[EventKind, str] = {
    EventKind.RECEIVED: "a message from an honest replica must have been sent already (its cause)",
    EventKind.COMMITTED: "the committed-local predicate on the spec state, inside Execute",
    EventKind.RECOVERED: "the state a restart reports must be reachable by the replica's own actions",
}
"""Trace events that are checks on the spec state rather than steps of their own."""

LEDGER: Mapping[LedgerAction, Row] = {
    LedgerAction.TICK: Row("Ledger.execute", "LedgerBridge._tick"),
    LedgerAction.REGISTER_TRAINER: Row("Ledger._register", "LedgerBridge._register_trainer"),
    LedgerAction.REGISTER_VALIDATOR: Row("Ledger._register", "LedgerBridge._register_validator"),
    LedgerAction.PLACE_ORDER: Row("Ledger._order", "LedgerBridge._place_order"),
    LedgerAction.HONEST_CLAIM: Row("Ledger._claim", "LedgerBridge._honest_claim"),
    LedgerAction.BYZANTINE_CLAIM: Row("Ledger._claim", "LedgerBridge._byzantine_claim"),
    LedgerAction.HONEST_ACCEPT: Row("Ledger._validate", "LedgerBridge._honest_vote"),
    LedgerAction.HONEST_REJECT: Row("Ledger._validate", "LedgerBridge._honest_vote"),
    LedgerAction.BYZANTINE_ACCEPT: Row("Ledger._validate", "LedgerBridge._byzantine_accept"),
    LedgerAction.BYZANTINE_REJECT: Row("Ledger._validate", "LedgerBridge._byzantine_reject"),
    LedgerAction.CHALLENGE: Row("Ledger._challenge", "LedgerBridge._challenge"),
    LedgerAction.FORGED_CHALLENGE: Row("Ledger._challenge", "LedgerBridge._forged_challenge"),
    LedgerAction.HONEST_REVEAL: Row("Ledger._dispute_move", "LedgerBridge._reveal"),
    LedgerAction.BYZANTINE_REVEAL: Row("Ledger._dispute_move", "LedgerBridge._reveal"),
    LedgerAction.HONEST_BISECT: Row("Ledger._dispute_move", "LedgerBridge._honest_bisect"),
    LedgerAction.BYZANTINE_BISECT: Row("Ledger._dispute_move", "LedgerBridge._byzantine_bisect"),
    LedgerAction.HONEST_SUPPLY: Row("Ledger._dispute_move", "LedgerBridge._supply"),
    LedgerAction.BYZANTINE_SUPPLY: Row("Ledger._dispute_move", "LedgerBridge._supply"),
    LedgerAction.TIMEOUT: Row("Ledger._dispute_move", "LedgerBridge._timeout"),
    LedgerAction.FINALIZE: Row("Ledger._finalize", "LedgerBridge._finalize"),
    LedgerAction.TERMINATED: Row(None, "LedgerBridge._terminated"),
}
"""Ledger: spec action -> implementation (``pot_impl/ledger/ledger.py``, reached through
``Ledger.execute`` of the transaction), stimulus (``conformance/bridge_ledger.py``); the ledger
writes no trace events of its own (its transactions are PBFT requests)."""
