"""PBFT's actions (Castro and Liskov, OSDI'99, section 4), each a guard then an effect.

``Pbft`` holds what one configuration fixes (who is honest, the quorums, the
sequence numbers and views explored) and reads the network of a state (vote
counts, certificates, stable checkpoints). Every method is a pure function of
its arguments: the search-time memo caches live in ``spec.pbft.search``.

Byzantine replicas have no state and send nothing into the set: whatever they
can sign is always available. Vote counts add every Byzantine replica as voting
for whatever is being counted; a Byzantine primary's PRE-PREPARE exists for
every request; a Byzantine VIEW-CHANGE may claim any stable checkpoint and any
subset of the prepared certificates that exist (honest signatures cannot be
forged); a Byzantine NEW-VIEW may carry any O that backups recompute correctly
from some valid V. ``honest_view`` is the same protocol with Byzantine
replicas silent: what honest replicas can do on their own messages, which is
what fairness may oblige (spec.pbft.properties).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from functools import cached_property
from itertools import chain, combinations, product
from typing import Any

from model_checker.model import Action
from spec.pbft import reductions
from spec.pbft.config import COUNTER, Application, PbftBug, PbftConfig
from spec.pbft.state import (
    NULL,
    Logs,
    NewView,
    Ops,
    Proposals,
    Replica,
    State,
    Tally,
    ViewChange,
    adopt_checkpoint,
    initial_state,
    with_replica,
)
from spec.quorum import prepare_quorum, quorum, view_change_join

Step = Callable[[State], Iterable[tuple[Any, State]]]
"""An action's step function."""


def enabled(step: Step, s: State) -> bool:
    """ENABLED: whether ``step`` has a successor of ``s``."""
    return next(iter(step(s)), None) is not None


class Pbft:
    """The PBFT actions for one configuration and application, and what they read of a state.

    With ``byzantine_silent`` Byzantine replicas send nothing (no votes, no
    PRE-PREPARE, VIEW-CHANGE or NEW-VIEW): ``honest_view`` is that instance.
    """

    def __init__(
        self, config: PbftConfig, app: Application = COUNTER, *, byzantine_silent: bool = False
    ) -> None:
        self.config = config
        self.app = app
        self.byzantine_silent = byzantine_silent
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
        voting = () if byzantine_silent else self.byzantine
        self.byzantine_votes = len(voting)
        """Byzantine replicas counted as voting for whatever is counted."""
        self.byzantine_backups = [sum(1 for b in voting if b != self.primary(v)) for v in self.views]
        """Per view, the Byzantine backups counted as having sent a matching PREPARE."""
        self.byzantine_offers = (
            [] if byzantine_silent else [(n, d) for n in self.seqs for d in (*self.requests, self.forged)]
        )
        """What a Byzantine primary can pre-prepare: any request, sent or not, at any sequence number."""

    @cached_property
    def honest_view(self) -> Pbft:
        """This protocol with Byzantine replicas silent (an instance of the same class)."""
        return self if self.byzantine_silent else type(self)(self.config, self.app, byzantine_silent=True)

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
        """Honest PREPARE and COMMIT counts of ``s``."""
        records = [s.replicas[i] for i in self.honest]
        return Tally(
            Counter(chain.from_iterable(r.prepares for r in records)),
            Counter(chain.from_iterable(r.commits for r in records)),
        )

    def prepare_votes(self, s: State, entry: tuple[int, int, int]) -> int:
        """Distinct backups with a PREPARE matching (view, seq, digest) (see ``counted_prepares``)."""
        return self.counted_prepares(self.tally(s), entry)

    def counted_prepares(self, votes: Tally, entry: tuple[int, int, int]) -> int:
        """Distinct backups with a PREPARE matching ``entry``, of one state's honest ``votes``;
        Byzantine backups always have one.

        Honest primaries never send PREPAREs, so every honest PREPARE is a backup's.
        """
        count = votes.prepares[entry] + self.byzantine_backups[entry[0]]
        return 2 * count if self.config.bug is PbftBug.PREPARE_COUNTED_TWICE else count

    def commit_votes(self, s: State, entry: tuple[int, int, int]) -> int:
        """Distinct replicas with a COMMIT matching (view, seq, digest) (see ``counted_commits``)."""
        return self.counted_commits(self.tally(s), entry)

    def counted_commits(self, votes: Tally, entry: tuple[int, int, int]) -> int:
        """Distinct replicas with a COMMIT matching ``entry``, of one state's honest ``votes``;
        Byzantine ones always have one."""
        return votes.commits[entry] + self.byzantine_votes

    def has_prepared_certificate(self, s: State, entry: tuple[int, int, int]) -> bool:
        """A PRE-PREPARE plus prepare_quorum matching PREPAREs from distinct backups (C&L 4.2)."""
        return self._certified(s, self.tally(s), entry)

    def _certified(self, s: State, votes: Tally, entry: tuple[int, int, int]) -> bool:
        sent = self.byzantine_primary(entry[0]) or entry in s.replicas[self.primary(entry[0])].proposals
        return sent and self.counted_prepares(votes, entry) >= self.prepare_quorum

    def committed_local(self, s: State) -> Iterator[tuple[int, tuple[int, int, int]]]:
        """(replica, (view, seq, digest)) for every honest replica committed-local (C&L 4.2).

        COMMITs of a view count whenever they arrive, also after the replica left that view: a
        quorum of one view's COMMITs proves the request committed, so completing it late is
        safe, and the implementation does so for a batch it prepared there. Counting only the
        current view's COMMITs would forbid executing, after a view change, a batch that became
        committed-local before it (which C&L allow and the implementation does)."""
        votes = self.tally(s)
        for i in self.honest:
            for entry in s.replicas[i].commits:
                if self.counted_commits(votes, entry) >= self.commit_threshold:
                    yield i, entry

    def checkpoints_of(self, r: Replica) -> Iterator[tuple[int, Ops]]:
        """The CHECKPOINT(n, state) messages replica r has multicast: one per K-th executed request."""
        return self._checkpoints_after(r.executed)

    def _checkpoints_after(self, executed: Ops) -> Iterator[tuple[int, Ops]]:
        interval = self.config.checkpoint_interval
        for n in range(interval, len(executed) + 1, interval):
            yield n, executed[:n]

    def honest_logs(self, s: State) -> Logs:
        """The honest replicas' executed logs, in replica order."""
        return tuple([s.replicas[i].executed for i in self.honest])

    def stable_checkpoints(self, s: State) -> frozenset[tuple[int, Ops]]:
        """(seq, state) certified by a quorum of matching CHECKPOINTs (C&L 4.3)."""
        return self.certified_checkpoints(self.honest_logs(s))

    def certified_checkpoints(self, logs: Logs) -> frozenset[tuple[int, Ops]]:
        """The stable checkpoints of honest replicas that executed ``logs``: a replica's CHECKPOINTs
        follow from its log alone, and Byzantine ones vouch for any."""
        votes = Counter(chain.from_iterable(map(self._checkpoints_after, logs)))
        needed = self.quorum - self.byzantine_votes
        return frozenset(c for c, count in votes.items() if count >= needed)

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
        votes = self.tally(s)
        certificates = [
            (n, d, pv)
            for pv in range(view)
            for n in self.seqs
            for d in (NULL, *self.requests)
            if self._certified(s, votes, (pv, n, d))
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
        if self.byzantine and not self.byzantine_silent:
            forged = self.byzantine_view_changes(s, view)
            senders.update({b: forged for b in self.byzantine})
        results = set()
        for group in combinations(sorted(senders), self.quorum):
            if own is None or own in group:
                for chosen in product(*(senders[j] for j in group)):
                    results.add(self.compute_proposals(chosen)._replace(view=view))
        return sorted(results)

    def new_views_for(self, s: State, view: int) -> list[NewView]:
        """The NEW-VIEWs for ``view`` a backup can receive: the honest primary's, or a Byzantine one's."""
        if self.byzantine_primary(view):
            return [] if self.byzantine_silent else self.new_view_options(s, view, own=None)
        return sorted(nv for nv in s.new_views if nv.view == view)

    def readable(self, s: State) -> reductions.Readable:
        """What of ``s``'s messages its future steps can still read (spec.pbft.reductions.readable)."""
        return reductions.readable(self, s)

    def collect(self, s: State, parent: State) -> State:
        """``s`` without the messages that became unreadable in the step from ``parent``
        (spec.pbft.reductions.collect)."""
        return reductions.collect(self, s, self.readable(parent))

    # ----------------------------------------------------------------- actions

    def init(self) -> Iterator[State]:
        yield initial_state(self.config.replicas)

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
                    yield (i, seq, d), with_replica(s, i, replica)

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
                offers = self.byzantine_offers
            else:
                offers = [(n, d) for (pv, n, d) in s.replicas[self.primary(v)].proposals if pv == v]
            for n, d in offers:
                if n not in taken and self.in_window(r, n) and self.client_sent(d):
                    replica = r._replace(prepares=r.prepares | {(v, n, d)})
                    yield (i, n, d), with_replica(s, i, replica)

    def commit(self, s: State) -> Iterator[tuple[tuple[int, int, int], State]]:
        """A replica becomes prepared and multicasts COMMIT (C&L 4.2)."""
        votes = self.tally(s)
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
                    and self.counted_prepares(votes, entry) >= self.prepare_quorum
                ):
                    nxt = with_replica(s, i, r._replace(commits=r.commits | {entry}))
                    if self.counted_commits(votes, entry) + 1 >= self.commit_threshold:
                        nxt = nxt._replace(decided=s.decided | {(n, d)})
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
                replica = r._replace(executed=(*r.executed, NULL if repeat else d))
                yield (i, d), with_replica(s, i, replica)

    def stabilize_checkpoint(self, s: State) -> Iterator[tuple[tuple[int, int], State]]:
        """A quorum of matching CHECKPOINTs makes a checkpoint stable: h advances and the log below
        it is discarded (C&L 4.3); a replica that has not executed that far fetches the state."""
        stable = self.stable_checkpoints(s)
        for i in self.honest:
            r = s.replicas[i]
            for n, st in sorted(stable):
                if n > r.stable and (len(r.executed) < n or r.executed[:n] == st):
                    yield (i, n), self.collect(with_replica(s, i, adopt_checkpoint(r, n, st)), s)

    def start_view_change(self, s: State) -> Iterator[tuple[tuple[int, int], State]]:
        """A replica's timer expires: it moves to view v + 1 and multicasts VIEW-CHANGE (C&L 4.4).

        In safety models a timer may expire at any time. In liveness models see
        ``timer_may_expire``; each expiry doubles the timeout (C&L 4.5.2).
        """
        for i in self.honest:
            r = s.replicas[i]
            if r.view >= self.config.max_view:
                if self.views_exhausted(s, i):
                    yield (i, r.view + 1), with_replica(s, i, r._replace(view=r.view + 1))
                continue
            if self.config.liveness and not self.timer_may_expire(s, i):
                continue
            replica = self._view_change(r, r.view + 1, self._doubled(r.timer))
            yield (i, r.view + 1), self.collect(with_replica(s, i, replica), s)

    def _view_change(self, r: Replica, view: int, timer: int) -> Replica:
        """``r`` moved to ``view``, having multicast its VIEW-CHANGE: C and P as of now."""
        prepared = frozenset((n, d, v) for (v, n, d) in r.commits if n > r.stable)
        message = ViewChange(view, r.stable, r.executed[: r.stable], prepared)
        return r._replace(view=view, changing=True, view_changes=r.view_changes | {message}, timer=timer)

    def new_view(self, s: State) -> Iterator[tuple[tuple[int, Proposals], State]]:
        """The new primary, holding a quorum of VIEW-CHANGEs (its own among them), multicasts
        NEW-VIEW and logs the PRE-PREPAREs of O (C&L 4.4)."""
        for i in self.honest:
            r = s.replicas[i]
            if not r.changing or self.primary(r.view) != i:
                continue
            for message in self.new_view_options(s, r.view, own=i):
                replica = adopt_checkpoint(r._replace(changing=False), message.stable, message.stable_state)
                logged = {(r.view, n, d) for n, d in message.proposals if self.in_window(replica, n)}
                replica = replica._replace(proposals=replica.proposals | logged)
                nxt = with_replica(s, i, replica)._replace(new_views=s.new_views | {message})
                yield (i, message.proposals), self.collect(nxt, s)

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
                    offers[view] = self.new_views_for(s, view)
                for message in offers[view]:
                    replica = adopt_checkpoint(
                        r._replace(view=view, changing=False), message.stable, message.stable_state
                    )
                    sent = {(view, n, d) for n, d in message.proposals if self.in_window(replica, n)}
                    replica = replica._replace(prepares=replica.prepares | sent)
                    yield (i, view, message.proposals), self.collect(with_replica(s, i, replica), s)

    # ----------------------------------------------------------------- partial synchrony (liveness models)

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
                yield (i, view), self.collect(with_replica(s, i, replica), s)

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
                yield (i, k + 1), with_replica(s, i, r._replace(executed=(*r.executed, op)))

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
        return any(enabled(a.step, s) for a in self.honest_actions)

    # ----------------------------------------------------------------- Next

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

    @cached_property
    def honest_actions(self) -> tuple[Action[State], ...]:
        """Liveness models: the steps honest replicas take on honest messages alone: an ``Honest``
        copy of each progress action run on ``honest_view`` (timers are not messages, so
        StartViewChange has none; see ``timer_may_expire``), then JoinViewChange and CatchUp,
        which read honest messages only."""
        return (
            *(
                Action(f"Honest{a.name}", a.step, a.params)
                for a in self.honest_view.protocol_actions()
                if a.name != "StartViewChange"
            ),
            Action("JoinViewChange", self.join_view_change, ("replica", "view")),
            Action("CatchUp", self.catch_up, ("replica", "seq")),
        )

    @cached_property
    def progress_actions(self) -> tuple[Action[State], ...]:
        """Every action but ``Quiescent``: the protocol's, and in liveness models the honest copies
        (fairness is declared on them, so it never obliges a Byzantine replica to help) and GST."""
        protocol = self.protocol_actions()
        if not self.config.liveness:
            return protocol
        return (*protocol, *self.honest_actions, Action("GST", self.gst))

    def actions(self) -> tuple[Action[State], ...]:
        """Next: the progress actions, then ``Quiescent``."""
        return (*self.progress_actions, Action("Quiescent", self.quiescent))

    def quiescent(self, s: State) -> Iterator[tuple[tuple[()], State]]:
        """TLA+'s ``Terminating``: a state where no progress step is enabled stutters.

        The models are bounded (views, sequence numbers, requests), so running
        out of steps is how every behaviour ends, not a deadlock; whether
        honest replicas always make progress is a liveness question (the liveness
        properties).
        """
        if not any(enabled(a.step, s) for a in self.progress_actions):
            yield (), s
