"""Canonical checkpoints (model, optimizer and RNG state) and the content-addressed store.

A checkpoint is a flat map of named tensors: ``model/<name>`` for every
parameter and buffer, ``optim/<param index>/<key>`` for optimizer state,
``rng/<device>`` for the random generator states and ``step``. Its bytes are
the canonical tensor stream (``tensor_codec``) and its identity is SHA-256 of
those bytes: the trainer writes and hashes a checkpoint in one pass straight
from tensor memory, and whoever receives one verifies it by hashing the
bytes before parsing them, so a served file can never stand in for another.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Protocol

import torch

from pot_impl.training.tensor_codec import (
    TensorCodecError,
    decode_named_tensors,
    digest_named_tensors,
    encode_named_tensors,
    write_named_tensors,
)

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
    """The canonical bytes, whose SHA-256 is the checkpoint digest."""
    return encode_named_tensors(checkpoint, CHECKPOINT_DOMAIN)


def decode_checkpoint(data: bytes, expected_digest: bytes | None = None) -> dict[str, torch.Tensor]:
    """Parse checkpoint bytes; with ``expected_digest``, first insist that they are that checkpoint."""
    if expected_digest is not None and hashlib.sha256(data).digest() != expected_digest:
        raise CheckpointError("checkpoint content does not match its digest")
    try:
        return decode_named_tensors(data, CHECKPOINT_DOMAIN)
    except TensorCodecError as exc:
        raise CheckpointError(f"malformed checkpoint: {exc}") from None


class CheckpointSource(Protocol):
    """Where a validator fetches checkpoints from (a trainer's store, a network peer)."""

    def fetch(self, digest: bytes) -> bytes:
        """The bytes of the checkpoint with ``digest``; raises CheckpointUnavailable."""
        ...


class CheckpointStore:
    """A directory of checkpoints named by digest; writes are atomic, reads are verified by the caller."""

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)

    def path(self, digest: bytes) -> Path:
        return self.root / f"{digest.hex()}.ckpt"

    def put(self, checkpoint: Checkpoint) -> bytes:
        """Write ``checkpoint`` and return its digest, hashing while writing (one pass, no copy)."""
        handle, temporary = tempfile.mkstemp(dir=self.root, suffix=".partial")
        try:
            with os.fdopen(handle, "wb") as out:
                digest = write_named_tensors(checkpoint, CHECKPOINT_DOMAIN, out)
            self._publish(Path(temporary), digest)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
        return digest

    def put_bytes(self, data: bytes | memoryview) -> bytes:
        """Store canonical checkpoint bytes as they are (hashing and writing release the GIL)."""
        digest = hashlib.sha256(data).digest()
        if self.path(digest).exists():
            return digest
        handle, temporary = tempfile.mkstemp(dir=self.root, suffix=".partial")
        try:
            with os.fdopen(handle, "wb") as out:
                out.write(data)
            self._publish(Path(temporary), digest)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
        return digest

    def _publish(self, temporary: Path, digest: bytes) -> None:
        """Move a complete file into place. A file already there has the same content (it is named by
        its digest and only ever appears whole), so the new one is dropped rather than renamed over
        it, which on ext4 would also force the replaced data out to disk (auto_da_alloc)."""
        if self.path(digest).exists():
            temporary.unlink()
        else:
            os.replace(temporary, self.path(digest))

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
