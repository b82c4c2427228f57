"""The pinned execution environment: device choice and deterministic PyTorch settings.

Exact (tier A) re-execution is only possible when trainer and validator run
the same PyTorch build on the same device type with the same thread count,
deterministic algorithms, TF32 off and fixed batch shapes. ``Environment``
names those choices; its fingerprint travels in the claim so a validator can
tell whether it may compare bit for bit or must fall back to tier B.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch

from pot_impl.training.reproducible import REPRODUCIBLE

# cuBLAS needs a fixed workspace to be deterministic; it must be set before CUDA initialises.
os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")

DEFAULT_THREADS = 1


@dataclass(frozen=True)
class Environment:
    """Device and thread count of a run; with the torch version, this is what tier A pins."""

    device: str = "cpu"
    threads: int = DEFAULT_THREADS

    @property
    def fingerprint(self) -> str:
        """Everything that must match for bit-identical re-execution."""
        kind = self.device.split(":")[0]
        if kind == "cuda":
            kind = f"cuda/{torch.cuda.get_device_name(torch.device(self.device))}/cuda{torch.version.cuda}"
        return f"torch{torch.__version__}/{kind}/threads{self.threads}"


def run_fingerprint(env: Environment, numerics: str) -> str:
    """What tier A pins for a run in ``env``: the whole environment under native numerics; under
    reproducible numerics, whose results do not depend on device or thread count, only the
    rounding scheme and the torch release (releases may change an operator's float64 formula)."""
    if numerics == REPRODUCIBLE:
        return f"{REPRODUCIBLE}-v1/torch{torch.__version__.split('+')[0]}"
    return env.fingerprint


TRAINING_DEVICE_TYPES = ("cpu", "cuda")
"""Device types a run may use: the ones whose fingerprint tier A knows how to pin."""


def check_device(name: str) -> str:
    """``name`` if this machine can train on it; otherwise a ValueError saying why and what to use."""
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ValueError(f"{name!r} is not a torch device; use cpu or cuda[:INDEX]") from None
    if device.type not in TRAINING_DEVICE_TYPES:
        raise ValueError(f"{name}: training runs on {' or '.join(TRAINING_DEVICE_TYPES)}, not {device.type}")
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"{name}: this torch ({torch.__version__}) sees no CUDA device; use cpu")
        count = torch.cuda.device_count()
        if device.index is not None and device.index >= count:
            raise ValueError(f"{name}: this machine has CUDA devices 0..{count - 1} only")
    return name


def default_environment(threads: int = DEFAULT_THREADS) -> Environment:
    """CUDA when present, CPU otherwise."""
    return Environment("cuda" if torch.cuda.is_available() else "cpu", threads)


@contextmanager
def deterministic(env: Environment) -> Iterator[torch.device]:
    """Run a block under the pinned deterministic settings, restoring the caller's settings afterwards."""
    saved = (
        torch.get_num_threads(),
        torch.are_deterministic_algorithms_enabled(),
        torch.backends.cuda.matmul.allow_tf32,
        torch.backends.cudnn.allow_tf32,
        torch.backends.cudnn.deterministic,
        torch.backends.cudnn.benchmark,
    )
    torch.set_num_threads(env.threads)
    torch.use_deterministic_algorithms(True)
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cudnn.deterministic = True
    torch.backends.cudnn.benchmark = False
    try:
        yield torch.device(env.device)
    finally:
        torch.set_num_threads(saved[0])
        torch.use_deterministic_algorithms(saved[1])
        torch.backends.cuda.matmul.allow_tf32 = saved[2]
        torch.backends.cudnn.allow_tf32 = saved[3]
        torch.backends.cudnn.deterministic = saved[4]
        torch.backends.cudnn.benchmark = saved[5]
