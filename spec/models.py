"""Named, bounded models of the PoT protocol (`pot models`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from model_checker.model import ModelSpec
from spec import pbft

PBFT_TINY: Mapping[str, Any] = {
    "replicas": 4,
    "faulty": 1,
    "byzantine": (0,),
    "requests": 1,
    "max_view": 1,
    "checkpoint_interval": 1,
    "window": 1,
    "max_seq": 1,
    "bug": "none",
}


def _pbft_spec(name: str, defaults: Mapping[str, Any], doc: str) -> ModelSpec:
    def build(**constants: Any) -> Any:
        return pbft.build(name=name, **constants)

    return ModelSpec(name, build, dict(defaults), doc, pbft.CONSTANT_DOCS)


MODELS: dict[str, ModelSpec] = {
    "pbft-tiny": _pbft_spec(
        "pbft-tiny",
        PBFT_TINY,
        "PBFT alone: n = 4 with Byzantine primary 0, one request, a view change to honest primary 1, "
        "a stable checkpoint after it",
    ),
}
