"""Every model ``pot models`` lists: the protocol spec's and the checker's examples."""

from __future__ import annotations

from model_checker.examples import EXAMPLES
from model_checker.model import ModelSpec
from spec.models import MODELS


def all_models() -> dict[str, ModelSpec]:
    """Model name to registry entry, the protocol's models first."""
    return {**MODELS, **EXAMPLES}
