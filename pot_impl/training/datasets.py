"""Datasets named by content hash: seeded synthetic generators and user files (.npz, .safetensors).

Every dataset is two arrays, ``inputs`` and ``targets``, whose kind is fixed
by dtype and rank: ``vectors`` (float [N, D], labels [N]), ``images`` (float
[N, C, H, W], labels [N]) or ``tokens`` (int [N, T] inputs and next-token
targets [N, T]). The content hash is the tensor digest of both arrays, so a
synthetic dataset and the same arrays saved to a file have the same hash.
Nothing is ever fetched from the network.
"""

from __future__ import annotations

import functools
import zipfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from pot_impl.training.tensor_codec import digest_named_tensors

DATASET_DOMAIN = b"pot-dataset-v1"
MAX_SYNTHETIC_VALUES = 50_000_000  # bounds the memory a task can make every node allocate


class DatasetError(ValueError):
    """A dataset that cannot be resolved, loaded or used; the message says what to fix."""


@dataclass(frozen=True)
class Dataset:
    """Arrays plus what architectures need to know about them."""

    kind: str  # "vectors" | "images" | "tokens"
    inputs: torch.Tensor
    targets: torch.Tensor
    digest: bytes

    @property
    def examples(self) -> int:
        return int(self.inputs.shape[0])

    @property
    def example_shape(self) -> tuple[int, ...]:
        return tuple(int(s) for s in self.inputs.shape[1:])

    @property
    def classes(self) -> int:
        """Number of labels (classification) or vocabulary size (tokens)."""
        if self.kind == "tokens":
            return int(max(int(self.inputs.max()), int(self.targets.max()))) + 1
        return int(self.targets.max()) + 1


def dataset_from_arrays(inputs: np.ndarray, targets: np.ndarray) -> Dataset:
    """Check the arrays' kind and wrap them; raises DatasetError on shapes no architecture accepts."""
    if inputs.ndim == 0 or targets.ndim == 0 or inputs.shape[0] != targets.shape[0]:
        raise DatasetError("inputs and targets must have the same number of examples")
    if inputs.shape[0] < 2:
        raise DatasetError("a dataset needs at least two examples")
    float_inputs = np.issubdtype(inputs.dtype, np.floating)
    int_inputs = np.issubdtype(inputs.dtype, np.integer)
    if not np.issubdtype(targets.dtype, np.integer):
        raise DatasetError(f"targets must be integers, got {targets.dtype}")
    if float_inputs and inputs.ndim == 2 and targets.ndim == 1:
        kind = "vectors"
    elif float_inputs and inputs.ndim == 4 and targets.ndim == 1:
        kind = "images"
    elif int_inputs and inputs.ndim == 2 and targets.shape == inputs.shape:
        kind = "tokens"
    else:
        raise DatasetError(
            f"unsupported array shapes inputs {inputs.shape} {inputs.dtype}, targets {targets.shape}: "
            "expected float [N,D] or [N,C,H,W] with int labels [N], or int tokens [N,T] with targets [N,T]"
        )
    if int(targets.min()) < 0 or (kind == "tokens" and int(inputs.min()) < 0):
        raise DatasetError("labels and tokens must be non-negative")
    input_tensor = torch.from_numpy(
        np.ascontiguousarray(inputs, dtype=np.float32 if float_inputs else np.int64)
    )
    target_tensor = torch.from_numpy(np.ascontiguousarray(targets, dtype=np.int64))
    digest = digest_named_tensors({"inputs": input_tensor, "targets": target_tensor}, DATASET_DOMAIN)
    return Dataset(kind, input_tensor, target_tensor, digest)


# --- synthetic generators -------------------------------------------------------------------------

GeneratorFn = Callable[[np.random.Generator, Mapping[str, int]], tuple[np.ndarray, np.ndarray]]


def _blobs(rng: np.random.Generator, p: Mapping[str, int]) -> tuple[np.ndarray, np.ndarray]:
    """Gaussian clusters around random class centres: learnable by an MLP."""
    centres = rng.normal(0.0, 2.0, size=(p["classes"], p["features"]))
    labels = rng.integers(0, p["classes"], size=p["examples"])
    points = centres[labels] + rng.normal(0.0, 1.0, size=(p["examples"], p["features"]))
    return points.astype(np.float32), labels.astype(np.int64)


def _images(rng: np.random.Generator, p: Mapping[str, int]) -> tuple[np.ndarray, np.ndarray]:
    """Noisy per-class template images: learnable by a small CNN."""
    shape = (p["channels"], p["size"], p["size"])
    templates = rng.normal(0.0, 1.0, size=(p["classes"], *shape))
    labels = rng.integers(0, p["classes"], size=p["examples"])
    pictures = templates[labels] + rng.normal(0.0, 1.0, size=(p["examples"], *shape))
    return pictures.astype(np.float32), labels.astype(np.int64)


def _tokens(rng: np.random.Generator, p: Mapping[str, int]) -> tuple[np.ndarray, np.ndarray]:
    """Sequences from a random sparse Markov chain: learnable by a small language model."""
    vocab, length = p["vocab"], p["seq_len"]
    successors = rng.integers(0, vocab, size=(vocab, 3))
    stream = np.empty((p["examples"], length + 1), dtype=np.int64)
    stream[:, 0] = rng.integers(0, vocab, size=p["examples"])
    choices = rng.integers(0, 3, size=(p["examples"], length))
    for position in range(length):
        stream[:, position + 1] = successors[stream[:, position], choices[:, position]]
    return stream[:, :-1].copy(), stream[:, 1:].copy()


@dataclass(frozen=True)
class SyntheticGenerator:
    """A seeded generator and the integer parameters it accepts, with their bounds."""

    make: GeneratorFn
    params: Mapping[str, tuple[int, int]]  # name -> (min, max), inclusive
    values_per_example: Callable[[Mapping[str, int]], int]


SYNTHETIC_GENERATORS: Mapping[str, SyntheticGenerator] = {
    "blobs": SyntheticGenerator(
        _blobs,
        {"examples": (2, 10**6), "features": (1, 4096), "classes": (2, 1000), "seed": (0, 2**63 - 1)},
        lambda p: p["features"],
    ),
    "images": SyntheticGenerator(
        _images,
        {
            "examples": (2, 10**6),
            "channels": (1, 8),
            "size": (4, 128),
            "classes": (2, 1000),
            "seed": (0, 2**63 - 1),
        },
        lambda p: p["channels"] * p["size"] ** 2,
    ),
    "tokens": SyntheticGenerator(
        _tokens,
        {"examples": (2, 10**6), "seq_len": (2, 1024), "vocab": (2, 65536), "seed": (0, 2**63 - 1)},
        lambda p: 2 * p["seq_len"],
    ),
}


def check_synthetic_params(generator: str, params: Mapping[str, object]) -> dict[str, int]:
    """Validated generator parameters; raises DatasetError naming the offending one."""
    spec = SYNTHETIC_GENERATORS.get(generator)
    if spec is None:
        raise DatasetError(
            f"unknown synthetic generator {generator!r}; known: {sorted(SYNTHETIC_GENERATORS)}"
        )
    if set(params) != set(spec.params):
        raise DatasetError(f"generator {generator!r} takes exactly the parameters {sorted(spec.params)}")
    checked: dict[str, int] = {}
    for name, (low, high) in spec.params.items():
        value = params[name]
        if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
            raise DatasetError(f"generator parameter {name!r} must be an integer in [{low}, {high}]")
        checked[name] = value
    if checked["examples"] * spec.values_per_example(checked) > MAX_SYNTHETIC_VALUES:
        raise DatasetError(f"synthetic dataset too large (over {MAX_SYNTHETIC_VALUES} values)")
    return checked


@functools.lru_cache(maxsize=16)
def _synthetic_cached(generator: str, frozen_params: tuple[tuple[str, int], ...]) -> Dataset:
    params = dict(frozen_params)
    rng = np.random.Generator(np.random.PCG64(params["seed"]))
    inputs, targets = SYNTHETIC_GENERATORS[generator].make(rng, params)
    return dataset_from_arrays(inputs, targets)


def synthetic_dataset(generator: str, params: Mapping[str, object]) -> Dataset:
    """The dataset a generator produces for ``params`` (cached: validators resolve it repeatedly)."""
    checked = check_synthetic_params(generator, params)
    return _synthetic_cached(generator, tuple(sorted(checked.items())))


# --- user files -----------------------------------------------------------------------------------


def load_dataset_file(path: Path) -> Dataset:
    """Load ``inputs`` and ``targets`` from a .npz (no pickles) or .safetensors file."""
    if not path.is_file():
        raise DatasetError(f"dataset file {path} does not exist")
    arrays: Mapping[str, np.ndarray]
    try:
        if path.suffix == ".npz":
            with np.load(path, allow_pickle=False) as archive:
                arrays = {name: archive[name] for name in archive.files}
        elif path.suffix == ".safetensors":
            from safetensors.numpy import load_file

            arrays = load_file(str(path))
        else:
            raise DatasetError(f"dataset file {path} must end in .npz or .safetensors")
    except (OSError, ValueError, zipfile.BadZipFile) as exc:
        if isinstance(exc, DatasetError):
            raise
        raise DatasetError(f"cannot read dataset file {path}: {exc}") from None
    missing = {"inputs", "targets"} - set(arrays)
    if missing:
        raise DatasetError(f"dataset file {path} lacks arrays {sorted(missing)}")
    return dataset_from_arrays(arrays["inputs"], arrays["targets"])


@functools.lru_cache(maxsize=16)
def _file_cached(path: Path, size: int, mtime_ns: int) -> Dataset:
    return load_dataset_file(path)


class DatasetCatalog:
    """Resolves dataset files by name inside one local directory (the node's data root)."""

    def __init__(self, root: Path | None) -> None:
        self.root = root

    def load_file(self, name: str) -> Dataset:
        """The dataset stored as ``name`` under the data root."""
        if self.root is None:
            raise DatasetError(f"dataset file {name!r} requested but this node has no data directory")
        if Path(name).name != name:
            raise DatasetError(f"dataset file name {name!r} must be a bare file name")
        path = (self.root / name).resolve()
        if not path.is_file():
            raise DatasetError(f"dataset file {path} does not exist")
        stat = path.stat()
        return _file_cached(path, stat.st_size, stat.st_mtime_ns)
