"""Message authentication behind two small interfaces, so the core never touches key material.

Principals are strings: ``"replica:<i>"`` for replica ``i`` and ``"client:<id>"``
for client ``id`` (see ``replica_principal`` / ``client_principal``). A signer
signs as exactly one principal; a verifier knows every principal's key. The
runtime plugs in Ed25519; ``HmacKeyring`` is a deterministic stand-in for the
simulator and tests (every party derives keys from one shared secret, so it
authenticates but is not non-repudiable: fine inside one test process, never
for production).

``sign_message`` / ``verify_message`` fix what a signature covers
(``codec.signing_payload``) and who must have made it (``sender_of``).
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
from typing import Protocol, TypeVar

from pot_impl import codec
from pot_impl.pbft.messages import Message, Request

Principal = str
REPLICA_PREFIX = "replica:"
CLIENT_PREFIX = "client:"

M = TypeVar("M", bound=Message)


def replica_principal(replica: int) -> Principal:
    """The principal of replica ``replica``."""
    return f"{REPLICA_PREFIX}{replica}"


def client_principal(client: str) -> Principal:
    """The principal of client ``client``."""
    return f"{CLIENT_PREFIX}{client}"


def sender_of(message: Message) -> Principal:
    """The principal that must have signed ``message``."""
    if isinstance(message, Request):
        return client_principal(message.client)
    return replica_principal(message.replica)


class Signer(Protocol):
    """Signs payloads as one principal."""

    @property
    def principal(self) -> Principal:
        """Who this signer signs as."""
        ...

    def sign(self, payload: bytes) -> bytes:
        """A signature by ``principal`` over ``payload``."""
        ...


class Verifier(Protocol):
    """Checks signatures of any known principal."""

    def verify(self, principal: Principal, payload: bytes, signature: bytes) -> bool:
        """True iff ``signature`` is ``principal``'s signature over ``payload`` (False if unknown)."""
        ...


def sign_message(signer: Signer, message: M) -> M:
    """``message`` with its signature filled in by ``signer`` (which must be the message's sender)."""
    if sender_of(message) != signer.principal:
        raise ValueError(f"{signer.principal} cannot sign a message from {sender_of(message)}")
    return dataclasses.replace(message, signature=signer.sign(codec.signing_payload(message)))


def verify_message(verifier: Verifier, message: Message) -> bool:
    """True iff ``message`` carries a valid signature of its own sender."""
    return verifier.verify(sender_of(message), codec.signing_payload(message), message.signature)


class HmacKeyring:
    """Deterministic test keys: principal p's key is HMAC-SHA256(secret, p)."""

    def __init__(self, secret: bytes) -> None:
        self._secret = secret

    def key_of(self, principal: Principal) -> bytes:
        return hmac.new(self._secret, principal.encode(), hashlib.sha256).digest()

    def signer(self, principal: Principal) -> HmacSigner:
        """A signer for ``principal`` (tests may create one for any principal, Byzantine ones included)."""
        return HmacSigner(principal, self.key_of(principal))

    def verifier(self) -> HmacVerifier:
        return HmacVerifier(self)

    def sign_as_sender(self, message: M) -> M:
        """``message`` signed by whoever it names as its sender (to forge Byzantine behaviour in tests)."""
        return sign_message(self.signer(sender_of(message)), message)


class HmacSigner:
    """Signs as one principal with its HMAC key."""

    def __init__(self, principal: Principal, key: bytes) -> None:
        self._principal = principal
        self._key = key

    @property
    def principal(self) -> Principal:
        return self._principal

    def sign(self, payload: bytes) -> bytes:
        return hmac.new(self._key, payload, hashlib.sha256).digest()


class HmacVerifier:
    """Checks HMAC signatures of any principal derived from the keyring's secret."""

    def __init__(self, keyring: HmacKeyring) -> None:
        self._keyring = keyring

    def verify(self, principal: Principal, payload: bytes, signature: bytes) -> bool:
        expected = hmac.new(self._keyring.key_of(principal), payload, hashlib.sha256).digest()
        return hmac.compare_digest(expected, signature)
