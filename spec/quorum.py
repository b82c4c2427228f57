"""Every threshold of the protocol, in one place.

The spec calls these with ints; ``pot prove`` (spec/prove.py) calls the very
same functions with z3 integer terms and proves, for all f >= 1 and all
n >= 3f + 1, the quorum facts the safety invariants rely on. So the
functions use only ``+``, ``-`` and multiplication by int literals, which
both ints and z3 terms support (no ``//``: z3 terms have none).

Quorums are ``n - f`` rather than the literal ``2f + 1`` of Castro and
Liskov: the two agree at n = 3f + 1, and ``n - f`` keeps the intersection
and availability facts true for every larger n too (``2f + 1`` out of
n = 3f + 2 would intersect in only f replicas).
"""

from __future__ import annotations

from typing import Protocol, TypeVar

Count = TypeVar("Count", bound="Arithmetic")


class Arithmetic(Protocol):
    """What a threshold function needs of its arguments: ints and z3 ``ArithRef`` both qualify."""

    def __add__(self: Count, other: Count | int, /) -> Count: ...

    def __sub__(self: Count, other: Count | int, /) -> Count: ...

    def __mul__(self: Count, other: int, /) -> Count: ...

    def __rmul__(self: Count, other: int, /) -> Count: ...


def quorum(n: Count, f: Count) -> Count:
    """Commit, checkpoint and view-change certificates (C&L section 4: 2f + 1 at n = 3f + 1)."""
    return n - f


def prepare_quorum(n: Count, f: Count) -> Count:
    """Matching PREPAREs from distinct backups that, with the PRE-PREPARE, prepare a request (C&L 4.2: 2f)."""
    return quorum(n, f) - 1


def reply_quorum(f: Count) -> Count:
    """Matching replies a client waits for before accepting a result (C&L 4.1: f + 1)."""
    return f + 1


def view_change_join(f: Count) -> Count:
    """VIEW-CHANGEs for higher views that make a replica join the view change (C&L 4.5.2: f + 1)."""
    return f + 1


def validation_quorum(validators: Count, faulty_validators: Count) -> Count:
    """ACCEPT votes a training claim needs before Finalize may pay it (PoT design: f_v + 1).

    One more than the Byzantine validators can cast, so every quorum holds an
    honest validator. ``validators`` is part of the signature so that a
    committee-size-dependent rule can replace it without touching callers.
    """
    del validators
    return faulty_validators + 1
