"""PBFT (Castro and Liskov, OSDI'99, section 4) as an executable specification.

PBFT orders opaque requests; what a request *does* is left to an
``Application`` (a pure function of the executed log), so the same protocol
model is checked alone (``pbft-*`` models, with a counter application) and
composed with the PoT ledger (spec/combined.py).

Modelling choices (each argued in docs/spec.md, "Abstractions"):

* Honest replicas' messages form a monotone set that replicas read when they
  choose: delay, reordering and duplication are implicit, loss is a message
  never read.
* Byzantine replicas have no state and send nothing into the set: whatever
  they can sign is always available. Vote counts add every Byzantine replica
  as voting for whatever is being counted; a Byzantine primary's PRE-PREPARE
  exists for every request; a Byzantine VIEW-CHANGE may claim any stable
  checkpoint and any subset of the prepared certificates that exist (honest
  signatures cannot be forged); a Byzantine NEW-VIEW may carry any O that
  backups recompute correctly from some valid V.
* Clients have sent every request at the start (reading is what replicas
  choose); replies are derived from executed logs, and client acceptance
  (f + 1 matching replies) is a predicate on them.
* "Prepared at i" is "i sent COMMIT", since a replica multicasts its COMMIT
  the moment it becomes prepared.
* Views, sequence numbers and requests are bounded by model constants.

Every threshold comes from spec/quorum.py.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Hashable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from enum import IntEnum
from itertools import chain, combinations, pairwise, product
from typing import Any, NamedTuple

from model_checker.model import (
    Action,
    ConstantError,
    Fairness,
    Model,
    Property,
    eventually,
    leads_to,
    weak_fairness,
)
from spec.quorum import prepare_quorum, quorum, reply_quorum, view_change_join

NULL = 0
"""Digest of the null request that NEW-VIEW uses to fill gaps (C&L 4.4)."""

Ops = tuple[int, ...]
"""An executed log: the digest executed at sequence numbers 1, 2, ... (NULL for no-ops)."""

Step = Callable[["State"], Iterable[tuple[Any, "State"]]]
"""An action's step function."""

Proposals = tuple[tuple[int, int], ...]
"""NEW-VIEW's O: (sequence, digest) pairs in sequence order."""


class PbftBug(IntEnum):
    """Planted protocol bugs: spec variants the checker must refute. NONE is the protocol."""

    NONE = 0
    COMMIT_AT_F_PLUS_1 = 1
    """committed-local after f + 1 matching COMMITs instead of a quorum."""
    PREPARE_COUNTED_TWICE = 2
    """A sender's PREPARE counts twice (duplicates not filtered by sender)."""
    NEW_VIEW_LOWEST_VIEW = 3
    """NEW-VIEW re-proposes the lowest-view prepared digest instead of the highest."""
    NO_NULL_FILL = 4
    """NEW-VIEW leaves gaps in O instead of filling them with null requests."""
    REEXECUTE = 5
    """A request committed at two sequence numbers is executed twice (no client-timestamp check)."""
    NO_TIMEOUT_DOUBLING = 6
    """Liveness: a replica's view-change timeout never grows, so after GST it may still be too short."""
    NO_VIEW_CHANGE_JOIN = 7
    """Liveness: a replica never joins a view change on f + 1 VIEW-CHANGEs for higher views."""
    SILENT_PRIMARY = 8
    """Liveness: honest primaries never propose, and replicas have no view-change timer."""


# --------------------------------------------------------------------------- state


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
    every multiple n of K it has executed (see ``checkpoints_of``).
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


# --------------------------------------------------------------------------- application


@dataclass(frozen=True)
class Application:
    """The replicated service: PBFT executes requests in order, this says what they return.

    ``result(ops, request)`` is the reply a replica with executed log ``ops``
    sends for ``request`` (which it has executed); ``invariants`` are
    predicates over one honest replica's executed log.
    """

    name: str
    result: Callable[[Ops, int], Hashable]
    invariants: Mapping[str, Callable[[Ops], bool]] = field(default_factory=dict)
    symmetric_requests: bool = False
    """True when permuting request identities maps behaviours to behaviours (symmetry reduction)."""


def _position_result(ops: Ops, request: int) -> Hashable:
    """A counter service: the reply is how many requests ran before this one."""
    return sum(1 for op in ops[: ops.index(request)] if op != NULL)


COUNTER = Application("counter", _position_result, symmetric_requests=True)
"""The service of the PBFT-only models: replies reveal the order, so a wrong order shows."""


# --------------------------------------------------------------------------- configuration


@dataclass(frozen=True)
class PbftConfig:
    """The constants of one PBFT model (see ``CONSTANT_DOCS``)."""

    replicas: int = 4
    faulty: int = 1
    byzantine: frozenset[int] = frozenset({0})
    requests: int = 2
    max_view: int = 1
    checkpoint_interval: int = 2
    window: int = 4
    max_seq: int = 2
    bug: PbftBug = PbftBug.NONE
    liveness: bool = False
    async_views: int = 1
    delay_level: int = 1

    def __post_init__(self) -> None:
        problems = []
        if self.faulty < 0 or self.replicas < 1:
            problems.append("need replicas >= 1 and faulty >= 0")
        if len(self.byzantine) > self.faulty:
            problems.append(f"{len(self.byzantine)} Byzantine replicas exceed faulty={self.faulty}")
        if not self.byzantine <= set(range(self.replicas)):
            problems.append(f"byzantine {sorted(self.byzantine)} not all in 0..{self.replicas - 1}")
        if len(self.byzantine) == self.replicas:
            problems.append("at least one replica must be honest")
        if min(self.requests, self.checkpoint_interval, self.window, self.max_seq) < 1:
            problems.append("requests, checkpoint_interval, window and max_seq must be >= 1")
        if self.max_view < 0:
            problems.append("max_view must be >= 0")
        if problems:
            raise ConstantError("PBFT constants: " + "; ".join(problems))

    def warnings(self) -> tuple[str, ...]:
        """Constants that are checkable but void the protocol's guarantees (C&L section 2: n >= 3f + 1)."""
        n, f = self.replicas, self.faulty
        if n >= 3 * f + 1:
            return ()
        return (
            f"replicas={n} < 3*faulty+1={3 * f + 1}: PBFT assumes n >= 3f + 1; two quorums of "
            f"n - f = {quorum(n, f)} may share no honest replica, so safety may fail",
        )


CONSTANT_DOCS: Mapping[str, str] = {
    "replicas": "n, the number of replicas; the primary of view v is v mod n",
    "faulty": "f, the fault threshold the quorums are sized for",
    "byzantine": "replicas that are Byzantine (at most f): they send anything they can sign",
    "requests": "client requests 1..requests, all sent at the start",
    "max_view": "views 0..max_view are explored (no view change beyond it; liveness models record a "
    "timeout there as the views-exhausted outcome)",
    "checkpoint_interval": "K: a replica checkpoints after executing every K-th sequence number",
    "window": "L: sequence numbers accepted are h < n <= h + L (h: last stable checkpoint)",
    "max_seq": "largest sequence number any pre-prepare may carry (bounds the model)",
    "bug": "a planted protocol bug (spec.pbft.PbftBug), or none (the protocol)",
    "liveness": "model partial synchrony (GST, timers, timeout doubling, joining view changes) and "
    "check the liveness properties under fairness (no symmetry reduction then)",
    "async_views": "liveness: before GST, timers may expire spuriously only in views below this",
    "delay_level": "liveness: timeouts doubled this many times outlast the message delay after GST",
}


# --------------------------------------------------------------------------- the protocol


class Pbft:
    """The PBFT actions and invariants for one configuration and application.

    Steps are pure functions of the state; the instance only memoises per-state
    work (vote tallies, stable checkpoints, which actions were enabled) keyed
    by the identity of the state last seen, so one instance serves one search
    at a time.
    """

    def __init__(self, config: PbftConfig, app: Application = COUNTER) -> None:
        self.config = config
        self.app = app
        n, f = config.replicas, config.faulty
        self.honest = tuple(i for i in range(n) if i not in config.byzantine)
        self.byzantine = tuple(sorted(config.byzantine))
        self.quorum = quorum(n, f)
        self.prepare_quorum = prepare_quorum(n, f)
        self.commit_threshold = f + 1 if config.bug is PbftBug.COMMIT_AT_F_PLUS_1 else self.quorum
        self.requests = tuple(range(1, config.requests + 1))
        self.forged = config.requests + 1
        """A request no client sent: a Byzantine primary can still propose its digest."""
        self.views = tuple(range(config.max_view + 1))
        self.seqs = tuple(range(1, config.max_seq + 1))
        self.byzantine_offers = [(n, d) for n in self.seqs for d in (*self.requests, self.forged)]
        """What a Byzantine primary can pre-prepare: any request, sent or not, at any sequence number."""
        self.byzantine_backups = [sum(1 for b in self.byzantine if b != self.primary(v)) for v in self.views]
        self._tallied: State | None = None
        self._probe_state: State | None = None
        self._probe_calls = 0
        self._probe_enabled = False
        self._protocol_steps: tuple[Step, ...] = ()
        self._honest_steps: tuple[Step, ...] = ()
        self._tally = Tally(Counter(), Counter())
        self._stable_of: State | None = None
        self._stable_honest_only = False
        self._honest_only = False
        """While set, Byzantine replicas send nothing: what honest replicas can do on their own."""
        self._liveness_parent: State | None = None
        self._parent_liveness: tuple[frozenset[int], frozenset[int], int] = (frozenset(), frozenset(), 0)
        self._stable: frozenset[tuple[int, Ops]] = frozenset()

    # ----------------------------------------------------------------- reading the network

    def primary(self, view: int) -> int:
        """C&L 4: the primary of view v is v mod |R|."""
        return view % self.config.replicas

    def byzantine_primary(self, view: int) -> bool:
        return self.primary(view) in self.config.byzantine

    def client_sent(self, digest: int) -> bool:
        """Backups accept a PRE-PREPARE only for a request carrying a client signature (C&L 4.2)."""
        return digest in self.requests

    def in_window(self, replica: Replica, seq: int) -> bool:
        """Watermarks (C&L 4.3): h < n <= H = h + L, within the model's bound."""
        return replica.stable < seq <= min(replica.stable + self.config.window, self.config.max_seq)

    def tally(self, s: State) -> Tally:
        """Honest PREPARE and COMMIT counts of ``s``, computed once per state (its actions all read them)."""
        if s is not self._tallied:
            records = [s.replicas[i] for i in self.honest]
            self._tally = Tally(
                Counter(chain.from_iterable(r.prepares for r in records)),
                Counter(chain.from_iterable(r.commits for r in records)),
            )
            self._tallied = s
        return self._tally

    def prepare_votes(self, s: State, entry: tuple[int, int, int]) -> int:
        """Distinct backups with a PREPARE matching (view, seq, digest); Byzantine backups always have one.

        Honest primaries never send PREPAREs, so every honest PREPARE is a backup's.
        """
        votes = self.tally(s).prepares[entry] + (0 if self._honest_only else self.byzantine_backups[entry[0]])
        return 2 * votes if self.config.bug is PbftBug.PREPARE_COUNTED_TWICE else votes

    def commit_votes(self, s: State, entry: tuple[int, int, int]) -> int:
        """Distinct replicas with a COMMIT matching (view, seq, digest); Byzantine ones always have one."""
        return self.tally(s).commits[entry] + (0 if self._honest_only else len(self.byzantine))

    def has_prepared_certificate(self, s: State, entry: tuple[int, int, int]) -> bool:
        """A PRE-PREPARE plus prepare_quorum matching PREPAREs from distinct backups (C&L 4.2)."""
        sent = self.byzantine_primary(entry[0]) or entry in s.replicas[self.primary(entry[0])].proposals
        return sent and self.prepare_votes(s, entry) >= self.prepare_quorum

    def committed_local(self, s: State) -> Iterator[tuple[int, tuple[int, int, int]]]:
        """(replica, (view, seq, digest)) for every honest replica committed-local (C&L 4.2).

        COMMITs of a view count whenever they arrive, also after the replica left that view: a
        quorum of one view's COMMITs proves the request committed, so completing it late is
        safe, and the implementation does so for a batch it prepared there. Counting only the
        current view's COMMITs would forbid executing, after a view change, a batch that became
        committed-local before it (which C&L allow and the implementation does)."""
        for i in self.honest:
            for entry in s.replicas[i].commits:
                if self.commit_votes(s, entry) >= self.commit_threshold:
                    yield i, entry

    def checkpoints_of(self, r: Replica) -> Iterator[tuple[int, Ops]]:
        """The CHECKPOINT(n, state) messages replica r has multicast: one per K-th executed request."""
        interval = self.config.checkpoint_interval
        for n in range(interval, len(r.executed) + 1, interval):
            yield n, r.executed[:n]

    def stable_checkpoints(self, s: State) -> frozenset[tuple[int, Ops]]:
        """(seq, state) certified by a quorum of matching CHECKPOINTs (C&L 4.3), computed once per state."""
        if s is not self._stable_of or self._stable_honest_only != self._honest_only:
            votes = Counter(chain.from_iterable(self.checkpoints_of(s.replicas[i]) for i in self.honest))
            needed = self.quorum - (0 if self._honest_only else len(self.byzantine))
            self._stable = frozenset(c for c, count in votes.items() if count >= needed)
            self._stable_of, self._stable_honest_only = s, self._honest_only
        return self._stable

    # ----------------------------------------------------------------- new view

    def compute_proposals(self, chosen: Iterable[ViewChange]) -> NewView:
        """O and min-s from the VIEW-CHANGEs in V (C&L 4.4), as the NEW-VIEW for an unset view.

        min-s is the latest stable checkpoint in V, max-s the highest prepared
        sequence number; each n in between gets the digest prepared in the
        highest view, or a null request when none was prepared.
        """
        chosen = list(chosen)
        latest = max(chosen, key=lambda vc: vc.stable)
        min_s = latest.stable
        best: dict[int, tuple[int, int]] = {}
        lowest = self.config.bug is PbftBug.NEW_VIEW_LOWEST_VIEW
        for vc in chosen:
            for n, d, pv in vc.prepared:
                if n <= min_s:
                    continue
                if n not in best or ((pv, d) < best[n] if lowest else (pv, d) > best[n]):
                    best[n] = (pv, d)
        proposals = []
        for n in range(min_s + 1, max(best, default=min_s) + 1):
            if n in best:
                proposals.append((n, best[n][1]))
            elif self.config.bug is not PbftBug.NO_NULL_FILL:
                proposals.append((n, NULL))
        return NewView(-1, tuple(proposals), min_s, latest.stable_state)

    def byzantine_view_changes(self, s: State, view: int) -> list[ViewChange]:
        """Every VIEW-CHANGE for ``view`` a Byzantine replica can back with valid proofs.

        C: any stable checkpoint (or the initial state); P: any subset of the
        prepared certificates that exist above it for earlier views.
        """
        checkpoints = [(0, ()), *sorted(self.stable_checkpoints(s))]
        certificates = [
            (n, d, pv)
            for pv in range(view)
            for n in self.seqs
            for d in (NULL, *self.requests)
            if self.has_prepared_certificate(s, (pv, n, d))
        ]
        options = []
        for h, st in checkpoints:
            above = [c for c in certificates if c[0] > h]
            for size in range(len(above) + 1):
                for subset in combinations(above, size):
                    options.append(ViewChange(view, h, st, frozenset(subset)))
        return options

    def new_view_options(self, s: State, view: int, own: int | None) -> list[NewView]:
        """Every NEW-VIEW for ``view`` whose O backups' recomputation from its V accepts.

        V is any quorum of VIEW-CHANGEs for ``view`` (with ``own``'s when the
        primary is honest); honest ones are those sent, Byzantine ones any of
        ``byzantine_view_changes``.
        """
        senders: dict[int, list[ViewChange]] = {}
        for i in self.honest:
            sent = [vc for vc in s.replicas[i].view_changes if vc.view == view]
            if sent:
                senders[i] = sent
        if own is not None and own not in senders:
            return []
        if self.byzantine and not self._honest_only:
            forged = self.byzantine_view_changes(s, view)
            senders.update({b: forged for b in self.byzantine})
        results = set()
        for group in combinations(sorted(senders), self.quorum):
            if own is None or own in group:
                for chosen in product(*(senders[j] for j in group)):
                    results.add(self.compute_proposals(chosen)._replace(view=view))
        return sorted(results)

    # ----------------------------------------------------------------- actions

    def init(self) -> Iterator[State]:
        empty: frozenset[tuple[int, int, int]] = frozenset()
        start = Replica(0, False, (), 0, empty, empty, empty, frozenset(), 0)
        yield State((start,) * self.config.replicas, frozenset(), frozenset(), False)

    def _with(self, s: State, i: int, replica: Replica) -> State:
        return State((*s.replicas[:i], replica, *s.replicas[i + 1 :]), s.new_views, s.decided, s.gst)

    def pre_prepare(self, s: State) -> Iterator[tuple[tuple[int, int, int], State]]:
        """An honest primary assigns the next sequence number to a request (C&L 4.2)."""
        for i in self.honest:
            r = s.replicas[i]
            if r.changing or self.primary(r.view) != i or self.config.bug is PbftBug.SILENT_PRIMARY:
                continue
            mine = [(n, d) for (v, n, d) in r.proposals if v == r.view]
            seq = max([r.stable, *(n for n, _ in mine)]) + 1
            if not self.in_window(r, seq):
                continue
            proposed = {d for _, d in mine}
            for d in self.requests:
                if d not in proposed and d not in r.executed:
                    replica = r._replace(proposals=r.proposals | {(r.view, seq, d)})
                    yield (i, seq, d), self._with(s, i, replica)

    def prepare(self, s: State) -> Iterator[tuple[tuple[int, int, int], State]]:
        """A backup accepts a PRE-PREPARE and multicasts PREPARE (C&L 4.2).

        Accepted if in view, within the watermarks, for a client's request,
        and no other PRE-PREPARE was accepted for this view and sequence number.
        """
        for i in self.honest:
            r = s.replicas[i]
            v = r.view
            if r.changing or self.primary(v) == i:
                continue
            taken = {n for (pv, n, _) in r.prepares if pv == v}
            offers: Iterable[tuple[int, int]]
            if self.byzantine_primary(v):
                offers = [] if self._honest_only else self.byzantine_offers
            else:
                offers = [(n, d) for (pv, n, d) in s.replicas[self.primary(v)].proposals if pv == v]
            for n, d in offers:
                if n not in taken and self.in_window(r, n) and self.client_sent(d):
                    replica = Replica(*r[:5], r.prepares | {(v, n, d)}, r.commits, r.view_changes, r.timer)
                    yield (i, n, d), self._with(s, i, replica)

    def commit(self, s: State) -> Iterator[tuple[tuple[int, int, int], State]]:
        """A replica becomes prepared and multicasts COMMIT (C&L 4.2)."""
        for i in self.honest:
            r = s.replicas[i]
            v = r.view
            if r.changing:
                continue
            logged = r.proposals if i == self.primary(v) else r.prepares
            for entry in logged:
                _, n, d = entry
                if (
                    entry[0] == v
                    and entry not in r.commits
                    and self.in_window(r, n)
                    and self.prepare_votes(s, entry) >= self.prepare_quorum
                ):
                    nxt = self._with(s, i, Replica(*r[:6], r.commits | {entry}, r.view_changes, r.timer))
                    if self.commit_votes(s, entry) + 1 >= self.commit_threshold:
                        nxt = State(nxt.replicas, nxt.new_views, s.decided | {(n, d)}, s.gst)
                    yield (i, n, d), nxt

    def execute(self, s: State) -> Iterator[tuple[tuple[int, int], State]]:
        """A committed-local request at the next sequence number is executed (C&L 4.2).

        A request already executed runs as a no-op (the client timestamp check
        of C&L 4.1). Every K-th execution produces a CHECKPOINT (C&L 4.3).
        """
        ready: dict[int, set[int]] = {}
        for i, (_, n, d) in self.committed_local(s):
            if n == len(s.replicas[i].executed) + 1:
                ready.setdefault(i, set()).add(d)
        for i, digests in ready.items():
            r = s.replicas[i]
            for d in sorted(digests):
                repeat = d in r.executed and self.config.bug is not PbftBug.REEXECUTE
                executed = (*r.executed, NULL if repeat else d)
                yield (i, d), self._with(s, i, Replica(r.view, r.changing, executed, *r[3:]))

    def stabilize_checkpoint(self, s: State) -> Iterator[tuple[tuple[int, int], State]]:
        """A quorum of matching CHECKPOINTs makes a checkpoint stable: h advances and the log below
        it is discarded (C&L 4.3); a replica that has not executed that far fetches the state."""
        stable = self.stable_checkpoints(s)
        for i in self.honest:
            r = s.replicas[i]
            for n, st in sorted(stable):
                if n > r.stable and (len(r.executed) < n or r.executed[:n] == st):
                    yield (i, n), self.collect(self._with(s, i, _adopt_checkpoint(r, n, st)), s)

    def start_view_change(self, s: State) -> Iterator[tuple[tuple[int, int], State]]:
        """A replica's timer expires: it moves to view v + 1 and multicasts VIEW-CHANGE (C&L 4.4).

        In safety models a timer may expire at any time. In liveness models see
        ``timer_may_expire``; each expiry doubles the timeout (C&L 4.5.2).
        """
        for i in self.honest:
            r = s.replicas[i]
            if r.view >= self.config.max_view:
                if self.views_exhausted(s, i):
                    yield (i, r.view + 1), self._with(s, i, r._replace(view=r.view + 1))
                continue
            if self.config.liveness and not self.timer_may_expire(s, i):
                continue
            replica = self._view_change(r, r.view + 1, self._doubled(r.timer))
            yield (i, r.view + 1), self.collect(self._with(s, i, replica), s)

    def views_exhausted(self, s: State, i: int) -> bool:
        """Liveness models: replica i, waiting at ``max_view`` for a NEW-VIEW, times out after GST
        because its timeout is still shorter than the message delay (fewer than ``delay_level``
        doublings). The view change it would start lies beyond the bound, so the model records the
        outcome instead: i moves to ``max_view + 1``, still changing, and takes no further view step
        (docs/spec.md, "Liveness": why a correct protocol never gets here, and what reaching it means)."""
        r = s.replicas[i]
        return (
            self.config.liveness
            and s.gst
            and r.view == self.config.max_view
            and r.changing
            and self._timer_running(s, i)
            and r.timer < self.config.delay_level
        )

    def _doubled(self, timer: int) -> int:
        """The timeout after one more consecutive view change (C&L 4.5.2), in doublings."""
        if not self.config.liveness or self.config.bug is PbftBug.NO_TIMEOUT_DOUBLING:
            return timer
        return min(timer + 1, self.config.delay_level)

    def _view_change(self, r: Replica, view: int, timer: int) -> Replica:
        """``r`` moved to ``view``, having multicast its VIEW-CHANGE: C and P as of now."""
        prepared = frozenset((n, d, v) for (v, n, d) in r.commits if n > r.stable)
        message = ViewChange(view, r.stable, r.executed[: r.stable], prepared)
        return r._replace(view=view, changing=True, view_changes=r.view_changes | {message}, timer=timer)

    def join_view_change(self, s: State) -> Iterator[tuple[tuple[int, int], State]]:
        """Liveness models: a replica holding view_change_join(f) VIEW-CHANGEs from other honest
        replicas for views above its own joins the smallest of those views (C&L 4.5.2)."""
        if self.config.bug is PbftBug.NO_VIEW_CHANGE_JOIN:
            return
        for i in self.honest:
            r = s.replicas[i]
            lowest_higher = [
                min(views)
                for j in self.honest
                if j != i and (views := [vc.view for vc in s.replicas[j].view_changes if vc.view > r.view])
            ]
            if len(lowest_higher) >= view_change_join(self.config.faulty):
                view = min(lowest_higher)
                replica = self._view_change(r, view, self._doubled(r.timer))
                yield (i, view), self.collect(self._with(s, i, replica), s)

    def catch_up(self, s: State) -> Iterator[tuple[tuple[int, int], State]]:
        """Liveness models: a replica behind another honest replica executes the next request that
        one executed, fetched with the certificate it was executed on: the PRE-PREPARE and a quorum
        of matching COMMITs, or the certified checkpoint state (C&L TOCS 5.2, retransmission of
        missing messages to a replica that reports it is behind; 5.3, state transfer). Safe: an
        honest replica executes only what is committed, and a certificate proves it."""
        for i in self.honest:
            r = s.replicas[i]
            k = len(r.executed)
            ahead = {s.replicas[j].executed[k] for j in self.honest if len(s.replicas[j].executed) > k}
            for op in sorted(ahead):  # one at most, by ExecutedPrefix
                yield (i, k + 1), self._with(s, i, r._replace(executed=(*r.executed, op)))

    def gst(self, s: State) -> Iterator[tuple[tuple[()], State]]:
        """Liveness models: the global stabilisation time passes (partial synchrony, C&L 4.5.2)."""
        if not s.gst:
            yield (), s._replace(gst=True)

    def timer_may_expire(self, s: State, i: int) -> bool:
        """Partial synchrony (C&L 4.5.2): when replica i's view-change timer can expire.

        It runs only while i waits: for a request it has not executed, or in a
        view change for the NEW-VIEW. Before GST it may expire in views below
        ``async_views`` (the asynchronous period's view changes are bounded so
        the model is finite) and when the primary is Byzantine. After GST it
        expires when the timeout is still shorter than the message delay
        (fewer than ``delay_level`` doublings), when the primary is Byzantine
        (which may stall), or when honest replicas on their own can make no
        step and no other timer is about to expire (the awaited event cannot
        come, however long the timeout).
        """
        return self._timer_expires_early(s, i) or (
            s.gst and self._timer_running(s, i) and self.honestly_stuck(s)
        )

    def _timer_running(self, s: State, i: int) -> bool:
        r = s.replicas[i]
        waiting = r.changing or any(d not in r.executed for d in self.requests)
        return waiting and r.view <= self.config.max_view and self.config.bug is not PbftBug.SILENT_PRIMARY

    def _timer_expires_early(self, s: State, i: int) -> bool:
        """Expiry that needs no reason: a Byzantine primary, asynchrony, or a timeout still too short."""
        if not self._timer_running(s, i):
            return False
        r = s.replicas[i]
        if self.byzantine_primary(r.view):
            return True
        if not s.gst:
            return r.view < self.config.async_views
        return r.timer < self.config.delay_level

    def honestly_stuck(self, s: State) -> bool:
        """After GST: no honest step is enabled and no honest timer is about to expire anyway, so
        whatever a replica waits for cannot come however long its timeout."""
        return not self.honest_step_enabled(s) and not any(
            self._timer_expires_early(s, j) for j in self.honest
        )

    def honest_step_enabled(self, s: State) -> bool:
        """Whether some protocol step is enabled with honest replicas' messages alone."""
        return any(next(iter(step(s)), None) is not None for step in self._honest_steps)

    def new_view(self, s: State) -> Iterator[tuple[tuple[int, Proposals], State]]:
        """The new primary, holding a quorum of VIEW-CHANGEs (its own among them), multicasts
        NEW-VIEW and logs the PRE-PREPAREs of O (C&L 4.4)."""
        for i in self.honest:
            r = s.replicas[i]
            if not r.changing or self.primary(r.view) != i:
                continue
            for message in self.new_view_options(s, r.view, own=i):
                replica = _adopt_checkpoint(r._replace(changing=False), message.stable, message.stable_state)
                logged = {(r.view, n, d) for n, d in message.proposals if self.in_window(replica, n)}
                replica = replica._replace(proposals=replica.proposals | logged)
                nxt = self._with(s, i, replica)
                yield (i, message.proposals), self.collect(nxt._replace(new_views=s.new_views | {message}), s)

    def accept_new_view(self, s: State) -> Iterator[tuple[tuple[int, int, Proposals], State]]:
        """A backup accepts a NEW-VIEW whose O it recomputes from V, enters the view and prepares
        every proposal in O (C&L 4.4)."""
        offers: dict[int, list[NewView]] = {}
        for i in self.honest:
            r = s.replicas[i]
            for view in range(r.view, self.config.max_view + 1):
                if (view == r.view and not r.changing) or self.primary(view) == i:
                    continue
                if view not in offers:
                    offers[view] = self._new_views_for(s, view)
                for message in offers[view]:
                    replica = _adopt_checkpoint(
                        r._replace(view=view, changing=False), message.stable, message.stable_state
                    )
                    sent = {(view, n, d) for n, d in message.proposals if self.in_window(replica, n)}
                    replica = replica._replace(prepares=replica.prepares | sent)
                    yield (i, view, message.proposals), self.collect(self._with(s, i, replica), s)

    def _new_views_for(self, s: State, view: int) -> list[NewView]:
        if self.byzantine_primary(view):
            return [] if self._honest_only else self.new_view_options(s, view, own=None)
        return sorted(nv for nv in s.new_views if nv.view == view)

    def protocol_actions(self) -> tuple[Action[State], ...]:
        return (
            Action("PrePrepare", self.pre_prepare, ("primary", "seq", "request")),
            Action("Prepare", self.prepare, ("replica", "seq", "request")),
            Action("Commit", self.commit, ("replica", "seq", "request")),
            Action("Execute", self.execute, ("replica", "request")),
            Action("StableCheckpoint", self.stabilize_checkpoint, ("replica", "seq")),
            Action("StartViewChange", self.start_view_change, ("replica", "view")),
            Action("NewView", self.new_view, ("primary", "O")),
            Action("AcceptNewView", self.accept_new_view, ("replica", "view", "O")),
        )

    def actions(self) -> tuple[Action[State], ...]:
        """The protocol's actions, each noting whether it was enabled, then ``Quiescent``.

        Liveness models add GST and JoinViewChange, and an ``Honest`` copy of
        each progress action that takes the same steps but only those enabled
        by honest replicas' messages: fairness is declared on the copies, so it
        never obliges a Byzantine replica to help.
        """
        protocol = self.protocol_actions()
        if self.config.liveness:
            honest = tuple(
                Action(f"Honest{a.name}", self._honestly(a.step), a.params)
                for a in protocol
                if a.name != "StartViewChange"  # timers are not messages; see timer_may_expire
            )
            self._honest_steps = (*(a.step for a in honest), self.join_view_change, self.catch_up)
            protocol = (
                *protocol,
                *honest,
                Action("JoinViewChange", self.join_view_change, ("replica", "view")),
                Action("CatchUp", self.catch_up, ("replica", "seq")),
                Action("GST", self.gst),
            )
        self._protocol_steps = tuple(a.step for a in protocol)
        probed = tuple(Action(a.name, self._probed(a.step), a.params) for a in protocol)
        return (*probed, Action("Quiescent", self.quiescent))

    def _honestly(self, step: Step) -> Step:
        def run(s: State) -> list[tuple[Any, State]]:
            self._honest_only = True
            try:
                return list(step(s))
            finally:
                self._honest_only = False

        return run

    def fairness(self) -> tuple[Fairness, ...]:
        """Liveness models: every honest replica eventually takes each step it can take on honest
        messages alone, joins view changes, and its timer fires when it may; GST eventually comes."""
        if not self.config.liveness:
            return ()
        fair = [f"Honest{a.name}" for a in self.protocol_actions() if a.name != "StartViewChange"]
        fair += ["StartViewChange", "JoinViewChange", "CatchUp"]  # the last two read honest messages only
        return (*(weak_fairness(name, per_instance=True) for name in fair), weak_fairness("GST"))

    def properties(self) -> tuple[Property[State], ...]:
        """PBFT's liveness properties (C&L 4.5.2 under partial synchrony)."""
        if not self.config.liveness:
            return ()
        return (
            eventually(
                "ClientReceivesReplies",
                self.replies_available,
                "every client eventually holds reply_quorum(f) matching replies from honest replicas",
            ),
            eventually(
                "RequestsExecutedByAll",
                self.all_executed_everywhere,
                "every client request is eventually executed by every honest replica (needs CatchUp)",
            ),
            leads_to(
                "ViewChangeCompletes",
                self.view_change_started,
                self.no_view_change,
                "a view change that view_change_join(f) honest replicas started eventually completes",
            ),
        )

    def all_executed_everywhere(self, s: State) -> bool:
        return all(d in s.replicas[i].executed for i in self.honest for d in self.requests)

    def replies_available(self, s: State) -> bool:
        needed = reply_quorum(self.config.faulty)
        return all(sum(d in s.replicas[i].executed for i in self.honest) >= needed for d in self.requests)

    def view_change_started(self, s: State) -> bool:
        changing = sum(1 for i in self.honest if s.replicas[i].changing)
        return changing >= view_change_join(self.config.faulty)

    def no_view_change(self, s: State) -> bool:
        return not any(s.replicas[i].changing for i in self.honest)

    def _probed(self, step: Step) -> Callable[[State], Iterator[tuple[Any, State]]]:
        def run(s: State) -> Iterator[tuple[Any, State]]:
            if s is not self._probe_state:
                self._probe_state, self._probe_calls, self._probe_enabled = s, 0, False
            self._probe_calls += 1
            for successor in step(s):
                self._probe_enabled = True
                yield successor

        return run

    def quiescent(self, s: State) -> Iterator[tuple[tuple[()], State]]:
        """TLA+'s ``Terminating``: a state where no protocol step is enabled stutters.

        The models are bounded (views, sequence numbers, requests), so running
        out of steps is how every behaviour ends, not a deadlock; whether
        honest replicas always make progress is a liveness question (the liveness
        properties). Enabledness is taken from the protocol actions just run
        on ``s`` when the checker ran them all, in order, and recomputed otherwise.
        """
        if s is self._probe_state and self._probe_calls == len(self._protocol_steps):
            enabled = self._probe_enabled
        else:
            enabled = any(next(iter(step(s)), None) is not None for step in self._protocol_steps)
        if not enabled:
            yield (), s

    # ----------------------------------------------------------------- invariants

    def agreement(self, s: State) -> bool:
        """Agreement (C&L 4.5.1 safety): no two honest replicas are committed-local for
        different requests at one sequence number, in the same or different views."""
        decided: dict[int, int] = {}
        return all(decided.setdefault(n, d) == d for n, d in s.decided)

    def executed_prefix(self, s: State) -> bool:
        """ExecutedPrefix (C&L 4: a replicated state machine; every honest replica executes the same
        sequence): of any two honest executed logs, one is a prefix of the other."""
        logs = sorted((s.replicas[i].executed for i in self.honest), key=len)
        return all(shorter == longer[: len(shorter)] for shorter, longer in pairwise(logs))

    def only_sent_requests_executed(self, s: State) -> bool:
        """OnlySentRequestsExecuted (C&L 4.1: requests are signed by their clients): honest replicas
        execute only requests some client sent, or null requests."""
        return all(op == NULL or self.client_sent(op) for i in self.honest for op in s.replicas[i].executed)

    def executed_at_most_once(self, s: State) -> bool:
        """ExecutedAtMostOnce (C&L 4.1: timestamps give exactly-once semantics): no honest replica
        executes a request twice."""
        for i in self.honest:
            ops = [op for op in s.replicas[i].executed if op != NULL]
            if len(ops) != len(set(ops)):
                return False
        return True

    def checkpoint_agreement(self, s: State) -> bool:
        """CheckpointAgreement (C&L 4.3): at most one state is certified stable per sequence number,
        and it is the executed prefix of every honest replica that got that far."""
        certified: dict[int, Ops] = {}
        for n, st in self.stable_checkpoints(s):
            if certified.setdefault(n, st) != st:
                return False
        return all(
            s.replicas[i].executed[:n] == st
            for n, st in certified.items()
            for i in self.honest
            if len(s.replicas[i].executed) >= n
        )

    def client_accepts_only_correct_results(self, s: State) -> bool:
        """ClientAcceptsOnlyCorrectResults (C&L 4.1: the client waits for f + 1 matching replies): any
        result that reply_quorum(f) replicas (Byzantine ones replying anything) can vouch for is
        the result the request has in the longest honest executed log."""
        logs = [s.replicas[i].executed for i in self.honest]
        longest = max(logs, key=len)
        for request in self.requests:
            if request not in longest:
                continue
            correct = self.app.result(longest, request)
            support: dict[Hashable, int] = {}
            for ops in logs:
                if request in ops:
                    answer = self.app.result(ops, request)
                    support[answer] = support.get(answer, 0) + 1
            for answer, count in support.items():
                if count + len(self.byzantine) >= reply_quorum(self.config.faulty) and answer != correct:
                    return False
        return True

    def invariants(self) -> dict[str, Callable[[State], bool]]:
        found: dict[str, Callable[[State], bool]] = {
            "Agreement": self.agreement,
            "ExecutedPrefix": self.executed_prefix,
            "OnlySentRequestsExecuted": self.only_sent_requests_executed,
            "ExecutedAtMostOnce": self.executed_at_most_once,
            "CheckpointAgreement": self.checkpoint_agreement,
            "ClientAcceptsOnlyCorrectResults": self.client_accepts_only_correct_results,
        }
        for name, holds in self.app.invariants.items():
            found[name] = self._on_every_honest_log(holds)
        return found

    def _on_every_honest_log(self, holds: Callable[[Ops], bool]) -> Callable[[State], bool]:
        def check(s: State) -> bool:
            return all(holds(ops) for ops in {s.replicas[i].executed for i in self.honest})

        return check

    # ----------------------------------------------------------------- symmetry

    def symmetric_replicas(self) -> tuple[int, ...]:
        """Honest replicas that are primary of no explored view: interchangeable."""
        primaries = {self.primary(v) for v in self.views}
        return tuple(i for i in self.honest if i not in primaries)

    def symmetry(self) -> Callable[[State], Hashable] | None:
        """The representative of the state's orbit under renaming interchangeable replicas.

        A replica's messages live in its own record, so renaming replicas is
        permuting records: sorting the interchangeable records (by hash; ties
        keep their order, which only costs reduction) picks one permutation,
        and equal representatives are always states of one orbit.
        """
        slots = self.symmetric_replicas()
        if len(slots) < 2:
            return None

        def representative(s: State) -> Hashable:
            replicas = list(s.replicas)
            for slot, record in zip(slots, sorted((replicas[j] for j in slots), key=hash), strict=True):
                replicas[slot] = record
            return s._replace(replicas=tuple(replicas))

        return representative

    def new_view_pending(self, s: State, view: int) -> bool:
        """Whether a NEW-VIEW for ``view`` can still be computed or accepted by an honest replica."""
        primary = self.primary(view)
        if primary not in self.config.byzantine:
            r = s.replicas[primary]
            if r.view < view or (r.view == view and r.changing):
                return True
        return any(
            s.replicas[i].view < view or (s.replicas[i].view == view and s.replicas[i].changing)
            for i in self.honest
        )

    def collect(self, s: State, parent: State) -> State:
        """Garbage-collect the messages no future step or invariant can read, after a step from ``parent``.

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
        live_views, pending, collected = self.liveness_of(s)
        before = self.liveness_of(parent) if parent is not self._liveness_parent else self._parent_liveness
        self._liveness_parent, self._parent_liveness = parent, before
        if (live_views, pending, collected) == before:
            return s  # ``parent`` was collected and nothing more became unreadable
        replicas = list(s.replicas)
        for i in self.honest:
            r = replicas[i]
            proposals, prepares, commits, view_changes = r[4:8]
            if live_views != before[0]:
                proposals = frozenset(e for e in proposals if e[0] in live_views)
                prepares = frozenset(e for e in prepares if e[0] in live_views)
            if collected != before[2]:
                commits = frozenset(e for e in commits if e[1] > collected)
            if pending != before[1]:
                view_changes = frozenset(vc for vc in view_changes if vc.view in pending)
            replicas[i] = Replica(*r[:4], proposals, prepares, commits, view_changes, r.timer)
        new_views = s.new_views
        if pending != before[1]:
            new_views = frozenset(nv for nv in new_views if nv.view in pending)
        return State(tuple(replicas), new_views, s.decided, s.gst)

    def liveness_of(self, s: State) -> tuple[frozenset[int], frozenset[int], int]:
        """What decides which messages are readable: the views whose PREPAREs are live, the views
        whose NEW-VIEW is pending, and the lowest honest low watermark (messages at or below it
        are collected). Each only shrinks or grows monotonically along a behaviour."""
        honest = [s.replicas[i] for i in self.honest]
        pending = frozenset(w for w in self.views if w > 0 and self.new_view_pending(s, w))
        lowest_view = min(r.view for r in honest)
        live = frozenset(v for v in self.views if v >= lowest_view or any(w > v for w in pending))
        return live, pending, min(r.stable for r in honest)

    def model(self, name: str, constants: Mapping[str, object], doc: str = "") -> Model[State]:
        return Model(
            name=name,
            init=self.init,
            actions=self.actions(),
            invariants=self.invariants(),
            properties=self.properties(),
            fairness=self.fairness(),
            symmetry=None if self.config.liveness else self.symmetry(),
            constants=dict(constants),
            doc=doc,
            warnings=self.config.warnings(),
        )


# --------------------------------------------------------------------------- small pure helpers


def _adopt_checkpoint(r: Replica, stable: int, state: Ops) -> Replica:
    """Move h up to a stable checkpoint, fetching its state if not executed that far (C&L 4.3, 4.4)."""
    if stable <= r.stable:
        return r
    executed = r.executed if len(r.executed) >= stable else state
    return r._replace(stable=stable, executed=executed)


def build(
    *,
    replicas: int,
    faulty: int,
    byzantine: Iterable[int],
    requests: int,
    max_view: int,
    checkpoint_interval: int,
    window: int,
    max_seq: int,
    bug: int | str = 0,
    liveness: bool = False,
    async_views: int = 1,
    delay_level: int = 1,
    name: str = "pbft",
    app: Application = COUNTER,
) -> Model[State]:
    """A PBFT model from plain constants (what ``ModelSpec.build`` receives)."""
    config = PbftConfig(
        replicas=replicas,
        faulty=faulty,
        byzantine=frozenset(byzantine),
        requests=requests,
        max_view=max_view,
        checkpoint_interval=checkpoint_interval,
        window=window,
        max_seq=max_seq,
        bug=parse_bug(bug),
        liveness=liveness,
        async_views=async_views,
        delay_level=delay_level,
    )
    constants = {k: getattr(config, k) for k in CONSTANT_DOCS}
    return Pbft(config, app).model(name, constants)


def parse_bug(bug: int | str) -> PbftBug:
    """A PbftBug from its name (any case) or number; ConstantError names the valid ones."""
    try:
        return PbftBug[bug.upper()] if isinstance(bug, str) else PbftBug(bug)
    except (KeyError, ValueError):
        valid = ", ".join(b.name.lower() for b in PbftBug)
        raise ConstantError(f"unknown PBFT bug {bug!r}; valid: {valid}") from None
