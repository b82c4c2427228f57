"""Ed25519 keys and signatures with PyNaCl (libsodium).

PyNaCl was chosen over ``cryptography`` because it measured about twice as
fast here (ANCHORS.md; ``benchmarks.bench_cluster`` re-measures it). Key
objects are built once and cached: constructing a ``VerifyKey`` from bytes on
every message would cost as much as the check itself.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from nacl.exceptions import BadSignatureError, CryptoError
from nacl.signing import SigningKey, VerifyKey

SEED_BYTES = 32
PUBLIC_KEY_BYTES = 32
SIGNATURE_BYTES = 64


class KeyFileError(ValueError):
    """A key file is missing or does not hold a valid key; the message names the file."""


@dataclass(frozen=True)
class KeyPair:
    """An Ed25519 key pair; ``public`` is the raw 32-byte verification key."""

    signing_key: SigningKey
    public: bytes

    @classmethod
    def generate(cls) -> KeyPair:
        return cls.from_seed(os.urandom(SEED_BYTES))

    @classmethod
    def from_seed(cls, seed: bytes) -> KeyPair:
        if len(seed) != SEED_BYTES:
            raise ValueError(f"an Ed25519 seed is {SEED_BYTES} bytes, got {len(seed)}")
        key = SigningKey(seed)
        return cls(key, bytes(key.verify_key))

    @property
    def seed(self) -> bytes:
        return bytes(self.signing_key)

    def sign(self, payload: bytes) -> bytes:
        """The 64-byte detached signature of ``payload``."""
        return bytes(self.signing_key.sign(payload).signature)


class PublicKeyCache:
    """Raw public keys to ready ``VerifyKey`` objects, so each key is parsed once."""

    def __init__(self) -> None:
        self._keys: dict[bytes, VerifyKey | None] = {}

    def verify(self, public: bytes, payload: bytes, signature: bytes) -> bool:
        """True iff ``signature`` is a valid Ed25519 signature of ``payload`` under ``public``."""
        if len(signature) != SIGNATURE_BYTES:
            return False
        key = self._key(public)
        if key is None:
            return False
        try:
            key.verify(payload, signature)
        except (BadSignatureError, CryptoError):
            return False
        return True

    def _key(self, public: bytes) -> VerifyKey | None:
        if public not in self._keys:
            try:
                self._keys[public] = VerifyKey(public) if len(public) == PUBLIC_KEY_BYTES else None
            except (CryptoError, TypeError, ValueError):
                self._keys[public] = None
        return self._keys[public]


def public_key_from_hex(text: str) -> bytes:
    """Parse a hex public key; raises ``ValueError`` saying what is wrong."""
    try:
        raw = bytes.fromhex(text.strip())
    except ValueError:
        raise ValueError("is not hexadecimal") from None
    if len(raw) != PUBLIC_KEY_BYTES:
        raise ValueError(f"must be {2 * PUBLIC_KEY_BYTES} hex digits, got {2 * len(raw)}")
    return raw


def write_key_pair(path: Path, pair: KeyPair) -> Path:
    """Write the secret seed to ``path`` (mode 0600) and the public key to ``path.pub``.

    Refuses to overwrite an existing secret, so a typo cannot destroy an identity.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as secret:
        secret.write(pair.seed.hex() + "\n")
    public_path = path.with_name(path.name + ".pub")
    public_path.write_text(pair.public.hex() + "\n")
    return public_path


def read_key_pair(path: Path) -> KeyPair:
    """Load a secret key written by ``write_key_pair``."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise KeyFileError(f"cannot read key file {path}: {exc.strerror}") from None
    try:
        return KeyPair.from_seed(bytes.fromhex(text.strip()))
    except ValueError:
        raise KeyFileError(
            f"key file {path} must hold a {SEED_BYTES}-byte Ed25519 seed as {2 * SEED_BYTES} hex digits"
        ) from None
