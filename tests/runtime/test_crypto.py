"""Ed25519 keys: signatures check, tampering fails, key files round-trip and refuse garbage."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pot_impl.runtime.crypto import (
    KeyFileError,
    KeyPair,
    PublicKeyCache,
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
