"""Task schema: canonical round trips and one clear reason for every invalid task."""

from __future__ import annotations

import dataclasses
import itertools
import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pot_impl import codec
from pot_impl.ledger.records import CommittedOrder
from pot_impl.training.canonical import canonical_json
from pot_impl.training.datasets import DatasetCatalog, synthetic_dataset
from pot_impl.training.task import (
    DatasetRef,
    OptimizerSpec,
    ScheduleSpec,
    TaskError,
    TrainingOrder,
    committed_order,
    decode_checker_order,
    decode_order,
    decode_task,
    encode_task,
    prepare_task,
)
from tests.training.conftest import DATA_ORDER_SEED, DATASETS, make_order, make_task


@settings(max_examples=40, deadline=None)
@given(
    optimizer=st.sampled_from(["sgd", "adam", "adamw"]),
    lr=st.floats(min_value=1e-6, max_value=10, allow_nan=False),
    segment_length=st.integers(1, 8),
    segments=st.integers(1, 50),
    schedule=st.sampled_from(["constant", "cosine", "linear"]),
    seed=st.binary(min_size=32, max_size=32),
)
def test_valid_orders_round_trip_through_canonical_bytes(
    optimizer: str, lr: float, segment_length: int, segments: int, schedule: str, seed: bytes
) -> None:
    task = make_task(
        optimizer=OptimizerSpec(optimizer, lr),
        schedule=ScheduleSpec(schedule, 0),
        segment_length=segment_length,
        steps=segment_length * segments,
    )
    order = TrainingOrder(task, seed)
    encoded = order.encode()
    assert decode_order(encoded) == order
    assert decode_order(encoded).digest == order.digest
    posted = encode_task(task)
    assert decode_task(posted) == task and committed_order(posted, seed) == order
    from_ledger = codec.encode(CommittedOrder(posted, seed))
    assert decode_checker_order(from_ledger) == order == decode_checker_order(encoded)


@pytest.mark.parametrize(
    ("committed", "reason"),
    [
        (CommittedOrder(encode_task(make_task()), b"\x01" * 31), "must be 32 bytes"),
        (CommittedOrder(make_order().encode(), DATA_ORDER_SEED), "unknown fields"),
        (CommittedOrder(json.dumps({"steps": 1}, indent=1).encode(), DATA_ORDER_SEED), "canonical form"),
    ],
)
def test_ledger_orders_that_do_not_hold_a_task_and_a_seed_are_rejected(
    committed: CommittedOrder, reason: str
) -> None:
    with pytest.raises(TaskError) as caught:
        decode_checker_order(codec.encode(committed))
    assert reason in str(caught.value)


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"architecture": "resnet1000"}, "unknown architecture 'resnet1000'"),
        ({"segment_length": 3}, "segment_length 3 must divide steps 16"),
        ({"steps": 0}, "steps must be in"),
        ({"batch_size": 0}, "batch_size must be positive"),
        ({"optimizer": OptimizerSpec("adam", -0.1)}, "lr -0.1 must be in"),
        ({"optimizer": OptimizerSpec("rmsprop", 0.1)}, "unknown optimizer 'rmsprop'"),
        ({"optimizer": OptimizerSpec("sgd", 0.1, momentum=1.5)}, "momentum must be in [0, 1)"),
        ({"optimizer": OptimizerSpec("adam", 0.1, momentum=0.9)}, "momentum does not apply to adam"),
        ({"schedule": ScheduleSpec("exponential")}, "unknown schedule"),
        ({"schedule": ScheduleSpec("cosine", 99)}, "warmup_steps must be in [0, steps]"),
        ({"arch_params": {"hidden": 16, "depth": 1, "dropout": 0.5}}, "has no parameters ['dropout']"),
        ({"arch_params": {"hidden": 0, "depth": 1}}, "parameter 'hidden' must be an integer"),
    ],
)
def test_impossible_hyperparameters_are_rejected_with_a_reason(
    overrides: dict[str, object], reason: str
) -> None:
    order = TrainingOrder(dataclasses.replace(make_task(), **overrides), DATA_ORDER_SEED)  # type: ignore[arg-type]
    with pytest.raises(TaskError) as caught:
        decode_order(order.encode())
    assert reason in str(caught.value)


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"batch_size": 500}, "exceeds the 200 training examples"),
        ({"eval_examples": 240}, "leaves no training data"),
        ({"architecture": "cnn", "arch_params": {"channels": 4, "hidden": 8}}, "trains on images datasets"),
        ({"arch_params": {"hidden": 8192, "depth": 16}}, "above the limit of 50000000"),
    ],
)
def test_tasks_that_do_not_fit_their_data_are_rejected(overrides: dict[str, object], reason: str) -> None:
    with pytest.raises(TaskError, match=reason.replace("[", r"\[")):
        prepare_task(dataclasses.replace(make_task(), **overrides), DatasetCatalog(None))  # type: ignore[arg-type]


def test_dataset_hash_mismatch_is_rejected() -> None:
    generator, params = DATASETS["mlp"]
    wrong = DatasetRef("ab" * 32, generator, params)
    with pytest.raises(TaskError, match="does not match the task's"):
        prepare_task(make_task(dataset=wrong), DatasetCatalog(None))


def test_unknown_generator_and_bad_generator_params_are_rejected() -> None:
    for ref, reason in [
        (DatasetRef("00" * 32, "imagenet", {}), "unknown synthetic generator"),
        (DatasetRef("00" * 32, "blobs", {"examples": 10}), "takes exactly the parameters"),
    ]:
        with pytest.raises(TaskError, match=reason):
            prepare_task(make_task(dataset=ref), DatasetCatalog(None))


@pytest.mark.parametrize("suffix", [".npz", ".safetensors"])
def test_user_files_resolve_by_content_hash(tmp_path: Path, suffix: str) -> None:
    generator, params = DATASETS["mlp"]
    synthetic = synthetic_dataset(generator, params)
    arrays = {"inputs": synthetic.inputs.numpy(), "targets": synthetic.targets.numpy()}
    path = tmp_path / f"blobs{suffix}"
    if suffix == ".npz":
        np.savez(path, inputs=arrays["inputs"], targets=arrays["targets"])
    else:
        from safetensors.numpy import save_file

        save_file(arrays, str(path))
    ref = DatasetRef(synthetic.digest.hex(), file=path.name)
    prepared = prepare_task(make_task(dataset=ref), DatasetCatalog(tmp_path))
    assert prepared.dataset.digest == synthetic.digest
    arrays["targets"] = (arrays["targets"] + 1) % 6
    np.savez(tmp_path / "tampered.npz", inputs=arrays["inputs"], targets=arrays["targets"])
    with pytest.raises(TaskError, match="does not match"):
        prepare_task(
            make_task(dataset=DatasetRef(synthetic.digest.hex(), file="tampered.npz")),
            DatasetCatalog(tmp_path),
        )


def test_missing_or_unreadable_dataset_files_are_clear_errors(tmp_path: Path) -> None:
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    for name, reason in [
        ("absent.npz", "does not exist"),
        ("junk.npz", "cannot read"),
        ("../x.npz", "bare file"),
    ]:
        with pytest.raises(TaskError, match=reason):
            prepare_task(make_task(dataset=DatasetRef("00" * 32, file=name)), DatasetCatalog(tmp_path))


def test_malformed_order_bytes_are_rejected() -> None:
    good = json.loads(make_order().encode())
    cases = {
        b"\xff\xfe": "not valid canonical JSON",
        json.dumps(good, indent=1).encode(): "not in canonical form",
        canonical_json({**good, "extra": 1}): "unknown fields ['extra']",
        canonical_json({**good, "version": 9}): "unsupported schema version",
        canonical_json({**good, "data_order_seed": "00"}): "must be 32 bytes",
        canonical_json({**good, "task": {**good["task"], "steps": "16"}}): "'steps' has the wrong type",
        canonical_json(
            {**good, "task": {**good["task"], "optimizer": {"name": "adam"}}}
        ): "missing field 'lr'",
    }
    for data, reason in cases.items():
        with pytest.raises(TaskError, match=reason.replace("[", r"\[")):
            decode_order(data)


def test_learning_rate_schedules_warm_up_then_decay() -> None:
    task = make_task(schedule=ScheduleSpec("linear", 4), optimizer=OptimizerSpec("sgd", 1.0))
    rates = [task.learning_rate(step) for step in range(task.steps)]
    assert rates[:4] == [0.25, 0.5, 0.75, 1.0]
    assert all(later < earlier for earlier, later in itertools.pairwise(rates[4:]))
    constant = dataclasses.replace(task, schedule=ScheduleSpec("constant", 0))
    assert {constant.learning_rate(step) for step in range(task.steps)} == {1.0}
