"""Canonical encoding, strict decoding, digests and signatures."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from pathlib import Path

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pot_impl import codec
from pot_impl.auth import HmacKeyring, replica_principal, sign_message, verify_message
from pot_impl.ledger.transactions import Validate
from pot_impl.pbft.messages import (
    Checkpoint,
    Commit,
    Message,
    NewView,
    Prepare,
    PreparedCertificate,
    PrePrepare,
    Reply,
    Request,
    StableSnapshot,
    StateRequest,
    StateResponse,
    ViewChange,
)

ints = st.integers(min_value=0, max_value=2**40)
small = st.integers(min_value=0, max_value=50)
blobs = st.binary(max_size=40)
names = st.text(max_size=12)
requests = st.builds(Request, names, ints, blobs, blobs)
pre_prepares = st.builds(
    PrePrepare, small, small, blobs, st.tuples() | st.lists(requests, max_size=3).map(tuple), small, blobs
)
prepares = st.builds(Prepare, small, small, blobs, small, blobs)
checkpoints = st.builds(Checkpoint, small, blobs, small, blobs)
certificates = st.builds(PreparedCertificate, pre_prepares, st.lists(prepares, max_size=3).map(tuple))
view_changes = st.builds(
    ViewChange,
    small,
    small,
    st.lists(checkpoints, max_size=3).map(tuple),
    st.lists(certificates, max_size=2).map(tuple),
    small,
    blobs,
)
messages: st.SearchStrategy[Message] = st.one_of(
    requests,
    st.builds(Reply, small, ints, names, small, blobs, blobs),
    pre_prepares,
    prepares,
    st.builds(Commit, small, small, blobs, small, blobs),
    checkpoints,
    view_changes,
    st.builds(
        NewView,
        small,
        st.lists(view_changes, max_size=2).map(tuple),
        st.lists(pre_prepares, max_size=2).map(tuple),
        small,
        blobs,
    ),
    st.builds(StateRequest, small, small, blobs),
    st.builds(
        StateResponse,
        st.builds(StableSnapshot, small, blobs, st.lists(checkpoints, max_size=2).map(tuple)),
        small,
        blobs,
    ),
)


@given(messages)
def test_every_message_round_trips_and_encodes_canonically(message: Message) -> None:
    data = codec.encode(message)
    assert codec.decode_message(data) == message
    assert codec.encode(codec.decode_message(data)) == data


@given(st.binary(max_size=200))
def test_arbitrary_bytes_decode_or_raise_decode_error_only(data: bytes) -> None:
    try:
        message = codec.decode_message(data)
    except codec.DecodeError:
        return
    assert codec.encode(message) == data


@settings(max_examples=200)
@given(messages, st.data())
def test_corrupted_frames_raise_decode_error_or_decode_to_their_own_canonical_form(
    message: Message, data: st.DataObject
) -> None:
    frame = bytearray(codec.encode(message))
    action = data.draw(st.sampled_from(["flip", "truncate", "extend"]))
    if action == "flip":
        position = data.draw(st.integers(0, len(frame) - 1))
        frame[position] ^= data.draw(st.integers(1, 255))
    elif action == "truncate":
        del frame[data.draw(st.integers(0, len(frame) - 1)) :]
    else:
        frame += data.draw(st.binary(min_size=1, max_size=4))
    try:
        decoded = codec.decode_message(bytes(frame))
    except codec.DecodeError:
        return
    assert codec.encode(decoded) == bytes(frame)


def test_non_canonical_and_ill_typed_encodings_are_rejected() -> None:
    canonical = codec.encode(Prepare(0, 1, b"", 0, b""))
    assert canonical == bytes([0x96, 0x04, 0x00, 0x01, 0xC4, 0x00, 0x00, 0xC4, 0x00])
    wide_int = bytes([0x96, 0x04, 0x00, 0xCC, 0x01, 0xC4, 0x00, 0x00, 0xC4, 0x00])
    wide_array = bytes([0xDC, 0x00, 0x06]) + canonical[1:]
    bad = [
        wide_int,
        wide_array,
        msgpack.packb([4, True, 1, b"", 0, b""]),  # bool is not an int here
        msgpack.packb([4, 0, 1.0, b"", 0, b""]),  # floats never appear
        msgpack.packb([4, 0, 1, "text", 0, b""]),  # str where bytes belong
        msgpack.packb([4, 0, 1, b"", 0]),  # a field missing
        msgpack.packb([4, 0, 1, b"", 0, b"", 7]),  # one too many
        msgpack.packb({"tag": 4}),  # maps never appear
        msgpack.packb([99, 0]),  # unknown tag
        msgpack.packb([6, 0, b"", 0, b""]) + b"\x00",  # trailing bytes
    ]
    for frame in bad:
        with pytest.raises(codec.DecodeError):
            codec.decode_message(frame)


def test_nested_objects_must_have_the_declared_type() -> None:
    checkpoint = Checkpoint(2, b"d", 1, b"")
    smuggled = msgpack.packb([8, 1, 0, [codec.encode(checkpoint)], [], 0, b""])
    with pytest.raises(codec.DecodeError):
        codec.decode_message(smuggled)
    wrong_nested = msgpack.packb([8, 1, 0, [[4, 0, 1, b"", 0, b""]], [], 0, b""])  # a Prepare inside C
    with pytest.raises(codec.DecodeError):
        codec.decode_message(wrong_nested)
    ledger_tx = codec.encode(Validate(0, "t", 0, 1, (1,), b"s"))
    with pytest.raises(codec.DecodeError):
        codec.decode_message(ledger_tx)  # a valid wire object, but not a network message


def test_oversized_frames_are_rejected_before_parsing() -> None:
    with pytest.raises(codec.DecodeError):
        codec.decode_message(b"\x90" * (codec.MAX_FRAME_BYTES + 1))


def test_encode_refuses_values_outside_the_schema() -> None:
    with pytest.raises(codec.EncodeError):
        codec.encode(Prepare(0, True, b"", 0, b""))
    with pytest.raises(codec.EncodeError):
        codec.encode(Prepare(0, 1, "not bytes", 0, b""))  # type: ignore[arg-type]
    with pytest.raises(codec.EncodeError):
        codec.encode(Prepare(0, 2**64, b"", 0, b""))  # outside the integer range
    with pytest.raises(codec.EncodeError):
        codec.encode(object())


def test_digests_are_identical_across_processes_with_different_hash_seeds() -> None:
    """Python's salted ``hash()`` must not leak into anything that crosses processes."""
    program = (
        "from pot_impl import codec\n"
        "from pot_impl.pbft.messages import Request\n"
        "batch = tuple(Request(c, t, b'op') for c, t in [('zed', 2), ('amy', 1), ('bob', 3)])\n"
        "print(codec.batch_digest(batch).hex(), codec.digest(batch[0]).hex())\n"
    )
    outputs = set()
    for seed in ("1", "2", "12345"):
        env = dict(os.environ, PYTHONHASHSEED=seed)
        root = Path(__file__).resolve().parents[2]
        result = subprocess.run(
            [sys.executable, "-c", program], env=env, cwd=root, capture_output=True, text=True, check=True
        )
        outputs.add(result.stdout)
    assert len(outputs) == 1
    batch = tuple(Request(c, t, b"op") for c, t in [("zed", 2), ("amy", 1), ("bob", 3)])
    assert outputs.pop().split()[0] == codec.batch_digest(batch).hex()


def test_batch_digest_depends_on_order_and_content() -> None:
    a, b = Request("a", 1, b"x"), Request("b", 1, b"y")
    assert codec.batch_digest((a, b)) != codec.batch_digest((b, a))
    assert codec.batch_digest((a,)) != codec.batch_digest((dataclasses.replace(a, operation=b"z"),))
    assert codec.batch_digest(()) != codec.batch_digest((a,))


def test_signatures_bind_sender_and_content() -> None:
    keys = HmacKeyring(b"k")
    verifier = keys.verifier()
    message = sign_message(keys.signer(replica_principal(1)), Prepare(0, 1, b"d", 1))
    assert verify_message(verifier, message)
    assert not verify_message(verifier, dataclasses.replace(message, digest=b"e"))
    assert not verify_message(verifier, dataclasses.replace(message, replica=2))
    other_keys = HmacKeyring(b"other")
    assert not verify_message(other_keys.verifier(), message)
    with pytest.raises(ValueError):
        sign_message(keys.signer(replica_principal(2)), Prepare(0, 1, b"d", 1))
