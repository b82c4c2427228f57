"""PBFT's state: a small immutable value of plain ints, tuples and frozensets.

Honest replicas keep the messages they have sent, so the network is the union
of those sets; Byzantine replicas have no state (their slot keeps the initial
placeholder). docs/spec.md, "Abstractions", argues each choice.
"""

from __future__ import annotations

from collections import Counter
from typing import NamedTuple

NULL = 0
"""Digest of the null request that NEW-VIEW uses to fill gaps (C&L 4.4)."""

Ops = tuple[int, ...]
"""An executed log: the digest executed at sequence numbers 1, 2, ... (NULL for no-ops)."""

Logs = tuple[Ops, ...]
"""The honest replicas' executed logs, in replica order: all that most invariants read."""

Proposals = tuple[tuple[int, int], ...]
"""NEW-VIEW's O: (sequence, digest) pairs in sequence order."""


class ViewChange(NamedTuple):
    """VIEW-CHANGE(v, n, C, P, i) as its sender keeps it (the sender is the replica holding it)."""

    view: int
    stable: int
    """n: the sequence number of the sender's last stable checkpoint."""
    stable_state: Ops
    """C, abstracted to the state the checkpoint certifies."""
    prepared: frozenset[tuple[int, int, int]]
    """P: (sequence, digest, view) of every request prepared at the sender above ``stable``."""


class Replica(NamedTuple):
    """One honest replica: its local state and the messages it has sent.

    Messages are kept with their sender, so the network is the union of these
    sets and renaming replicas is reordering ``State.replicas``. CHECKPOINT
    messages are not stored: a replica's are exactly (n, executed[:n]) for
    every multiple n of K it has executed (see ``Pbft.checkpoints_of``).
    """

    view: int
    changing: bool
    """True between sending VIEW-CHANGE for ``view`` and accepting its NEW-VIEW."""
    executed: Ops
    stable: int
    """Sequence number of the last stable checkpoint: the low watermark h."""
    proposals: frozenset[tuple[int, int, int]]
    """(view, sequence, digest) of the PRE-PREPAREs it sent as primary, NEW-VIEW's O included."""
    prepares: frozenset[tuple[int, int, int]]
    """(view, sequence, digest) of its PREPAREs: the PRE-PREPAREs it accepted as a backup."""
    commits: frozenset[tuple[int, int, int]]
    """(view, sequence, digest) of its COMMITs: the requests prepared at it."""
    view_changes: frozenset[ViewChange]
    timer: int
    """Liveness models: how many times its view-change timeout has doubled (capped at delay_level)."""


class NewView(NamedTuple):
    """NEW-VIEW(v, V, O) of an honest primary; V matters only through what it determines."""

    view: int
    proposals: Proposals
    """O: (sequence, digest) re-proposed in ``view``."""
    stable: int
    """min-s: the latest stable checkpoint in V."""
    stable_state: Ops


class Tally(NamedTuple):
    """Honest votes in one state: PREPAREs and COMMITs per (view, seq, digest)."""

    prepares: Counter[tuple[int, int, int]]
    commits: Counter[tuple[int, int, int]]


class State(NamedTuple):
    """Every replica (Byzantine ones keep their initial placeholder) and the honest NEW-VIEWs."""

    replicas: tuple[Replica, ...]
    new_views: frozenset[NewView]
    decided: frozenset[tuple[int, int]]
    """History: (sequence, digest) at which some honest replica has been committed-local, so that
    Agreement still sees commits that garbage collection has made irrelevant to the protocol."""
    gst: bool
    """Liveness models: the global stabilisation time has passed (always False in safety models)."""


def initial_state(replicas: int) -> State:
    """Init: every replica in view 0, nothing sent, nothing executed, before GST."""
    empty: frozenset[tuple[int, int, int]] = frozenset()
    start = Replica(0, False, (), 0, empty, empty, empty, frozenset(), 0)
    return State((start,) * replicas, frozenset(), frozenset(), False)


def with_replica(s: State, i: int, replica: Replica) -> State:
    """``s`` with replica i's record replaced: [s EXCEPT !.replicas[i] = replica].

    Built field by field rather than with ``_replace``: every successor passes here, and this is
    half the cost."""
    return State((*s.replicas[:i], replica, *s.replicas[i + 1 :]), s.new_views, s.decided, s.gst)


def adopt_checkpoint(r: Replica, stable: int, state: Ops) -> Replica:
    """Move h up to a stable checkpoint, fetching its state if not executed that far (C&L 4.3, 4.4)."""
    if stable <= r.stable:
        return r
    executed = r.executed if len(r.executed) >= stable else state
    return r._replace(stable=stable, executed=executed)
