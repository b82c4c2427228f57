"""The PBFT model the checker explores: Init, Next, invariants, properties, fairness and symmetry
of one ``PbftConfig``, run through ``SearchPbft``'s memos."""

from __future__ import annotations

from typing import Any

from model_checker.model import Model
from spec.pbft import properties, reductions
from spec.pbft.config import COUNTER, Application, PbftConfig
from spec.pbft.search import SearchPbft
from spec.pbft.state import State


def pbft_model(
    config: PbftConfig, name: str = "pbft", app: Application = COUNTER, doc: str = ""
) -> Model[State]:
    """The model of ``config`` (its constants are the config's fields)."""
    protocol = SearchPbft(config, app)
    return Model(
        name=name,
        init=protocol.init,
        actions=protocol.actions(),
        invariants=properties.invariants(protocol),
        properties=properties.properties(protocol),
        fairness=properties.fairness(protocol),
        symmetry=None if config.liveness else reductions.symmetry(protocol),
        constants=config.constants(),
        doc=doc,
        warnings=config.warnings(),
    )


def build(*, name: str = "pbft", app: Application = COUNTER, **constants: Any) -> Model[State]:
    """A PBFT model from plain constants (what ``ModelSpec.build`` receives)."""
    return pbft_model(PbftConfig.of(constants), name, app)
