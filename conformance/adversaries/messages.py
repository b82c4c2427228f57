"""Wrong messages: small-scope mutations of valid PBFT messages, in the manner of ByzzFuzz and Twins.

A Byzantine replica or client can send anything it can sign. The mutations
here start from a message that really exists (an honest replica sent it, or
the bridge built it for a Byzantine sender) and change one thing:

=====================  ===================================================  ==========
operator               what changes                                          signature
=====================  ===================================================  ==========
bad-signature          one bit of the signature                              invalid
forged-sender          the sender field names another replica                invalid
other-view             the view (or new view) is one higher                  re-signed*
other-seq              the sequence number is one higher                     re-signed*
duplicate-sender       a certificate's last vote is its first one again      re-signed*
missing-vote           a certificate loses its last vote                     re-signed*
bad-inner-signature    a certificate's first vote has a flipped signature    re-signed*
bad-client-signature   one batched request's client signature is flipped     re-signed*
                       (each position in turn; the batch digest follows)
=====================  ===================================================  ==========

(*) re-signed by the sender when the adversary holds its key (a Byzantine
sender), so the wrongness is inside a validly signed message; otherwise the
outer signature no longer matches and only the signature check is exercised.
An honest replica must treat an invalidly signed message as nothing (a
stutter of the spec), and a validly signed wrong one as at most what the
spec lets a Byzantine sender cause.

These mutants start from valid messages, whose claims are true, so a check they
skip rarely shows. ``short_quorums`` makes the certificates for claims that are
*not* certified (the bridge picks the claims, from the spec state): a Byzantine
sender shows every vote it can (honest ones really sent, its own), fewer than a
quorum, as

=====================  ===================================================
too-few-votes          at most quorum - 1 distinct votes
duplicate-votes        those, padded to a quorum by repeating the first
=====================  ===================================================

so that a replica that accepts one counts too low or counts a sender twice.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from pot_impl import codec
from pot_impl.pbft.messages import ReplicaMessage

V = TypeVar("V")
Resign = Callable[[Any], Any] | None
"""Signs a message as its own sender, where the adversary holds that key; ``None`` where not."""

CERTIFICATE_FIELDS = ("prepares", "commits", "checkpoint_proof", "view_changes", "proof")
"""Fields holding a tuple of signed votes whose senders must be distinct and enough."""


@dataclass(frozen=True)
class Mutant:
    """A wrong message and how it was made."""

    operator: str
    message: Any
    validly_signed: bool
    """Whether its own signature verifies (it was re-signed by a sender the adversary controls)."""


def _flip(signature: bytes) -> bytes:
    return bytes([signature[0] ^ 1]) + signature[1:] if signature else b"\x01"


def _with(message: Any, resign: Resign, **changes: Any) -> tuple[Any, bool]:
    changed = dataclasses.replace(message, **changes)
    if resign is None:
        return changed, False
    return resign(dataclasses.replace(changed, signature=b"")), True


def _certificate_mutants(value: Any) -> Iterator[tuple[str, Any]]:
    """Mutations of the certificates inside ``value`` (recursively), each returning a new ``value``."""
    if not dataclasses.is_dataclass(value) or isinstance(value, type):
        return
    for item in dataclasses.fields(value):
        inner = getattr(value, item.name)
        if isinstance(inner, tuple) and inner and item.name in CERTIFICATE_FIELDS:
            if len(inner) > 1:
                yield "duplicate-sender", dataclasses.replace(value, **{item.name: (*inner[:-1], inner[0])})
            yield "missing-vote", dataclasses.replace(value, **{item.name: inner[:-1]})
            if hasattr(inner[0], "signature"):
                bad = dataclasses.replace(inner[0], signature=_flip(inner[0].signature))
                yield "bad-inner-signature", dataclasses.replace(value, **{item.name: (bad, *inner[1:])})
        if isinstance(inner, tuple) and item.name == "batch":
            for position, request in enumerate(inner):
                bad = dataclasses.replace(request, signature=_flip(request.signature))
                batch = (*inner[:position], bad, *inner[position + 1 :])
                yield (
                    "bad-client-signature",
                    dataclasses.replace(value, batch=batch, digest=codec.batch_digest(batch)),
                )
        nested = inner if isinstance(inner, tuple) else (inner,)
        for position, part in enumerate(nested):
            for operator, changed in _certificate_mutants(part):
                replaced = (
                    (*inner[:position], changed, *inner[position + 1 :])
                    if isinstance(inner, tuple)
                    else changed
                )
                yield operator, dataclasses.replace(value, **{item.name: replaced})


def mutants(message: ReplicaMessage, replicas: int, resign: Resign) -> Iterator[Mutant]:
    """Every one-change mutation of ``message`` the table above lists."""
    if not hasattr(message, "signature"):
        return
    signature: bytes = message.signature
    yield Mutant("bad-signature", dataclasses.replace(message, signature=_flip(signature)), False)
    sender = getattr(message, "replica", None)
    if isinstance(sender, int):
        forged = dataclasses.replace(message, replica=(sender + 1) % replicas)
        yield Mutant("forged-sender", forged, False)
    for name, operator in (("view", "other-view"), ("new_view", "other-view"), ("seq", "other-seq")):
        value = getattr(message, name, None)
        if isinstance(value, int):
            yield Mutant(operator, *_with(message, resign, **{name: value + 1}))
    for operator, changed in _certificate_mutants(message):
        if resign is not None:
            yield Mutant(operator, resign(dataclasses.replace(changed, signature=b"")), True)
        else:
            yield Mutant(operator, changed, False)


def short_quorums(votes: Sequence[V], quorum: int) -> Iterator[tuple[str, tuple[V, ...]]]:
    """The certificates an adversary can show for a claim with fewer than ``quorum`` distinct
    ``votes`` (the module doc's second table); nothing if it has none."""
    shown = tuple(votes[: quorum - 1])
    if shown:
        yield "too-few-votes", shown
        yield "duplicate-votes", shown + shown[:1] * (quorum - len(shown))
