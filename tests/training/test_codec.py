"""Canonical tensor bytes: one encoding hashed, stored and parsed; malformed bytes are refused."""

from __future__ import annotations

import hashlib
import struct
from pathlib import Path

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from pot_impl.training.checkpoint import CheckpointStore
from pot_impl.training.task import TrainingOrder
from pot_impl.training.tensor_codec import (
    DTYPES,
    StreamBuffer,
    TensorCodecError,
    decode_named_tensors,
    digest_named_tensors,
    encode_named_tensors,
)
from pot_impl.training.trainer import TrainingRun, train
from tests.training.conftest import ENV, prepare

DOMAIN = b"test-domain"


@st.composite
def named_tensors(draw: st.DrawFn) -> dict[str, torch.Tensor]:
    names = draw(st.lists(st.text("abcxyz/._0123", min_size=1, max_size=8), unique=True, max_size=6))
    tensors = {}
    for name in names:
        dtype = DTYPES[draw(st.sampled_from(sorted(DTYPES)))]
        shape = tuple(draw(st.lists(st.integers(0, 4), max_size=3)))
        tensor = torch.empty(shape, dtype=dtype)
        seed = draw(st.integers(0, 2**31))
        payload = torch.randint(
            0,
            256,
            (tensor.numel() * tensor.element_size(),),
            dtype=torch.uint8,
            generator=torch.Generator().manual_seed(seed),
        )
        tensor.reshape(-1).view(torch.uint8).copy_(payload)
        tensors[name] = tensor
    return tensors


def same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(
        a[k].dtype == b[k].dtype
        and a[k].shape == b[k].shape
        and bytes(a[k].reshape(-1).view(torch.uint8).numpy())
        == bytes(b[k].reshape(-1).view(torch.uint8).numpy())
        for k in a
    )


@settings(max_examples=80, deadline=None)
@given(tensors=named_tensors())
def test_encoding_round_trips_and_its_hash_is_the_digest(tensors: dict[str, torch.Tensor]) -> None:
    data = encode_named_tensors(tensors, DOMAIN)
    assert hashlib.sha256(data).digest() == digest_named_tensors(tensors, DOMAIN)
    assert same(decode_named_tensors(data, DOMAIN), tensors)
    if tensors:
        buffer = StreamBuffer(tensors, DOMAIN)
        assert bytes(buffer.fill(tensors)) == data


@settings(max_examples=80, deadline=None)
@given(tensors=named_tensors(), data=st.data())
def test_corrupted_streams_never_decode_to_something_else_silently(
    tensors: dict[str, torch.Tensor], data: st.DataObject
) -> None:
    encoded = encode_named_tensors(tensors, DOMAIN)
    cut = data.draw(st.integers(0, len(encoded) - 1))
    with pytest.raises(TensorCodecError):
        decode_named_tensors(encoded[:cut], DOMAIN)
    with pytest.raises(TensorCodecError):
        decode_named_tensors(encoded + b"\x00", DOMAIN)
    with pytest.raises(TensorCodecError):
        decode_named_tensors(encoded, b"other-domain")


def test_non_canonical_order_and_bad_headers_are_refused() -> None:
    def stream(*entries: tuple[bytes, bytes]) -> bytes:
        out = struct.pack(">I", len(DOMAIN)) + DOMAIN + struct.pack(">I", len(entries))
        for header, payload in entries:
            out += struct.pack(">I", len(header)) + header + struct.pack(">Q", len(payload)) + payload
        return out

    one = (b"b\x00torch.uint8\x001", b"\x01")
    assert decode_named_tensors(stream(one), DOMAIN)["b"].tolist() == [1]
    for bad in (
        stream(one, (b"a\x00torch.uint8\x001", b"\x02")),  # unsorted
        stream(one, one),  # duplicate
        stream((b"a\x00torch.complex64\x001", b"\x00" * 8)),  # unsupported dtype
        stream((b"a\x00torch.float32\x002", b"\x00" * 4)),  # wrong byte count
        stream((b"a\x00torch.float32\x00-1", b"")),  # negative size
        stream((b"a-no-separators", b"")),
    ):
        with pytest.raises(TensorCodecError):
            decode_named_tensors(bad, DOMAIN)


def test_background_and_inline_writes_commit_the_same_run(
    mlp_order: TrainingOrder, honest_run: TrainingRun, tmp_path: Path
) -> None:
    inline = train(mlp_order, prepare(mlp_order), CheckpointStore(tmp_path), ENV, background_writes=False)
    assert inline.claim == honest_run.claim
    for leaf in inline.leaves:
        assert (
            hashlib.sha256(inline.server.store.fetch(leaf.checkpoint_digest)).digest()
            == leaf.checkpoint_digest
        )
