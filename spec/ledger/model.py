"""The ledger checked on its own: every order in which PBFT could commit what participants submit.

The layer is cut as PBFT's (docs/spec.md, "Layout"): state and transactions in
``spec.ledger``, the model constants in ``spec.ledger.config``, the
participants' actions in ``spec.ledger.participants``, properties in
``spec.ledger.properties``, symmetry in ``spec.ledger.reductions``; this
module assembles the ``Model`` of a config and names the ledger's models.
"""

from __future__ import annotations

from dataclasses import replace
from functools import partial
from typing import Any

from model_checker.model import ConstantError, Model, ModelSpec, leads_to, weak_fairness
from spec.ledger import participants
from spec.ledger.config import CONSTANT_DOCS, STAKE, Cast, LedgerModelConfig
from spec.ledger.participants import LedgerParticipants
from spec.ledger.properties import (
    Honesty,
    ledger_invariants,
    no_dispute_open,
    no_order_open,
    some_dispute_open,
    some_order_open,
)
from spec.ledger.protocol import total_value
from spec.ledger.reductions import ledger_symmetry
from spec.ledger.state import LedgerParams, LedgerState, genesis

__all__ = [
    "CONSTANT_DOCS",
    "LEDGER_MODELS",
    "STAKE",
    "Cast",
    "LedgerModelConfig",
    "build_ledger_model",
    "ledger_model",
]


def build_ledger_model(name: str = "ledger", **constants: Any) -> Model[LedgerState]:
    """The ledger model of ``constants`` (fields of ``LedgerModelConfig``; unset ones default)."""
    try:
        config = LedgerModelConfig(**constants)
    except ConstantError as error:
        raise ConstantError(f"model {name}: {error}") from None
    return ledger_model(config, name)


def ledger_model(config: LedgerModelConfig, name: str = "ledger") -> Model[LedgerState]:
    """The ledger model for one cast (constants documented in CONSTANT_DOCS)."""
    cast = Cast.of_constants(config.constants())
    params = LedgerParams(
        segments=config.segments,
        sample_size=config.sample_size,
        validators=len(cast.validators),
        byzantine_validators=config.byzantine_validators,
        min_trainer_stake=STAKE,
        min_validator_stake=STAKE,
        challenge_window=config.challenge_window,
        dispute_steps=config.dispute_steps,
        move_window=config.move_window,
        dispute_bond=config.dispute_bond,
    )
    bond = config.dispute_bond if config.dispute_steps else 0
    start = genesis(params, cast.funds(config.bounty + config.fee, STAKE, bond))
    honesty = Honesty(frozenset(cast.honest_validators), frozenset(cast.honest_trainers))
    return Model(
        name=name,
        init=lambda: [start],
        actions=LedgerParticipants(config).actions(),
        invariants=ledger_invariants(total_value(start), honesty, disputes=bool(config.dispute_steps)),
        properties=(
            leads_to(
                "EveryOrderEventuallyFinalized",
                some_order_open,
                no_order_open,
                "Every order is eventually paid or refunded (PoT design: Finalize after deadline).",
            ),
            *(
                [
                    leads_to(
                        "EveryDisputeEnds",
                        some_dispute_open,
                        no_dispute_open,
                        "Every dispute ends: a party that does not move in time loses.",
                    )
                ]
                if config.dispute_steps
                else []
            ),
        ),
        fairness=tuple(weak_fairness(action) for action in config.fair),
        symmetry=ledger_symmetry(
            config.segments,
            cast.accounts,
            [
                tuple(v for v in group if v not in cast.shared)
                for group in (cast.honest_validators, cast.byzantine_validators)
            ],
        )
        if config.symmetry
        else None,
        constants=config.constants(),
        doc=participants.__doc__ or "",
    )


def _spec(name: str, doc: str, **overrides: Any) -> ModelSpec:
    return ModelSpec(
        name=name,
        build=partial(build_ledger_model, name),
        defaults=replace(LedgerModelConfig(), **overrides).constants(),
        doc=doc,
        constant_docs=CONSTANT_DOCS,
    )


LEDGER_MODELS: dict[str, ModelSpec] = {
    spec.name: spec
    for spec in (
        _spec(
            "ledger-tiny",
            "PoT ledger alone: one order, one Byzantine trainer, one honest and one Byzantine validator",
            honest_trainers=0,
            byzantine_scores=(1,),
        ),
        _spec(
            "ledger",
            "PoT ledger alone: one order, an honest and a Byzantine trainer, "
            "two honest and one Byzantine validator (quorum 2 of 3), a challenger",
            honest_validators=2,
        ),
        _spec(
            "ledger-two-orders",
            "PoT ledger alone, for benchmarks: ledger-tiny's cast with two clients and orders, so a "
            "validator slashed on one order is locked out of the other",
            clients=2,
            honest_trainers=0,
            byzantine_scores=(1,),
        ),
        _spec(
            "ledger-dispute",
            "PoT ledger with the bisection dispute game (2 steps a segment): an honest and a Byzantine "
            "trainer, an honest validator whose REJECT opens a dispute, a Byzantine challenger",
            byzantine_validators=0,
            segments=1,
            byzantine_scores=(1,),
            dispute_steps=2,
            fair=("Tick", "Finalize", "Timeout", "HonestReveal", "HonestBisect", "HonestSupply"),
        ),
        _spec(
            "ledger-overlap",
            "PoT ledger alone, accounts in two roles: the client is the Byzantine validator (slashed to "
            "itself while owed its refund), the Byzantine trainer challenges its honest rival's votes",
            byzantine_scores=(1,),
            segments=1,
            client_validates=True,
            trainer_challenges=True,
        ),
    )
}
"""The ledger's named models, merged into spec.models.MODELS."""
