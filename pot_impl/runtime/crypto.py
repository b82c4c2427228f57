"""Ed25519 keys and signatures with PyNaCl (libsodium).

PyNaCl was chosen over ``cryptography`` because it measured about twice as
fast here (ANCHORS.md; ``benchmarks.bench_cluster`` re-measures it). Key
objects are built once and cached: constructing a ``VerifyKey`` from bytes on
every message would cost as much as the check itself.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from nacl.exceptions import BadSignatureError, CryptoError
from nacl.signing import SigningKey, VerifyKey

from pot_impl.auth import CLIENT_PREFIX, REPLICA_PREFIX, Principal

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


def client_id(public: bytes) -> str:
    """A client's id is its public key in hex: clients need no registration to be verifiable."""
    return public.hex()


class Ed25519Signer:
    """Signs as one principal (``auth.Signer``)."""

    def __init__(self, principal: Principal, pair: KeyPair) -> None:
        self._principal = principal
        self._pair = pair

    @property
    def principal(self) -> Principal:
        return self._principal

    def sign(self, payload: bytes) -> bytes:
        return self._pair.sign(payload)


class Ed25519Verifier:
    """Checks signatures of replicas (keys from the config) and clients (key = id), ``auth.Verifier``.

    The runtime checks every incoming signature once, off the event loop, and
    records the good ones with ``remember``; when the core later asks
    ``verify`` about the same (principal, payload, signature) the answer is a
    dictionary hit. Anything not pre-checked (e.g. signatures nested in a
    view-change) is checked on the spot. ``check`` is safe to call from
    worker threads; ``remember`` and ``verify`` belong to the event loop thread.
    The cache holds the payloads, so it is bounded in bytes as well as entries.
    """

    def __init__(
        self, replica_keys: Sequence[bytes], cache_entries: int = 100_000, cache_bytes: int = 64 << 20
    ) -> None:
        self._replica_keys = tuple(replica_keys)
        self._keys = PublicKeyCache()
        self._verified: OrderedDict[tuple[Principal, bytes, bytes], None] = OrderedDict()
        self._cache_entries = cache_entries
        self._cache_bytes = cache_bytes
        self._cached_bytes = 0
        self.checks = 0  # real Ed25519 verifications on the loop thread
        self.cache_hits = 0

    def public_key(self, principal: Principal) -> bytes | None:
        kind, _, name = principal.partition(":")
        if kind + ":" == REPLICA_PREFIX:
            if name.isdigit() and int(name) < len(self._replica_keys):
                return self._replica_keys[int(name)]
            return None
        if kind + ":" == CLIENT_PREFIX and len(name) == 2 * PUBLIC_KEY_BYTES:
            try:
                return bytes.fromhex(name)
            except ValueError:
                return None
        return None

    def check(self, principal: Principal, payload: bytes, signature: bytes) -> bool:
        """A real signature check, without touching the cache."""
        public = self.public_key(principal)
        return public is not None and self._keys.verify(public, payload, signature)

    def remember(self, principal: Principal, payload: bytes, signature: bytes) -> None:
        """Record a signature that ``check`` accepted."""
        key = (principal, signature, payload)
        if key in self._verified:
            return
        self._verified[key] = None
        self._cached_bytes += len(payload)
        while len(self._verified) > self._cache_entries or self._cached_bytes > self._cache_bytes:
            (_, _, evicted), _ = self._verified.popitem(last=False)
            self._cached_bytes -= len(evicted)

    def verify(self, principal: Principal, payload: bytes, signature: bytes) -> bool:
        if (principal, signature, payload) in self._verified:
            self.cache_hits += 1
            return True
        self.checks += 1
        if self.check(principal, payload, signature):
            self.remember(principal, payload, signature)
            return True
        return False
