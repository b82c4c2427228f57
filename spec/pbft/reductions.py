"""State-space reductions of the PBFT model: garbage collection of unreadable messages, and
symmetry (TLC's SYMMETRY) over interchangeable replicas.

Both are functions of a ``Pbft`` (for who is honest, the views explored, the
primaries) and a state; neither changes which behaviours the invariants see.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import TYPE_CHECKING, NamedTuple

from spec.pbft.state import Replica, State

if TYPE_CHECKING:
    from spec.pbft.protocol import Pbft


class Readable(NamedTuple):
    """What decides which messages a state's future steps and invariants can still read."""

    prepare_views: frozenset[int]
    """Views whose PRE-PREPAREs and PREPAREs are live."""
    pending_views: frozenset[int]
    """Views whose NEW-VIEW is still pending."""
    low_watermark: int
    """The lowest honest low watermark: COMMITs at or below it are collected."""


def new_view_pending(p: Pbft, s: State, view: int) -> bool:
    """Whether a NEW-VIEW for ``view`` can still be computed or accepted by an honest replica."""
    primary = p.primary(view)
    if primary not in p.config.byzantine:
        r = s.replicas[primary]
        if r.view < view or (r.view == view and r.changing):
            return True
    return any(
        s.replicas[i].view < view or (s.replicas[i].view == view and s.replicas[i].changing) for i in p.honest
    )


def watermarks(p: Pbft, s: State) -> tuple[tuple[int, bool, int], ...]:
    """Each honest replica's view, whether it is changing views, and its low watermark: all that
    ``readable`` reads of a state."""
    replicas = s.replicas
    return tuple([(replicas[i].view, replicas[i].changing, replicas[i].stable) for i in p.honest])


def readable(p: Pbft, s: State) -> Readable:
    """The views whose PREPAREs are live, the views whose NEW-VIEW is pending, and the lowest honest
    low watermark. Each only shrinks or grows monotonically along a behaviour."""
    honest = [s.replicas[i] for i in p.honest]
    pending = frozenset(w for w in p.views if w > 0 and new_view_pending(p, s, w))
    lowest_view = min(r.view for r in honest)
    live = frozenset(v for v in p.views if v >= lowest_view or any(w > v for w in pending))
    return Readable(live, pending, min(r.stable for r in honest))


def collect(p: Pbft, s: State, before: Readable) -> State:
    """Garbage-collect the messages no future step or invariant can read, after a step from a state
    whose ``readable`` was ``before``.

    Applied after every step that can make messages unreadable (view
    changes and stable checkpoints), so states differing only in dead
    messages are one state. Dropped:

    * PREPAREs and PRE-PREPAREs of view v, once every honest replica has
      left v and no NEW-VIEW for a later view is still pending (they serve
      only v's quorums and the prepared certificates of VIEW-CHANGEs);
    * VIEW-CHANGEs and NEW-VIEWs for view w once NEW-VIEW(w) is no longer pending;
    * COMMITs at or below every honest replica's low watermark (C&L 4.3's
      garbage collection; ``decided`` keeps what Agreement needs).
    """
    now = p.readable(s)
    if now == before:
        return s  # the parent was collected and nothing more became unreadable
    views_changed = now.prepare_views != before.prepare_views
    pending_changed = now.pending_views != before.pending_views
    watermark_changed = now.low_watermark != before.low_watermark
    replicas = list(s.replicas)
    for i in p.honest:
        r = replicas[i]
        proposals, prepares, commits, view_changes = r.proposals, r.prepares, r.commits, r.view_changes
        if views_changed:
            proposals = frozenset(e for e in proposals if e[0] in now.prepare_views)
            prepares = frozenset(e for e in prepares if e[0] in now.prepare_views)
        if watermark_changed:
            commits = frozenset(e for e in commits if e[1] > now.low_watermark)
        if pending_changed:
            view_changes = frozenset(vc for vc in view_changes if vc.view in now.pending_views)
        # Built positionally, not with _replace: every collected state passes here, and this is
        # half the cost.
        replicas[i] = Replica(
            r.view, r.changing, r.executed, r.stable, proposals, prepares, commits, view_changes, r.timer
        )
    new_views = s.new_views
    if pending_changed:
        new_views = frozenset(nv for nv in new_views if nv.view in now.pending_views)
    return State(tuple(replicas), new_views, s.decided, s.gst)


def symmetric_replicas(p: Pbft) -> tuple[int, ...]:
    """Honest replicas that are primary of no explored view: interchangeable."""
    primaries = {p.primary(v) for v in p.views}
    return tuple(i for i in p.honest if i not in primaries)


def symmetry(p: Pbft) -> Callable[[State], Hashable] | None:
    """The representative of the state's orbit under renaming interchangeable replicas.

    A replica's messages live in its own record, so renaming replicas is
    permuting records: sorting the interchangeable records (by hash; ties
    keep their order, which only costs reduction) picks one permutation,
    and equal representatives are always states of one orbit.
    """
    slots = symmetric_replicas(p)
    if len(slots) < 2:
        return None

    def representative(s: State) -> Hashable:
        records = [s.replicas[j] for j in slots]
        ordered = sorted(records, key=hash)
        if ordered == records:
            return s  # already the representative: equal records in place are the same state
        replicas = list(s.replicas)
        for slot, record in zip(slots, ordered, strict=True):
            replicas[slot] = record
        return State(tuple(replicas), s.new_views, s.decided, s.gst)

    return representative
