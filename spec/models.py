"""Named, bounded models of the PoT protocol (`pot models`).

Measured sizes and times are in docs/spec.md ("Models").
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any

from model_checker.model import Model, ModelSpec
from spec import combined, pbft
from spec.ledger.model import LEDGER_MODELS
from spec.pbft import PbftConfig

PBFT_BASE: Mapping[str, Any] = PbftConfig(checkpoint_interval=1, window=1).constants()
"""n = 4 with Byzantine replica 0 (primary of view 0, so it can equivocate), views 0..1 (the view
change goes to honest primary 1), two requests, a checkpoint after every request."""


def _spec(
    name: str,
    builder: Callable[..., Model[Any]],
    docs: Mapping[str, str],
    doc: str,
    **overrides: Any,
) -> ModelSpec:
    def build(**constants: Any) -> Model[Any]:
        return builder(name=name, **constants)

    return ModelSpec(name, build, {**PBFT_BASE, **overrides}, doc, docs)


def pbft_model(name: str, doc: str, **overrides: Any) -> ModelSpec:
    """A PBFT-only model (counter service) with ``overrides`` over ``PBFT_BASE``."""
    return _spec(name, pbft.build, pbft.CONSTANT_DOCS, doc, **overrides)


def combined_model(name: str, doc: str, companions: tuple[str, ...] = (), **overrides: Any) -> ModelSpec:
    """A PBFT + PoT ledger model with ``overrides`` over ``PBFT_BASE``, checked with ``companions``."""
    amounts = {"bounty": combined.BOUNTY, "fee": combined.FEE}
    return replace(
        _spec(name, combined.build, combined.CONSTANT_DOCS, doc, **amounts, **overrides),
        companions=companions,
    )


PBFT_MODELS = [
    pbft_model(
        "pbft-tiny",
        "PBFT alone: n = 4, Byzantine primary 0, one request, a view change to honest primary 1, "
        "a stable checkpoint",
        requests=1,
        max_seq=1,
    ),
    pbft_model(
        "pbft-twin",
        "PBFT alone: pbft-tiny with the Byzantine replica moved (Twins): honest primary 0 orders the "
        "one request, Byzantine replica 1 is a backup of view 0 and the primary of view 1, so the "
        "NEW-VIEWs it sends are its own",
        byzantine=frozenset({1}),
        requests=1,
        max_seq=1,
    ),
    pbft_model(
        "pbft",
        "PBFT alone: n = 4, Byzantine primary 0 that may equivocate, two requests, a view change "
        "to honest primary 1, a checkpoint after each request (window 1)",
    ),
    pbft_model(
        "pbft-live",
        "PBFT liveness under partial synchrony: n = 4, Byzantine primary 0 (may stall), honest primary "
        "1, one request; GST, view-change timers with doubling, joining view changes, weak fairness",
        liveness=True,
        requests=1,
        max_seq=1,
        checkpoint_interval=2,
    ),
    pbft_model(
        "pbft-live-checkpoint",
        "PBFT liveness across stable checkpoints: pbft-live with a checkpoint after each request "
        "(K = 1), so checkpoints become stable and a replica behind adopts the certified state",
        liveness=True,
        requests=1,
        max_seq=1,
        checkpoint_interval=1,
    ),
    pbft_model(
        "pbft-live-window",
        "PBFT liveness when the window is full: n = 2 honest replicas (f = 0), two requests, a window "
        "of one sequence number and a checkpoint after each, a view change before GST: the second "
        "request is ordered only once the first one's checkpoint is stable",
        liveness=True,
        replicas=2,
        faulty=0,
        byzantine=frozenset(),
        requests=2,
        max_seq=2,
        window=1,
        checkpoint_interval=1,
        delay_level=0,
    ),
    pbft_model(
        "pbft-live-gap",
        "PBFT liveness, for NEW-VIEW's null fill: n = 2 honest replicas (f = 0), two requests, "
        "sequence numbers 1..3 in one window, a view change before GST: a PRE-PREPARE lost before "
        "GST leaves a hole below a prepared request, which O must fill with a null request",
        liveness=True,
        replicas=2,
        faulty=0,
        byzantine=frozenset(),
        requests=2,
        max_seq=3,
        window=3,
        checkpoint_interval=4,
        delay_level=0,
    ),
    pbft_model(
        "pbft-window",
        "PBFT alone, for benchmarks: like pbft but with window 2 and a checkpoint every 2 requests, "
        "so both sequence numbers are in flight at once and NEW-VIEW may need null requests",
        checkpoint_interval=2,
        window=2,
    ),
    pbft_model(
        "pbft-deep",
        "PBFT alone, deep: three requests at sequence numbers 1..3, views 0..2, window 2 and a "
        "checkpoint every 2 requests, so requests span a stable checkpoint and two view changes; "
        "out of reach exhaustively here (docs/model_checker.md gives its rate and an estimate)",
        requests=3,
        max_seq=3,
        max_view=2,
        checkpoint_interval=2,
        window=2,
    ),
]

DEFAULT_COMPANIONS = (
    "default-window",
    "pbft-live",
    "pbft-live-gap",
    "pbft-live-checkpoint",
    "pbft-live-window",
    "ledger",
)
"""What `pot check default` checks with it, under one verdict: the same round with two sequence
numbers in flight (`default-window`), and `default`'s temporal properties.

Two sequence numbers with `default`'s equivocating primary make 2,974,674 states
(`combined-window`, about 105 s with two processes), so `default-window` makes
backup 3 the Byzantine replica instead. Partial synchrony (GST, timers,
catching up) would multiply `default`'s states, so PBFT liveness lives in the
dedicated models and the ledger's in `ledger`, which explores every order PBFT
could commit; docs/spec.md ("Liveness of the composition") argues why together
they cover `default`.
"""

COMBINED_MODELS = [
    combined_model(
        "tiny",
        "PBFT + PoT ledger, for unit tests: n = 4, Byzantine primary 0 that may equivocate, the "
        "training round's two requests, stable checkpoints, no view change",
        max_view=0,
    ),
    combined_model(
        "default-window",
        "PBFT + PoT ledger with two sequence numbers in flight (`make check`, with `default`): "
        "window 2 and a checkpoint every 2 requests, a view change to honest primary 1 whose NEW-VIEW "
        "may fill a gap with a null request; the Byzantine replica is backup 3 (it forges "
        "VIEW-CHANGEs and votes for anything), the equivocating primary is default's",
        byzantine=frozenset({3}),
        checkpoint_interval=2,
        window=2,
    ),
    combined_model(
        "default",
        "PBFT + PoT ledger (`make check`): n = 4, Byzantine primary 0 that may equivocate, the "
        "training round's two requests, a view change to honest primary 1, stable checkpoints; "
        "checked with its companions " + ", ".join(DEFAULT_COMPANIONS),
        companions=DEFAULT_COMPANIONS,
    ),
    combined_model(
        "combined-window",
        "PBFT + PoT ledger, for benchmarks: default with window 2 and a checkpoint every 2 requests",
        checkpoint_interval=2,
        window=2,
    ),
]

MODELS: dict[str, ModelSpec] = {
    **{spec.name: spec for spec in PBFT_MODELS},
    **LEDGER_MODELS,
    **{spec.name: spec for spec in COMBINED_MODELS},
}
