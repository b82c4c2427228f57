"""Content digests of named tensors, computed over their raw bytes without serialising.

The digest covers, for each tensor in name order, its name, dtype, shape and
raw little-endian bytes. The bytes are fed to SHA-256 straight from the
tensor's storage (a zero-copy uint8 view), so hashing a checkpoint costs one
pass over memory and no serialisation copy; this is what keeps proof
generation cheap (docs/training.md, "Overhead").
"""

from __future__ import annotations

import hashlib
import struct
import sys
from collections.abc import Mapping

import torch

DIGEST_SIZE = 32

if sys.byteorder != "little":  # pragma: no cover - every supported platform is little-endian
    raise ImportError("tensor digests assume a little-endian host")


def tensor_bytes_view(tensor: torch.Tensor) -> memoryview:
    """The tensor's raw bytes as a memoryview; copies only when the tensor is off-CPU or strided."""
    flat = tensor.detach()
    if flat.device.type != "cpu":
        flat = flat.cpu()
    flat = flat.contiguous().reshape(-1)
    if flat.numel() == 0:
        return memoryview(b"")
    return flat.view(torch.uint8).numpy().data


def digest_named_tensors(tensors: Mapping[str, torch.Tensor], domain: bytes) -> bytes:
    """SHA-256 over ``domain`` and every tensor's name, dtype, shape and raw bytes, in name order."""
    hasher = hashlib.sha256()
    hasher.update(struct.pack(">I", len(domain)) + domain)
    hasher.update(struct.pack(">I", len(tensors)))
    for name in sorted(tensors):
        tensor = tensors[name]
        header = f"{name}\x00{tensor.dtype!s}\x00{','.join(map(str, tensor.shape))}".encode()
        hasher.update(struct.pack(">I", len(header)) + header)
        payload = tensor_bytes_view(tensor)
        hasher.update(struct.pack(">Q", payload.nbytes))
        hasher.update(payload)
    return hasher.digest()
