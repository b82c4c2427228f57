"""Tiny orders and honest runs shared by the training tests (CPU, seconds)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from pot_impl.training.architectures import resolve_arch_params
from pot_impl.training.checkpoint import CheckpointStore
from pot_impl.training.datasets import DatasetCatalog, synthetic_dataset
from pot_impl.training.environment import Environment
from pot_impl.training.task import (
    DatasetRef,
    OptimizerSpec,
    PreparedTask,
    ScheduleSpec,
    TrainingOrder,
    TrainingTask,
    prepare_task,
)
from pot_impl.training.trainer import TrainingRun, train

DATASETS: Mapping[str, tuple[str, dict[str, int]]] = {
    "mlp": ("blobs", {"examples": 240, "features": 8, "classes": 6, "seed": 11}),
    "cnn": ("images", {"examples": 120, "channels": 1, "size": 8, "classes": 3, "seed": 12}),
    "transformer_lm": ("tokens", {"examples": 120, "seq_len": 8, "vocab": 16, "seed": 13}),
}
SMALL_ARCH_PARAMS: Mapping[str, dict[str, Any]] = {
    "mlp": {"hidden": 16, "depth": 1},
    "cnn": {"channels": 4, "hidden": 16},
    "transformer_lm": {"width": 16, "heads": 2, "layers": 1, "dropout": 0.1},
}
ENV = Environment("cpu", 1)
DATA_ORDER_SEED = bytes(range(32))


def make_task(architecture: str = "mlp", **overrides: Any) -> TrainingTask:
    generator, params = DATASETS[architecture]
    fields: dict[str, Any] = {
        "architecture": architecture,
        "arch_params": resolve_arch_params(architecture, SMALL_ARCH_PARAMS[architecture]),
        "dataset": DatasetRef(synthetic_dataset(generator, params).digest.hex(), generator, params),
        "optimizer": OptimizerSpec("adam", 0.01),
        "schedule": ScheduleSpec("cosine", 2),
        "batch_size": 16,
        "steps": 16,
        "segment_length": 2,
        "init_seed": 5,
        "eval_examples": 40,
    }
    fields.update(overrides)
    return TrainingTask(**fields)


def make_order(architecture: str = "mlp", **overrides: Any) -> TrainingOrder:
    return TrainingOrder(make_task(architecture, **overrides), DATA_ORDER_SEED)


def prepare(order: TrainingOrder) -> PreparedTask:
    return prepare_task(order.task, DatasetCatalog(None))


@pytest.fixture
def store(tmp_path: Path) -> CheckpointStore:
    return CheckpointStore(tmp_path / "checkpoints")


@pytest.fixture(scope="module")
def mlp_order() -> TrainingOrder:
    return make_order("mlp")


@pytest.fixture(scope="module")
def honest_run(mlp_order: TrainingOrder, tmp_path_factory: pytest.TempPathFactory) -> TrainingRun:
    """One honest MLP run, shared read-only by a module's tests."""
    return train(mlp_order, prepare(mlp_order), CheckpointStore(tmp_path_factory.mktemp("honest")), ENV)
