"""The real trainer on a tiny CPU order, for the cluster scenario whose ledger carries its claim."""

from __future__ import annotations

import hashlib
import tempfile
from pathlib import Path

from pot_impl.training.architectures import resolve_arch_params
from pot_impl.training.checkpoint import CheckpointStore
from pot_impl.training.datasets import DatasetCatalog, synthetic_dataset
from pot_impl.training.environment import Environment
from pot_impl.training.task import DatasetRef, OptimizerSpec, TrainingOrder, TrainingTask, prepare_task
from pot_impl.training.trainer import TrainingRun, train

BLOBS = {"examples": 240, "features": 8, "classes": 6, "seed": 11}
CPU = Environment("cpu", 1)


def tiny_order() -> TrainingOrder:
    """An 8-segment MLP order on a synthetic dataset; trains in well under a second on one core."""
    task = TrainingTask(
        architecture="mlp",
        arch_params=resolve_arch_params("mlp", {"hidden": 16, "depth": 1}),
        dataset=DatasetRef(synthetic_dataset("blobs", BLOBS).digest.hex(), "blobs", BLOBS),
        optimizer=OptimizerSpec("adam", 0.01),
        batch_size=16,
        steps=16,
        segment_length=2,
        init_seed=5,
        eval_examples=40,
    )
    # On a live network the seed comes from ledger state at the order; here any fixed value will do.
    seed = hashlib.sha256(b"pot-trace-scenario").digest()
    return TrainingOrder(task, seed)


def train_tiny_order(checkpoints: Path | None = None) -> tuple[TrainingOrder, TrainingRun]:
    """Train ``tiny_order`` honestly; checkpoints go to ``checkpoints`` or a temporary directory."""
    order = tiny_order()
    store = CheckpointStore(checkpoints or Path(tempfile.mkdtemp(prefix="pot-trace-ckpt-")))
    prepared = prepare_task(order.task, DatasetCatalog(None))
    return order, train(order, prepared, store, CPU, background_writes=False)
