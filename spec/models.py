"""Named, bounded models of the PoT protocol (`pot models`)."""

from model_checker.model import ModelSpec

MODELS: dict[str, ModelSpec] = {}
