"""The benchmark orders of the three registry architectures (and a tiny MLP), shared by the
training benchmarks; imports nothing beyond the session's own dependencies, so it runs on a bare
GPU machine too."""

from __future__ import annotations

import hashlib
from typing import Any

from pot_impl.training.architectures import resolve_arch_params
from pot_impl.training.datasets import DatasetCatalog, synthetic_dataset
from pot_impl.training.reproducible import NATIVE
from pot_impl.training.task import (
    DatasetRef,
    OptimizerSpec,
    PreparedTask,
    TrainingOrder,
    TrainingTask,
    prepare_task,
)

DATASETS: dict[str, tuple[str, dict[str, int]]] = {
    "mlp": ("blobs", {"examples": 4096, "features": 64, "classes": 10, "seed": 1}),
    "cnn": ("images", {"examples": 1024, "channels": 1, "size": 16, "classes": 10, "seed": 2}),
    "transformer_lm": ("tokens", {"examples": 1024, "seq_len": 32, "vocab": 64, "seed": 3}),
    "tiny_mlp": ("blobs", {"examples": 512, "features": 8, "classes": 4, "seed": 4}),
}
ARCH_PARAMS: dict[str, tuple[str, dict[str, Any]]] = {
    "mlp": ("mlp", {"hidden": 256, "depth": 2}),
    "cnn": ("cnn", {"channels": 8, "hidden": 64}),
    "transformer_lm": ("transformer_lm", {"width": 64, "heads": 4, "layers": 2, "dropout": 0.1}),
    "tiny_mlp": ("mlp", {"hidden": 16, "depth": 1}),
}


def make_order(
    config: str, steps: int, segment_length: int, batch_size: int = 64, numerics: str = NATIVE
) -> TrainingOrder:
    generator, params = DATASETS[config]
    architecture, arch_params = ARCH_PARAMS[config]
    task = TrainingTask(
        architecture=architecture,
        arch_params=resolve_arch_params(architecture, arch_params),
        dataset=DatasetRef(synthetic_dataset(generator, params).digest.hex(), generator, params),
        optimizer=OptimizerSpec("adam", 1e-3),
        batch_size=batch_size,
        steps=steps,
        segment_length=segment_length,
        init_seed=7,
        eval_examples=256,
        numerics=numerics,
    )
    seed = hashlib.sha256(f"ledger-state/{config}/{steps}/{segment_length}".encode()).digest()
    return TrainingOrder(task, seed)


def prepared(order: TrainingOrder) -> PreparedTask:
    return prepare_task(order.task, DatasetCatalog(None))
