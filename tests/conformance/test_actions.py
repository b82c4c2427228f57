"""The table of actions across the layers (``conformance/actions.py``) is complete and names only
what exists: every spec action, handler, stimulus and trace event kind has its row."""

from __future__ import annotations

from collections.abc import Mapping

import pytest

from conformance import actions, bridge_ledger, bridge_pbft
from conformance.trace.observed import EVENT_ROLES, Role, RunLogs
from conformance.trace.validate import TraceValidator
from pot_impl.ledger.ledger import Ledger
from pot_impl.pbft.checkpoints import Checkpoints
from pot_impl.pbft.normal_case import NormalCase
from pot_impl.pbft.state_transfer import StateTransfer
from pot_impl.pbft.view_change import ViewChanges
from spec.models import MODELS

TABLES: dict[str, Mapping[actions.PbftAction, actions.Row] | Mapping[actions.LedgerAction, actions.Row]] = {
    "pbft": actions.PBFT,
    "ledger": actions.LEDGER,
}
OWNERS: dict[str, type] = {
    "NormalCase": NormalCase,
    "Checkpoints": Checkpoints,
    "ViewChanges": ViewChanges,
    "StateTransfer": StateTransfer,
    "Ledger": Ledger,
    "PbftBridge": bridge_pbft.PbftBridge,
    "LedgerBridge": bridge_ledger.LedgerBridge,
}


def protocol_actions() -> dict[str, set[str]]:
    """Every registry model's action names, for the models built from the PBFT or ledger spec."""
    every = {*actions.PbftAction, *actions.LedgerAction}
    found = {}
    for name, spec in MODELS.items():
        names = {action.name for action in spec.instantiate().actions}
        if names & every:
            found[name] = names
    return found


def test_every_action_of_every_protocol_model_has_a_row_and_every_row_an_action() -> None:
    models = protocol_actions()
    assert {"pbft", "pbft-live", "ledger", "default", "tiny"} <= set(models)
    tabled = {*actions.PBFT, *actions.LEDGER}
    for name, names in models.items():
        assert names <= tabled, f"{name}: no row for {sorted(names - tabled)}"
    assert set().union(*models.values()) >= tabled, "a row for an action no model has"
    assert set(actions.PBFT) == set(actions.PbftAction) and set(actions.LEDGER) == set(actions.LedgerAction)


@pytest.mark.parametrize("table", sorted(TABLES))
def test_every_handler_and_stimulus_a_row_names_exists(table: str) -> None:
    for action, row in TABLES[table].items():
        for where in (row.implementation, row.stimulus):
            if where is not None:
                owner, _, method = where.partition(".")
                assert callable(getattr(OWNERS[owner], method, None)), f"{action}: {where} does not exist"


def test_the_pbft_bridge_drives_exactly_the_actions_with_a_stimulus() -> None:
    driven = {action for action, row in actions.PBFT.items() if row.stimulus is not None}
    assert set(bridge_pbft._STIMULI) == driven
    replayed = set().union(*(names for name, names in protocol_actions().items() if "live" not in name))
    assert replayed & set(actions.PbftAction) <= driven


def test_every_trace_event_that_is_a_spec_step_has_a_row_or_is_a_state_check() -> None:
    """And the trace validator has an entry for exactly those kinds."""
    steps = {kind for kind, role in EVENT_ROLES.items() if role is Role.STEP}
    tabled = {kind for row in actions.PBFT.values() for kind in row.events}
    assert steps == tabled | set(actions.STATE_CHECKS)
    assert not tabled & set(actions.STATE_CHECKS)
    run = RunLogs(replicas=4, faulty=1, byzantine=frozenset(), checkpoint_interval=1, window=2, logs={})
    assert set(TraceValidator(run).table) == steps


def test_the_table_lists_each_layer_in_the_order_of_its_enum() -> None:
    """So that reading the table and reading the enum give the same order."""
    for table, kind in ((actions.PBFT, actions.PbftAction), (actions.LEDGER, actions.LedgerAction)):
        assert list(table) == list(kind)
