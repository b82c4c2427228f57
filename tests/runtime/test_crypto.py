"""Ed25519 keys: signatures check, tampering fails, key files round-trip and refuse garbage."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pot_impl.auth import client_principal, replica_principal, sign_message, verify_message
from pot_impl.pbft.messages import Prepare, Request
from pot_impl.runtime.crypto import (
    Ed25519Signer,
    Ed25519Verifier,
    KeyFileError,
    KeyPair,
    PublicKeyCache,
    client_id,
    public_key_from_hex,
    read_key_pair,
    write_key_pair,
)

PAIR = KeyPair.from_seed(bytes(range(32)))
OTHER = KeyPair.from_seed(bytes(32))


@given(payload=st.binary(max_size=512), flip=st.integers(min_value=0, max_value=511))
def test_signature_verifies_and_any_bit_flip_is_rejected(payload: bytes, flip: int) -> None:
    cache = PublicKeyCache()
    signature = PAIR.sign(payload)
    assert cache.verify(PAIR.public, payload, signature)
    assert not cache.verify(OTHER.public, payload, signature)
    bad = bytearray(signature)
    bad[flip % len(bad)] ^= 1 << (flip % 8)
    assert not cache.verify(PAIR.public, payload, bytes(bad))
    if payload:
        changed = bytearray(payload)
        changed[flip % len(changed)] ^= 1
        assert not cache.verify(PAIR.public, bytes(changed), signature)


def test_malformed_keys_and_signatures_are_rejected_not_raised() -> None:
    cache = PublicKeyCache()
    assert not cache.verify(b"short", b"m", PAIR.sign(b"m"))
    assert not cache.verify(PAIR.public, b"m", b"short")


def test_key_file_round_trip_and_no_overwrite(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "node0.key"
    pair = KeyPair.generate()
    public_path = write_key_pair(path, pair)
    assert read_key_pair(path).public == pair.public
    assert public_key_from_hex(public_path.read_text()) == pair.public
    assert path.stat().st_mode & 0o077 == 0
    with pytest.raises(FileExistsError):
        write_key_pair(path, KeyPair.generate())


def test_bad_key_file_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "bad.key"
    path.write_text("zz\n")
    with pytest.raises(KeyFileError, match=r"bad\.key"):
        read_key_pair(path)
    with pytest.raises(KeyFileError, match=r"missing\.key"):
        read_key_pair(tmp_path / "missing.key")


def test_ed25519_plugs_into_the_core_auth_interface() -> None:
    replica_pairs = [KeyPair.from_seed(bytes([i + 1]) * 32) for i in range(4)]
    client = KeyPair.from_seed(bytes([9]) * 32)
    verifier = Ed25519Verifier([p.public for p in replica_pairs])
    request = Request(client=client_id(client.public), timestamp=1, operation=b"op")
    signed = sign_message(Ed25519Signer(client_principal(request.client), client), request)
    assert verify_message(verifier, signed)
    prepare = Prepare(view=0, seq=1, digest=b"d" * 32, replica=2)
    signed_prepare = sign_message(Ed25519Signer(replica_principal(2), replica_pairs[2]), prepare)
    assert verify_message(verifier, signed_prepare)
    # the same signature claimed by another replica, or over other content, fails
    assert not verify_message(verifier, dataclasses.replace(signed_prepare, replica=1))
    assert not verify_message(verifier, dataclasses.replace(signed_prepare, seq=2))
    # a replica key signing as replica 3 is not replica 3
    forged = sign_message(Ed25519Signer(replica_principal(3), replica_pairs[2]), replace_sender(prepare, 3))
    assert not verify_message(verifier, forged)
    assert verifier.public_key(replica_principal(4)) is None
    assert verifier.public_key(client_principal("not-hex")) is None


def test_remembered_signatures_skip_the_real_check() -> None:
    pair = KeyPair.from_seed(bytes([1]) * 32)
    verifier = Ed25519Verifier([pair.public])
    signature = pair.sign(b"payload")
    assert verifier.check(replica_principal(0), b"payload", signature)
    verifier.remember(replica_principal(0), b"payload", signature)
    assert verifier.verify(replica_principal(0), b"payload", signature)
    assert (verifier.checks, verifier.cache_hits) == (0, 1)
    assert not verifier.verify(replica_principal(0), b"other", signature)
    assert verifier.checks == 1


def replace_sender(prepare: Prepare, replica: int) -> Prepare:
    return dataclasses.replace(prepare, replica=replica)
