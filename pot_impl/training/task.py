"""Training tasks and orders: schema, canonical bytes and validation.

A task is what a client asks for and posts (``encode_task``); an order is a
task plus the data-order seed, which the ledger derives from its own state when
the order executes (``OrderRecord.data_order_seed``), so neither the client nor
the trainer chooses it. The ledger stores task bytes opaquely and hands its
checker ``CommittedOrder`` bytes; this module is the only place that interprets them.
Validation rejects every task a node could not train exactly as specified,
with a one-line reason.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import torch

from pot_impl import codec
from pot_impl.ledger.records import CommittedOrder
from pot_impl.training.architectures import ArchitectureError, ParamValue, build_model, resolve_arch_params
from pot_impl.training.canonical import EncodingError, canonical_json, parse_canonical_json
from pot_impl.training.datasets import Dataset, DatasetCatalog, DatasetError, synthetic_dataset
from pot_impl.training.reproducible import NATIVE, NUMERICS

SCHEMA_VERSION = 1
MAX_STEPS = 10_000_000
MAX_PARAMETERS = 50_000_000  # every validator and coordinator must be able to hold the model
OPTIMIZERS = ("sgd", "adam", "adamw")
SCHEDULES = ("constant", "cosine", "linear")


class TaskError(ValueError):
    """A task or order that cannot be trained as specified; the message is the reason."""


@dataclass(frozen=True)
class DatasetRef:
    """A dataset by content hash: a built-in generator with parameters, or a file in the data root."""

    sha256: str
    generator: str | None = None
    params: Mapping[str, int] = field(default_factory=dict)
    file: str | None = None


@dataclass(frozen=True)
class OptimizerSpec:
    """Optimizer hyperparameters; unused fields must stay at their defaults."""

    name: str
    lr: float
    momentum: float = 0.0
    weight_decay: float = 0.0
    beta1: float = 0.9
    beta2: float = 0.999
    eps: float = 1e-8


@dataclass(frozen=True)
class ScheduleSpec:
    """Learning-rate schedule: linear warm-up, then constant, cosine or linear decay to zero."""

    name: str = "constant"
    warmup_steps: int = 0


@dataclass(frozen=True)
class TrainingTask:
    """Everything a client fixes about a training job."""

    architecture: str
    dataset: DatasetRef
    optimizer: OptimizerSpec
    batch_size: int
    steps: int
    segment_length: int
    init_seed: int
    eval_examples: int
    schedule: ScheduleSpec = ScheduleSpec()
    arch_params: Mapping[str, ParamValue] = field(default_factory=dict)
    numerics: str = NATIVE
    """``native`` float32, or ``reproducible`` (bitwise identical everywhere; see reproducible.py)."""
    step_digests: bool = False
    """Each leaf also commits the state digest after every step of its segment, so that the ledger's
    dispute game can bisect a disputed segment down to one step (``pot_impl.training.dispute``)."""

    @property
    def segments(self) -> int:
        return self.steps // self.segment_length

    def learning_rate(self, step: int) -> float:
        """The learning rate used at ``step`` (0-based), a pure function so it needs no saved state."""
        base = self.optimizer.lr
        warmup = self.schedule.warmup_steps
        if step < warmup:
            return base * (step + 1) / warmup
        if self.schedule.name == "constant":
            return base
        progress = (step - warmup) / max(1, self.steps - warmup)
        if self.schedule.name == "cosine":
            return base * 0.5 * (1.0 + math.cos(math.pi * progress))
        return base * (1.0 - progress)


@dataclass(frozen=True)
class TrainingOrder:
    """A committed order: the task and the data-order seed taken from ledger state."""

    task: TrainingTask
    data_order_seed: bytes

    def encode(self) -> bytes:
        """Canonical bytes, as stored by the ledger and signed over by validators."""
        return canonical_json(
            {
                "version": SCHEMA_VERSION,
                "data_order_seed": self.data_order_seed.hex(),
                "task": _task_json(self.task),
            }
        )

    @property
    def digest(self) -> bytes:
        return hashlib.sha256(b"pot-order-v1" + self.encode()).digest()


def _task_json(task: TrainingTask) -> dict[str, Any]:
    value = asdict(task)
    value["dataset"] = {k: v for k, v in value["dataset"].items() if v not in (None, {})}
    value["arch_params"] = dict(task.arch_params)
    if task.numerics == NATIVE:
        del value["numerics"]  # the defaults are left out, so each task has one encoding
    if not task.step_digests:
        del value["step_digests"]
    return value


# --- decoding -------------------------------------------------------------------------------------


def _take(obj: Mapping[str, Any], key: str, kind: type | tuple[type, ...], where: str) -> Any:
    if key not in obj:
        raise TaskError(f"{where}: missing field {key!r}")
    value = obj[key]
    if isinstance(value, bool) or not isinstance(value, kind):
        raise TaskError(f"{where}: field {key!r} has the wrong type")
    return value


def _flag(obj: Mapping[str, Any], key: str, where: str) -> bool:
    """An optional boolean field (false when absent)."""
    value = obj.get(key, False)
    if not isinstance(value, bool):
        raise TaskError(f"{where}: field {key!r} has the wrong type")
    return value


def _check_keys(obj: Mapping[str, Any], allowed: set[str], where: str) -> None:
    unknown = set(obj) - allowed
    if unknown:
        raise TaskError(f"{where}: unknown fields {sorted(unknown)}")


def _number(obj: Mapping[str, Any], key: str, where: str) -> float:
    return float(_take(obj, key, (int, float), where))


def task_from_json(obj: Mapping[str, Any]) -> TrainingTask:
    """Structural decoding (types and field names); ``validate_task`` checks the values."""
    _check_keys(
        obj,
        {
            "architecture",
            "arch_params",
            "dataset",
            "optimizer",
            "schedule",
            "batch_size",
            "steps",
            "segment_length",
            "init_seed",
            "eval_examples",
            "numerics",
            "step_digests",
        },
        "task",
    )
    data = _take(obj, "dataset", dict, "task")
    _check_keys(data, {"sha256", "generator", "params", "file"}, "dataset")
    opt = _take(obj, "optimizer", dict, "task")
    _check_keys(opt, {"name", "lr", "momentum", "weight_decay", "beta1", "beta2", "eps"}, "optimizer")
    sched = _take(obj, "schedule", dict, "task")
    _check_keys(sched, {"name", "warmup_steps"}, "schedule")
    return TrainingTask(
        architecture=_take(obj, "architecture", str, "task"),
        arch_params=dict(_take(obj, "arch_params", dict, "task")),
        dataset=DatasetRef(
            sha256=_take(data, "sha256", str, "dataset"),
            generator=_take(data, "generator", str, "dataset") if "generator" in data else None,
            params=dict(_take(data, "params", dict, "dataset")) if "params" in data else {},
            file=_take(data, "file", str, "dataset") if "file" in data else None,
        ),
        optimizer=OptimizerSpec(
            _take(opt, "name", str, "optimizer"),
            _number(opt, "lr", "optimizer"),
            **{key: _number(opt, key, "optimizer") for key in opt if key not in ("name", "lr")},
        ),
        schedule=ScheduleSpec(
            name=_take(sched, "name", str, "schedule"),
            warmup_steps=_take(sched, "warmup_steps", int, "schedule"),
        ),
        batch_size=_take(obj, "batch_size", int, "task"),
        steps=_take(obj, "steps", int, "task"),
        segment_length=_take(obj, "segment_length", int, "task"),
        init_seed=_take(obj, "init_seed", int, "task"),
        eval_examples=_take(obj, "eval_examples", int, "task"),
        numerics=_take(obj, "numerics", str, "task") if "numerics" in obj else NATIVE,
        step_digests=_flag(obj, "step_digests", "task"),
    )


def _check_seed(seed: bytes) -> None:
    if len(seed) != 32:
        raise TaskError("order: data_order_seed must be 32 bytes")


def decode_order(data: bytes) -> TrainingOrder:
    """Parse canonical order bytes and check the hyperparameters; raises TaskError with the reason."""
    try:
        obj = parse_canonical_json(data)
    except EncodingError as exc:
        raise TaskError(f"order: {exc}") from None
    _check_keys(obj, {"version", "data_order_seed", "task"}, "order")
    if _take(obj, "version", int, "order") != SCHEMA_VERSION:
        raise TaskError(
            f"order: unsupported schema version {obj['version']} (this node speaks {SCHEMA_VERSION})"
        )
    try:
        seed = bytes.fromhex(_take(obj, "data_order_seed", str, "order"))
    except ValueError:
        raise TaskError("order: data_order_seed must be hex") from None
    _check_seed(seed)
    task = task_from_json(_take(obj, "task", dict, "order"))
    validate_hyperparameters(task)
    order = TrainingOrder(task, seed)
    if order.encode() != data:
        raise TaskError("order: bytes are not the canonical encoding of the order they describe")
    return order


def encode_task(task: TrainingTask) -> bytes:
    """The canonical bytes a client posts in the ledger's ``Order`` transaction (the task alone: the
    ledger, not the client, fixes the data-order seed when the order executes)."""
    return canonical_json(_task_json(task))


def decode_task(data: bytes) -> TrainingTask:
    """Parse posted task bytes (``encode_task``) and check the hyperparameters; raises TaskError."""
    try:
        obj = parse_canonical_json(data)
    except EncodingError as exc:
        raise TaskError(f"task: {exc}") from None
    task = task_from_json(obj)
    validate_hyperparameters(task)
    if encode_task(task) != data:
        raise TaskError("task: bytes are not the canonical encoding of the task they describe")
    return task


def committed_order(task_bytes: bytes, data_order_seed: bytes) -> TrainingOrder:
    """The order a ledger committed: the posted task with the seed from the ledger's order record."""
    _check_seed(data_order_seed)
    return TrainingOrder(decode_task(task_bytes), data_order_seed)


def decode_checker_order(data: bytes) -> TrainingOrder:
    """The order a ``ProofChecker`` is asked about: the ledger's ``CommittedOrder`` bytes, or an
    order's own canonical bytes (``TrainingOrder.encode()``, as validators and tools hold it)."""
    try:
        committed = codec.decode(data, CommittedOrder)
    except codec.DecodeError:
        return decode_order(data)
    return committed_order(committed.task, committed.data_order_seed)


# --- validation -----------------------------------------------------------------------------------


def validate_hyperparameters(task: TrainingTask) -> None:
    """Every check that needs no dataset: ranges and mutual consistency of the hyperparameters."""
    try:
        resolved = resolve_arch_params(task.architecture, task.arch_params)
    except ArchitectureError as exc:
        raise TaskError(str(exc)) from None
    if dict(task.arch_params) != resolved:
        raise TaskError("task: arch_params must list every parameter explicitly (use resolve_arch_params)")
    if not 1 <= task.steps <= MAX_STEPS:
        raise TaskError(f"task: steps must be in [1, {MAX_STEPS}]")
    if not 1 <= task.segment_length <= task.steps or task.steps % task.segment_length:
        raise TaskError(f"task: segment_length {task.segment_length} must divide steps {task.steps}")
    if task.batch_size < 1:
        raise TaskError("task: batch_size must be positive")
    if task.eval_examples < 1:
        raise TaskError("task: eval_examples must be positive")
    if not 0 <= task.init_seed < 2**63:
        raise TaskError("task: init_seed must be in [0, 2^63)")
    _validate_optimizer(task.optimizer)
    if task.numerics not in NUMERICS:
        raise TaskError(f"task: unknown numerics {task.numerics!r}; known: {list(NUMERICS)}")
    if task.schedule.name not in SCHEDULES:
        raise TaskError(f"task: unknown schedule {task.schedule.name!r}; known: {list(SCHEDULES)}")
    if not 0 <= task.schedule.warmup_steps <= task.steps:
        raise TaskError("task: warmup_steps must be in [0, steps]")
    ref = task.dataset
    if (ref.generator is None) == (ref.file is None):
        raise TaskError("dataset: name exactly one of 'generator' or 'file'")
    if ref.file is not None and ref.params:
        raise TaskError("dataset: 'params' only applies to synthetic generators")
    try:
        if len(bytes.fromhex(ref.sha256)) != 32:
            raise ValueError
    except ValueError:
        raise TaskError("dataset: sha256 must be 64 hex digits") from None


def _validate_optimizer(opt: OptimizerSpec) -> None:
    if opt.name not in OPTIMIZERS:
        raise TaskError(f"optimizer: unknown optimizer {opt.name!r}; known: {list(OPTIMIZERS)}")
    values = (opt.lr, opt.momentum, opt.weight_decay, opt.beta1, opt.beta2, opt.eps)
    if not all(math.isfinite(v) for v in values):
        raise TaskError("optimizer: hyperparameters must be finite")
    if not 0 < opt.lr <= 10:
        raise TaskError(f"optimizer: lr {opt.lr} must be in (0, 10]")
    if not 0 <= opt.weight_decay < 1:
        raise TaskError("optimizer: weight_decay must be in [0, 1)")
    if opt.name == "sgd":
        if not 0 <= opt.momentum < 1:
            raise TaskError("optimizer: sgd momentum must be in [0, 1)")
        if (opt.beta1, opt.beta2, opt.eps) != (0.9, 0.999, 1e-8):
            raise TaskError("optimizer: beta1, beta2 and eps do not apply to sgd")
    else:
        if opt.momentum != 0:
            raise TaskError(f"optimizer: momentum does not apply to {opt.name} (use beta1)")
        if not (0 <= opt.beta1 < 1 and 0 <= opt.beta2 < 1 and opt.eps > 0):
            raise TaskError("optimizer: betas must be in [0, 1) and eps positive")


@dataclass(frozen=True)
class PreparedTask:
    """A task resolved against local data: the dataset and its train/eval split sizes."""

    task: TrainingTask
    dataset: Dataset

    @property
    def train_examples(self) -> int:
        return self.dataset.examples - self.task.eval_examples


def resolve_dataset(ref: DatasetRef, catalog: DatasetCatalog) -> Dataset:
    """Load the referenced dataset and check its content hash; raises TaskError on mismatch."""
    try:
        if ref.generator is not None:
            dataset = synthetic_dataset(ref.generator, ref.params)
        else:
            assert ref.file is not None  # guaranteed by validate_hyperparameters
            dataset = catalog.load_file(ref.file)
    except DatasetError as exc:
        raise TaskError(f"dataset: {exc}") from None
    if dataset.digest.hex() != ref.sha256:
        raise TaskError(
            f"dataset: content hash {dataset.digest.hex()} does not match the task's {ref.sha256}"
        )
    return dataset


def prepare_task(task: TrainingTask, catalog: DatasetCatalog) -> PreparedTask:
    """Full validation: hyperparameters, dataset hash, and that the model fits the data."""
    validate_hyperparameters(task)
    dataset = resolve_dataset(task.dataset, catalog)
    prepared = PreparedTask(task, dataset)
    if task.eval_examples >= dataset.examples:
        raise TaskError(
            f"task: eval_examples {task.eval_examples} leaves no training data ({dataset.examples} total)"
        )
    if task.batch_size > prepared.train_examples:
        raise TaskError(
            f"task: batch_size {task.batch_size} exceeds the {prepared.train_examples} training examples"
        )
    try:
        with torch.device("meta"):  # shapes only: nothing is allocated for an oversized model
            parameters = sum(
                p.numel() for p in build_model(task.architecture, task.arch_params, dataset).parameters()
            )
    except ArchitectureError as exc:
        raise TaskError(str(exc)) from None
    if parameters > MAX_PARAMETERS:
        raise TaskError(f"task: the model has {parameters} parameters, above the limit of {MAX_PARAMETERS}")
    return prepared
