"""Example specifications with known state counts, used to validate the checker."""

from model_checker.examples.two_phase import TWO_PHASE
from model_checker.model import ModelSpec

EXAMPLES: dict[str, ModelSpec] = {TWO_PHASE.name: TWO_PHASE}
