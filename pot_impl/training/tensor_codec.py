"""Canonical bytes of named tensors: one format that is hashed, stored and sent as is.

The stream is: the length-prefixed domain, the tensor count, then for each
tensor in name order a length-prefixed header (name, dtype, shape) and its
length-prefixed raw little-endian bytes. The digest of a set of tensors is
SHA-256 of exactly this stream, so

- hashing reads every tensor's storage in place through a zero-copy uint8
  view (no serialisation copy): this keeps proof generation cheap;
- a stored or served file is verified by hashing its bytes, before parsing;
- writing a checkpoint and computing its digest are one pass over memory.
"""

from __future__ import annotations

import hashlib
import math
import struct
import sys
from collections.abc import Iterator, Mapping
from typing import BinaryIO

import numpy as np
import torch

MAX_TENSORS = 1 << 16
MAX_HEADER = 1 << 12

DTYPES: Mapping[str, torch.dtype] = {
    str(dtype): dtype
    for dtype in (
        torch.bool,
        torch.uint8,
        torch.int8,
        torch.int16,
        torch.int32,
        torch.int64,
        torch.float16,
        torch.bfloat16,
        torch.float32,
        torch.float64,
    )
}

if sys.byteorder != "little":  # pragma: no cover - every supported platform is little-endian
    raise ImportError("canonical tensor bytes assume a little-endian host")


class TensorCodecError(ValueError):
    """Bytes that are not a canonical tensor stream of the expected domain."""


def raw_bytes(tensor: torch.Tensor) -> memoryview:
    """The tensor's raw bytes; copies only when the tensor is off-CPU or not contiguous."""
    flat = tensor.detach()
    if flat.device.type != "cpu":
        flat = flat.cpu()
    flat = flat.contiguous().reshape(-1)
    if flat.numel() == 0:
        return memoryview(b"")
    return flat.view(torch.uint8).numpy().data


def stream_chunks(tensors: Mapping[str, torch.Tensor], domain: bytes) -> Iterator[bytes | memoryview]:
    """The canonical stream, chunk by chunk (tensor payloads are views, not copies)."""
    yield struct.pack(">I", len(domain)) + domain + struct.pack(">I", len(tensors))
    for name in sorted(tensors):
        tensor = tensors[name]
        if str(tensor.dtype) not in DTYPES:
            raise TensorCodecError(f"tensor {name!r} has unsupported dtype {tensor.dtype}")
        header = f"{name}\x00{tensor.dtype!s}\x00{','.join(map(str, tensor.shape))}".encode()
        payload = raw_bytes(tensor)
        yield struct.pack(">I", len(header)) + header + struct.pack(">Q", payload.nbytes)
        yield payload


class StreamBuffer:
    """A preallocated canonical stream for one fixed tensor layout.

    ``fill`` copies every tensor's bytes into its slot (one memcpy per tensor,
    or one device-to-host copy on a GPU); the buffer then *is* the canonical
    bytes, ready to be hashed and written with two calls that release the GIL.
    The numpy views of the slots are made once, so a fill costs little more
    than the memcpys (about half the time of going through ``raw_bytes``).
    """

    def __init__(self, tensors: Mapping[str, torch.Tensor], domain: bytes) -> None:
        self.layout = {name: (tensor.dtype, tuple(tensor.shape)) for name, tensor in tensors.items()}
        empty = {name: torch.empty(shape, dtype=dtype) for name, (dtype, shape) in self.layout.items()}
        pieces = list(stream_chunks(empty, domain))
        self.bytes = torch.empty(sum(len(piece) for piece in pieces), dtype=torch.uint8)
        self.slots: dict[str, torch.Tensor] = {}
        view = self.bytes.numpy()
        offset = 0
        names = sorted(self.layout)
        for index, piece in enumerate(pieces):
            length = len(piece)
            if index == 0 or index % 2:  # the prelude and the headers are fixed for the layout
                view[offset : offset + length] = np.frombuffer(piece, dtype=np.uint8)
            else:
                self.slots[names[index // 2 - 1]] = self.bytes[offset : offset + length]
            offset += length
        self._targets = [(name, slot, slot.numpy()) for name, slot in self.slots.items() if slot.numel()]

    def fits(self, tensors: Mapping[str, torch.Tensor]) -> bool:
        return tensors.keys() == self.layout.keys() and all(
            (t.dtype, tuple(t.shape)) == self.layout[name] for name, t in tensors.items()
        )

    def fill(self, tensors: Mapping[str, torch.Tensor]) -> memoryview:
        """Copy ``tensors`` (same layout) into the buffer and return the canonical bytes."""
        for name, slot, target in self._targets:
            source = tensors[name].detach().reshape(-1).view(torch.uint8)
            if source.device.type == "cpu":
                # numpy's copy is a plain memcpy; torch's would wake its intra-op thread pool.
                np.copyto(target, source.numpy(), casting="no")
            else:
                slot.copy_(source)
        return self.bytes.numpy().data


def digest_named_tensors(tensors: Mapping[str, torch.Tensor], domain: bytes) -> bytes:
    """SHA-256 of the canonical stream."""
    hasher = hashlib.sha256()
    for chunk in stream_chunks(tensors, domain):
        hasher.update(chunk)
    return hasher.digest()


def write_named_tensors(tensors: Mapping[str, torch.Tensor], domain: bytes, out: BinaryIO) -> bytes:
    """Write the canonical stream to ``out`` and return its digest, in one pass."""
    hasher = hashlib.sha256()
    for chunk in stream_chunks(tensors, domain):
        hasher.update(chunk)
        out.write(chunk)
    return hasher.digest()


def encode_named_tensors(tensors: Mapping[str, torch.Tensor], domain: bytes) -> bytes:
    return b"".join(stream_chunks(tensors, domain))


def decode_named_tensors(data: bytes, domain: bytes) -> dict[str, torch.Tensor]:
    """Parse a canonical stream defensively (bounded sizes, known dtypes, canonical order)."""
    reader = _Reader(data)
    if reader.take(reader.u32()) != domain:
        raise TensorCodecError("stream has the wrong domain")
    count = reader.u32()
    if count > MAX_TENSORS:
        raise TensorCodecError("too many tensors")
    tensors: dict[str, torch.Tensor] = {}
    previous = ""
    for _ in range(count):
        header_length = reader.u32()
        if header_length > MAX_HEADER:
            raise TensorCodecError("tensor header too long")
        name, dtype, shape = _parse_header(reader.take(header_length))
        if tensors and name <= previous:
            raise TensorCodecError("tensors are not in canonical (sorted, unique) order")
        previous = name
        nbytes = reader.u64()
        expected = math.prod(shape) * torch.empty(0, dtype=dtype).element_size()
        if nbytes != expected:
            raise TensorCodecError(f"tensor {name!r} has {nbytes} bytes, its shape needs {expected}")
        payload = reader.take(nbytes)
        tensor = torch.empty(shape, dtype=dtype)
        if nbytes:
            tensor.reshape(-1).view(torch.uint8).numpy()[:] = np.frombuffer(payload, dtype=np.uint8)
        tensors[name] = tensor
    if reader.offset != len(data):
        raise TensorCodecError("trailing bytes after the last tensor")
    return tensors


def _parse_header(header: memoryview) -> tuple[str, torch.dtype, tuple[int, ...]]:
    try:
        name, dtype_name, shape_text = bytes(header).decode().split("\x00")
        shape = tuple(int(size) for size in shape_text.split(",")) if shape_text else ()
    except ValueError:
        raise TensorCodecError("malformed tensor header") from None
    if dtype_name not in DTYPES or any(size < 0 for size in shape):
        raise TensorCodecError(f"tensor {name!r} has an unsupported dtype or shape")
    return name, DTYPES[dtype_name], shape


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data = memoryview(data)
        self.offset = 0

    def take(self, count: int) -> memoryview:
        if self.offset + count > len(self.data):
            raise TensorCodecError("stream is truncated")
        chunk = self.data[self.offset : self.offset + count]
        self.offset += count
        return chunk

    def u32(self) -> int:
        return int(struct.unpack(">I", self.take(4))[0])

    def u64(self) -> int:
        return int(struct.unpack(">Q", self.take(8))[0])
