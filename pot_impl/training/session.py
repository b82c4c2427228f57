"""One deterministic training run of an order: model, optimizer, data order and RNG, step by step.

Trainer, validator and fraud-proof checker all drive this same class, so
"re-executing a segment" means literally running the trainer's code from a
restored checkpoint. Everything that influences a step is either in the
order (architecture, data, hyperparameters, seeds), a pure function of the
step number (learning rate, batch indices) or in the checkpoint (weights,
optimizer state, RNG state).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from pot_impl.training.architectures import build_model, classification_loss, correct_predictions
from pot_impl.training.checkpoint import MODEL_PREFIX, Checkpoint, CheckpointError, checkpoint_digest
from pot_impl.training.environment import Environment, deterministic
from pot_impl.training.reproducible import (
    EMPTY_LOG,
    REPRODUCIBLE,
    RoundingLog,
    quantize_gradients,
    round_step,
    use_host_dropout,
)
from pot_impl.training.task import PreparedTask

DATA_ORDER_DOMAIN = b"pot-data-order-v1"
SCORE_SCALE = 10_000  # scores are accuracies in basis points


def epoch_permutation(data_order_seed: bytes, epoch: int, examples: int) -> np.ndarray:
    """The shuffled example order of one epoch, from the ledger-chosen seed (PCG64, stable across numpy)."""
    seed = hashlib.sha256(DATA_ORDER_DOMAIN + data_order_seed + epoch.to_bytes(8, "big")).digest()
    rng = np.random.Generator(np.random.PCG64(int.from_bytes(seed[:16], "big")))
    return rng.permutation(examples).astype(np.int64)


@dataclass(frozen=True)
class StepsOutcome:
    """What running some steps produced besides the new state."""

    losses: torch.Tensor
    """Per-step losses, on the device."""
    batch_digest: bytes
    near_ties: RoundingLog = EMPTY_LOG
    """Reproducible numerics: the rounding decisions a trainer logs."""
    refused: int = 0
    """Reproducible numerics: logged decisions not taken (not near a tie here, or not a neighbour)."""
    state_digests: tuple[bytes, ...] = ()
    """With ``digest_steps``: the checkpoint digest after each step."""


@dataclass(frozen=True)
class SegmentOutcome:
    """What running one segment produced: its checkpoint and the data needed for its leaf."""

    checkpoint: dict[str, torch.Tensor]
    batch_digest: bytes
    losses: tuple[float, ...]
    near_ties: RoundingLog = EMPTY_LOG
    refused: int = 0
    step_digests: tuple[bytes, ...] = ()
    """With the task's ``step_digests``: the state digest after each step but the last."""


class TrainingSession:
    """The live training state of one order in one environment."""

    def __init__(self, prepared: PreparedTask, data_order_seed: bytes, env: Environment) -> None:
        self.task = prepared.task
        self.env = env
        self.data_order_seed = data_order_seed
        self.train_examples = prepared.train_examples
        self.batches_per_epoch = self.train_examples // self.task.batch_size
        self.reproducible = self.task.numerics == REPRODUCIBLE
        with deterministic(env) as device:
            self.device = device
            data = prepared.dataset
            inputs = (
                data.inputs.double() if self.reproducible and data.inputs.is_floating_point() else data.inputs
            )
            self.train_inputs = inputs[: self.train_examples].to(device)
            self.train_targets = data.targets[: self.train_examples].to(device)
            self.eval_inputs = inputs[self.train_examples :].to(device)
            self.eval_targets = data.targets[self.train_examples :].to(device)
            with torch.random.fork_rng(devices=self._rng_devices()):
                torch.manual_seed(self.task.init_seed)
                self.model: nn.Module = build_model(self.task.architecture, self.task.arch_params, data)
                if self.reproducible:
                    use_host_dropout(self.model)
                    self.model.double()
                self.model.to(device)
                self.rng_state = self._capture_rng()
        self.optimizer = self._make_optimizer()
        self.step = 0
        self._cached_epoch: tuple[int, torch.Tensor] | None = None

    def _rng_devices(self) -> list[int]:
        """The CUDA generators a step draws from (none under reproducible numerics)."""
        return [self.device.index or 0] if self.device.type == "cuda" and not self.reproducible else []

    def _capture_rng(self) -> dict[str, torch.Tensor]:
        states = {"rng/cpu": torch.get_rng_state()}
        if self._rng_devices():
            states["rng/cuda"] = torch.cuda.get_rng_state(self.device)
        return states

    def _make_optimizer(self) -> torch.optim.Optimizer:
        spec = self.task.optimizer
        params = list(self.model.parameters())
        if spec.name == "sgd":
            return torch.optim.SGD(params, lr=spec.lr, momentum=spec.momentum, weight_decay=spec.weight_decay)
        optimizer_class = torch.optim.Adam if spec.name == "adam" else torch.optim.AdamW
        return optimizer_class(
            params, lr=spec.lr, betas=(spec.beta1, spec.beta2), eps=spec.eps, weight_decay=spec.weight_decay
        )

    # --- data order -----------------------------------------------------------------------------

    def batch_indices(self, step: int) -> torch.Tensor:
        """Example indices of ``step``'s batch: consecutive slices of each epoch's permutation
        (the incomplete last batch is dropped so every batch has the same shape)."""
        epoch, slot = divmod(step, self.batches_per_epoch)
        if self._cached_epoch is None or self._cached_epoch[0] != epoch:
            permutation = epoch_permutation(self.data_order_seed, epoch, self.train_examples)
            self._cached_epoch = (epoch, torch.from_numpy(permutation))
        start = slot * self.task.batch_size
        return self._cached_epoch[1][start : start + self.task.batch_size]

    # --- checkpoints ----------------------------------------------------------------------------

    def checkpoint(self) -> dict[str, torch.Tensor]:
        """The current state as named tensors (views of live tensors: hash or copy before training on).
        Under reproducible numerics the float64 working copies hold float32 values, stored as such."""
        state: dict[str, torch.Tensor] = {f"{MODEL_PREFIX}{k}": v for k, v in self.model.state_dict().items()}
        optimizer_state = self.optimizer.state_dict()["state"]
        for index in sorted(optimizer_state):
            for key, value in optimizer_state[index].items():
                if isinstance(value, torch.Tensor):
                    state[f"optim/{index}/{key}"] = value
        if self.reproducible:
            state = {k: v.float() if v.dtype == torch.float64 else v for k, v in state.items()}
        state.update(self.rng_state)
        state["step"] = torch.tensor([self.step], dtype=torch.int64)
        return state

    def restore(self, checkpoint: Checkpoint) -> None:
        """Load a checkpoint of this task; raises CheckpointError unless the restored state is exactly it."""
        expected = checkpoint_digest(checkpoint)
        with deterministic(self.env):  # pinned threads: torch's copies would otherwise wake its thread pool
            self._load(checkpoint)
        if checkpoint_digest(self.checkpoint()) != expected:
            raise CheckpointError(
                "checkpoint has entries this task does not use, or entries of the wrong type"
            )

    def _load(self, checkpoint: Checkpoint) -> None:
        try:
            step = checkpoint["step"]
            if step.dtype != torch.int64 or step.shape != (1,):
                raise CheckpointError("checkpoint step must be one int64")
            model_state = {
                k[len(MODEL_PREFIX) :]: v for k, v in checkpoint.items() if k.startswith(MODEL_PREFIX)
            }
            self.model.load_state_dict(model_state, strict=True)
            self.optimizer.load_state_dict(
                {
                    "state": self._optimizer_state(checkpoint),
                    "param_groups": self.optimizer.state_dict()["param_groups"],
                }
            )
            self.rng_state = {k: v.clone() for k, v in checkpoint.items() if k.startswith("rng/")}
            self.step = int(step[0])
        except (KeyError, RuntimeError, ValueError, TypeError, IndexError) as exc:
            raise CheckpointError(f"checkpoint does not fit this task: {exc}") from None

    def _optimizer_state(self, checkpoint: Checkpoint) -> dict[int, dict[str, torch.Tensor]]:
        parameter_count = len(list(self.model.parameters()))
        state: dict[int, dict[str, torch.Tensor]] = {}
        for name, tensor in checkpoint.items():
            if name.startswith("optim/"):
                _, index_text, key = name.split("/", 2)
                index = int(index_text)
                if not 0 <= index < parameter_count:
                    raise CheckpointError(f"optimizer state for unknown parameter {index}")
                state.setdefault(index, {})[key] = tensor.clone()
        return state

    # --- training -------------------------------------------------------------------------------

    def _train_step(
        self, indices: torch.Tensor, follow: RoundingLog = EMPTY_LOG
    ) -> tuple[torch.Tensor, RoundingLog, int]:
        """One optimizer step; under reproducible numerics the gradients are put on their block grid
        first, and the returned log holds that rounding's near-ties."""
        for group in self.optimizer.param_groups:
            group["lr"] = self.task.learning_rate(self.step)
        device_indices = indices.to(self.device)
        inputs = self.train_inputs.index_select(0, device_indices)
        targets = self.train_targets.index_select(0, device_indices)
        self.optimizer.zero_grad(set_to_none=True)
        loss = classification_loss(self.model(inputs), targets)
        loss.backward()  # type: ignore[no-untyped-call]
        gradient_ties, refused = EMPTY_LOG, 0
        if self.reproducible:
            gradients = [p.grad for p in self.model.parameters() if p.grad is not None]
            gradient_ties, refused = quantize_gradients(gradients, self.step, follow)
        self.optimizer.step()
        self.step += 1
        return loss.detach(), gradient_ties, refused

    def rounded_state(self) -> list[tuple[str, torch.Tensor]]:
        """What reproducible numerics rounds after a step, named, in log-position order (after the
        loss): each parameter, then its optimizer state (sorted keys; the integer-valued step count
        excluded)."""
        named = []
        for name, parameter in self.model.named_parameters():
            named.append((name, parameter.data))
            state = self.optimizer.state.get(parameter, {})
            named += [
                (f"{name}/{key}", state[key])
                for key in sorted(state)
                if key != "step" and state[key].dtype == torch.float64
            ]
        return named

    def batch_digest(self, first_step: int, count: int) -> bytes:
        """SHA-256 over the raw int64 batch indices of ``count`` steps from ``first_step``."""
        hasher = hashlib.sha256()
        for step in range(first_step, first_step + count):
            hasher.update(self.batch_indices(step).numpy().data)
        return hasher.digest()

    def run_steps(
        self, count: int, follow: RoundingLog = EMPTY_LOG, digest_steps: bool = False
    ) -> StepsOutcome:
        """Train ``count`` steps; the batch-index digest is hashed from the very index tensors the
        steps train on (``batch_digest``). Reproducible numerics takes ``follow``'s near-tie decisions;
        ``digest_steps`` hashes the state after every step."""
        hasher = hashlib.sha256()
        state_digests = []
        losses = []
        near_ties: list[RoundingLog] = []
        refused = 0
        with deterministic(self.env), torch.random.fork_rng(devices=self._rng_devices()):
            torch.set_rng_state(self.rng_state["rng/cpu"])
            if self._rng_devices() and "rng/cuda" in self.rng_state:  # absent in a CPU run's checkpoint
                torch.cuda.set_rng_state(self.rng_state["rng/cuda"], self.device)
            self.model.train()
            for _ in range(count):
                indices = self.batch_indices(self.step)
                hasher.update(indices.numpy().data)
                loss, gradient_ties, gradient_refused = self._train_step(indices, follow)
                if self.reproducible:
                    loss = loss.reshape(1).clone()
                    log, not_taken = round_step(
                        [loss, *(t for _, t in self.rounded_state())], self.step - 1, follow
                    )
                    near_ties += [log, gradient_ties]  # gradient positions sort after the state's
                    refused += not_taken + gradient_refused
                    loss = loss[0]
                losses.append(loss)
                if digest_steps:
                    self.rng_state = self._capture_rng()
                    state_digests.append(checkpoint_digest(self.checkpoint()))
            self.rng_state = self._capture_rng()
        trace = torch.stack(losses) if losses else torch.empty(0, device=self.device)
        return StepsOutcome(trace, hasher.digest(), RoundingLog.of(near_ties), refused, tuple(state_digests))

    def run_segment(self, follow: RoundingLog = EMPTY_LOG) -> SegmentOutcome:
        """Train one segment of k steps from the current state."""
        steps = self.run_steps(self.task.segment_length, follow, self.task.step_digests)
        losses = tuple(float(x) for x in steps.losses.cpu().tolist())
        return SegmentOutcome(
            self.checkpoint(),
            steps.batch_digest,
            losses,
            steps.near_ties,
            steps.refused,
            steps.state_digests[:-1],
        )

    def evaluate(self) -> int:
        """Accuracy on the evaluation split (token accuracy for a language model) in basis points,
        rounded down: an integer, like every amount on the ledger."""
        correct = 0
        with deterministic(self.env), torch.no_grad():
            self.model.eval()
            for start in range(0, self.eval_inputs.shape[0], self.task.batch_size):
                end = start + self.task.batch_size
                correct += correct_predictions(
                    self.model(self.eval_inputs[start:end]), self.eval_targets[start:end]
                )
        return correct * SCORE_SCALE // self.eval_targets.numel()
