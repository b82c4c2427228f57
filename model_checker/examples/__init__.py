"""Example specifications with known state counts, used to validate the checker."""

from model_checker.examples.liveness import COUNTDOWN, MUTEX
from model_checker.examples.two_phase import TWO_PHASE
from model_checker.model import ModelSpec

EXAMPLES: dict[str, ModelSpec] = {spec.name: spec for spec in (TWO_PHASE, MUTEX, COUNTDOWN)}
