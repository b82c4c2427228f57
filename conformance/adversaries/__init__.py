"""Cheating trainers: the attacks the proof of training must withstand (tests, benchmarks, conformance).

They live outside ``pot_impl`` on purpose: production code never contains
cheating paths. See ``trainers`` for the catalogue.
"""

from conformance.adversaries.trainers import (
    WithholdingServer,
    fabricate_stolen_trajectory,
    inflate_score,
    interpolate_to_stolen,
    train_on_other_data,
    train_skipping_steps,
    withhold_checkpoints,
)

__all__ = [
    "WithholdingServer",
    "fabricate_stolen_trajectory",
    "inflate_score",
    "interpolate_to_stolen",
    "train_on_other_data",
    "train_skipping_steps",
    "withhold_checkpoints",
]
