"""Example specifications with known state counts, used to validate the checker."""

from model_checker.model import ModelSpec

EXAMPLES: dict[str, ModelSpec] = {}
