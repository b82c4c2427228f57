"""Canonical checkpoints (model, optimizer and RNG state) and the content-addressed store.

A checkpoint is a flat map of named tensors: ``model/<name>`` for every
parameter and buffer, ``optim/<param index>/<key>`` for optimizer state,
``rng/<device>`` for the random generator states and ``step``. Its identity is
the tensor digest of that map (raw bytes, no serialisation), so trainer and
validator agree on a checkpoint hash without agreeing on a file format. On
disk and on the wire a checkpoint is a safetensors file; whoever loads one
recomputes the digest, so a served file can never stand in for another.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Protocol

import torch
from safetensors import SafetensorError
from safetensors.torch import load as load_safetensors
from safetensors.torch import save as save_safetensors

from pot_impl.training.tensor_digest import digest_named_tensors

CHECKPOINT_DOMAIN = b"pot-checkpoint-v1"
MODEL_DOMAIN = b"pot-model-v1"
MODEL_PREFIX = "model/"

Checkpoint = Mapping[str, torch.Tensor]


class CheckpointUnavailable(LookupError):
    """A checkpoint the trainer did not (or could not) serve."""


class CheckpointError(ValueError):
    """Checkpoint bytes that do not decode, or do not fit the model they are meant for."""


def checkpoint_digest(checkpoint: Checkpoint) -> bytes:
    return digest_named_tensors(checkpoint, CHECKPOINT_DOMAIN)


def model_digest(checkpoint: Checkpoint) -> bytes:
    """Digest of the model part alone: what a claim names as its final model."""
    return digest_named_tensors(model_tensors(checkpoint), MODEL_DOMAIN)


def model_tensors(checkpoint: Checkpoint) -> dict[str, torch.Tensor]:
    return {name: tensor for name, tensor in checkpoint.items() if name.startswith(MODEL_PREFIX)}


def encode_checkpoint(checkpoint: Checkpoint) -> bytes:
    """Safetensors bytes (copies every tensor to CPU)."""
    return save_safetensors({name: t.detach().contiguous().cpu() for name, t in checkpoint.items()})


def decode_checkpoint(data: bytes, expected_digest: bytes | None = None) -> dict[str, torch.Tensor]:
    """Parse safetensors bytes; with ``expected_digest``, insist the content is that checkpoint."""
    try:
        tensors = load_safetensors(data)
    except (SafetensorError, ValueError, RuntimeError) as exc:
        raise CheckpointError(f"malformed checkpoint: {exc}") from None
    if expected_digest is not None and checkpoint_digest(tensors) != expected_digest:
        raise CheckpointError("checkpoint content does not match its digest")
    return tensors


class CheckpointSource(Protocol):
    """Where a validator fetches checkpoints from (a trainer's store, a network peer)."""

    def fetch(self, digest: bytes) -> bytes:
        """Safetensors bytes of the checkpoint with ``digest``; raises CheckpointUnavailable."""
        ...


class CheckpointStore:
    """A directory of checkpoints named by digest; writes are atomic, reads are verified."""

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)

    def path(self, digest: bytes) -> Path:
        return self.root / f"{digest.hex()}.safetensors"

    def put(self, checkpoint: Checkpoint, digest: bytes | None = None) -> bytes:
        """Store ``checkpoint`` (once) and return its digest; pass ``digest`` if already computed."""
        digest = checkpoint_digest(checkpoint) if digest is None else digest
        target = self.path(digest)
        if not target.exists():
            self._write_atomically(target, encode_checkpoint(checkpoint))
        return digest

    def _write_atomically(self, target: Path, data: bytes) -> None:
        handle, temporary = tempfile.mkstemp(dir=self.root, suffix=".partial")
        try:
            with os.fdopen(handle, "wb") as out:
                out.write(data)
            os.replace(temporary, target)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise

    def fetch(self, digest: bytes) -> bytes:
        try:
            return self.path(digest).read_bytes()
        except OSError:
            raise CheckpointUnavailable(f"checkpoint {digest.hex()} is not in {self.root}") from None

    def load(self, digest: bytes) -> dict[str, torch.Tensor]:
        """The verified checkpoint with ``digest``."""
        return decode_checkpoint(self.fetch(digest), digest)

    def size(self, digest: bytes) -> int:
        return self.path(digest).stat().st_size
