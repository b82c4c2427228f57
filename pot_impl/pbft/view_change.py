"""PBFT's view change (Castro and Liskov, OSDI'99, section 4.4, with the liveness rules of 4.5.2).

A part of ``Replica``. It owns the current view and whether it is installed, the view-change
timer, the VIEW-CHANGE and NEW-VIEW messages held, and the agreement messages that arrived for
a view not installed yet.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pot_impl.auth import Verifier
from pot_impl.pbft.certificates import plan_new_view, valid_new_view, valid_view_change
from pot_impl.pbft.io import EventKind, Timer, TimerKind
from pot_impl.pbft.messages import Checkpoint, Commit, NewView, Prepare, PrePrepare, ViewChange
from pot_impl.pbft.outbox import Outbox
from pot_impl.pbft.quorums import view_change_join, view_change_quorum

if TYPE_CHECKING:
    from pot_impl.pbft.replica import Replica

MAX_TIMEOUT_DOUBLINGS = 16
"""Caps the exponential view-change timeout (2^16 times the base)."""
FUTURE_BUFFER_PER_SENDER = 256
"""Messages for a view not yet installed, kept per sender and replayed once it is."""


class ViewChanges:
    """Views of ``replica``: view 0 is installed at the start."""

    def __init__(self, replica: Replica, outbox: Outbox, verifier: Verifier) -> None:
        self._replica = replica
        self._config = replica.config
        self._out = outbox
        self._verifier = verifier
        self.view = 0
        """The current view (the target view while a view change is in progress)."""
        self.active = True
        """False between sending a view-change and installing the matching new-view."""
        self.held: dict[int, dict[int, ViewChange]] = {}
        """Valid view-changes per target view and sender."""
        self._own: dict[int, ViewChange] = {}
        self.new_views: dict[int, NewView] = {}
        self.streak = 0
        """Consecutive view changes without executing a request (the timeout is doubled this often)."""
        self._timer_armed = False
        self._resent = False
        self._future: dict[int, list[PrePrepare | Prepare | Commit]] = {}

    # ------------------------------------------------------------ the timer

    def on_timer(self, timer: Timer) -> None:
        if timer.view == self.view:
            self._timer_armed = False
            self._on_timeout()

    def _on_timeout(self) -> None:
        """In the normal case, suspect the primary. During a view change, first re-send our
        view-change (the network may have lost it; whoever installed the view answers with the
        new-view), and move on to the next view only once 2f+1 view-changes were held and still
        no new-view arrived. Either way, first ask whether others executed what we wait for."""
        self._replica.state_transfer.send_fetch()
        if self.active:
            self.start(self.view + 1)
            return
        held = self.held.get(self.view, {})
        if len(held) < view_change_quorum(self._config.n, self._config.f) or not self._resent:
            self._resent = True
            own = held.get(self._replica.id)
            if own is not None:
                self._out.broadcast(own)
            self.arm_timer()
            return
        self.start(self.view + 1)

    def _timeout(self) -> int:
        return self._config.view_change_timeout_ms << min(self.streak, MAX_TIMEOUT_DOUBLINGS)

    def arm_timer(self, restart: bool = False) -> None:
        """Section 4.4's timer. Normal case: started when a request waits to execute and the timer is
        not running, restarted (``restart``) when a request executes and others still wait, stopped
        when none waits; new requests do not restart it, or a primary that ignores requests would
        never be suspected. During a view change it always runs (see ``_on_timeout``), with the
        timeout doubled for every consecutive view change."""
        timer = Timer(TimerKind.VIEW_CHANGE, self.view)
        if self.active and not self._replica.normal_case.pending:
            if self._timer_armed:
                self._out.cancel_timer(timer)
            self._timer_armed = False
            return
        if self._timer_armed and not restart:
            return
        self._out.set_timer(timer, self._timeout())
        self._timer_armed = True

    def _stop_timer(self) -> None:
        self._out.cancel_timer(Timer(TimerKind.VIEW_CHANGE, self.view))
        self._timer_armed = False

    def progressed(self) -> None:
        """A request executed: the primary is doing its job."""
        self.streak = 0
        self.arm_timer(restart=True)

    def resume(self) -> None:
        """After a restart: the timer is not running; re-send a view-change in progress."""
        self._timer_armed = False
        if not self.active:
            own = self.held.get(self.view, {}).get(self._replica.id)
            if own is not None:
                self._out.broadcast(own)
            self._after_vote(self.view)
        self.join_higher_view_change()
        self.arm_timer()

    # ------------------------------------------------------------ view-changes

    def start(self, new_view: int) -> None:
        """Stop accepting agreement messages of this view; send VIEW-CHANGE(new_view, n, C, P, i)."""
        if new_view <= self.view:
            return
        replica = self._replica
        self._stop_timer()
        self.view = new_view
        self.active = False
        self._resent = False
        self.streak += 1
        stable_seq = replica.stable_checkpoint
        certificates = replica.normal_case.prepared_certificates
        prepared = tuple(c for n, c in sorted(certificates.items()) if n > stable_seq)
        vc = self._out.sign(ViewChange(new_view, stable_seq, replica.stable_proof, prepared, replica.id))
        self._out.event(EventKind.VIEW_CHANGE, seq=stable_seq, reason="sent")
        self._store(vc)
        self._out.broadcast(vc)
        self._after_vote(new_view)

    def on_view_change(self, vc: ViewChange) -> None:
        if vc.new_view < self.view or (vc.new_view == self.view and self.active):
            if vc.replica != self._replica.id and not self._superseded(vc):
                self._help_lagging_replica(vc)
            return
        if vc.replica in self.held.get(vc.new_view, {}):
            return
        if not valid_view_change(self._config, self._verifier, vc):
            self._out.reject(vc, "invalid C or P set")
            return
        if vc.replica == self._replica.id:
            if not self._out.replaying:
                return
            # Replaying our own view-change after a restart: re-enter that view change exactly as
            # sent (regenerating it could produce a different P set, which would be equivocation).
            self._stop_timer()
            self.view, self.active = vc.new_view, False
            self._resent = False
            self.streak += 1
        self._store(vc)
        self._out.event(EventKind.VIEW_CHANGE, seq=vc.stable_seq, peer=vc.replica, reason="received")
        if not self._out.replaying:
            self.join_higher_view_change()
        self._after_vote(vc.new_view)

    def _superseded(self, stale: ViewChange) -> bool:
        """We hold a view-change of the same sender for a later view: ``stale`` is a delayed old
        message, not a sign that its sender still waits in that view change."""
        return any(stale.replica in held for view, held in self.held.items() if view > stale.new_view)

    def _help_lagging_replica(self, stale: ViewChange) -> None:
        """The sender still waits in a view change we are past (the network lost messages and does
        not retransmit). If we installed a view, the new-view proves it; otherwise our own earlier
        view-change for its view completes its quorum, and our current one counts toward its
        joining rule.

        The answer is itself a view-change the sender may find stale, so it must not feed back: a
        stale view-change whose sender already sent us a later one is not answered
        (``_superseded``); without that, two replicas in one view change answered each other's
        delayed view-changes for earlier views forever. Our current one goes first, so that in
        order the sender learns it before the stale one and need not answer at all."""
        new_view = self.new_views.get(self.view)
        if self.active and new_view is not None:
            self._out.send(stale.replica, new_view)
            return
        for view in (self.view, stale.new_view):
            own = self._own.get(view)
            if own is not None:
                self._out.send(stale.replica, own)

    def _store(self, vc: ViewChange) -> None:
        if vc.replica == self._replica.id:
            self._own[vc.new_view] = vc
        if vc.new_view > self.view:
            # Above our view, keep only each sender's latest: bounds what a Byzantine replica can store.
            for view, held in self.held.items():
                if view > self.view and view != vc.new_view:
                    held.pop(vc.replica, None)
        self.held.setdefault(vc.new_view, {})[vc.replica] = vc
        self._out.persist(vc)
        self.held = {v: vcs for v, vcs in self.held.items() if v >= self.view and vcs}

    def join_higher_view_change(self) -> None:
        """Liveness rule: on valid view-changes for views above ours from f+1 distinct replicas, move to
        the smallest such view (even before our own timer expires)."""
        highest: dict[int, int] = {}
        for view, vcs in self.held.items():
            if view > self.view:
                for sender in vcs:
                    if sender != self._replica.id:
                        highest[sender] = max(highest.get(sender, view), view)
        if len(highest) >= view_change_join(self._config.n, self._config.f):
            self.start(min(highest.values()))

    def _after_vote(self, view: int) -> None:
        if view != self.view or self.active:
            return
        self.arm_timer()
        if self._replica.is_primary and view not in self.new_views and not self._out.replaying:
            self.send_new_view()

    # ------------------------------------------------------------ new views

    def send_new_view(self) -> None:
        """New primary: with 2f+1 view-changes (own included) compute O and send NEW-VIEW(v, V, O)."""
        own_id = self._replica.id
        held = self.held.get(self.view, {})
        if own_id not in held or len(held) < view_change_quorum(self._config.n, self._config.f):
            return
        others = [held[r] for r in sorted(held) if r != own_id]
        chosen = (held[own_id], *others[: view_change_quorum(self._config.n, self._config.f) - 1])
        plan = plan_new_view(chosen)
        o_set = []
        for seq, digest, batch in plan.proposals:
            pp = self._out.sign(PrePrepare(self.view, seq, digest, batch, own_id))
            o_set.append(pp)
        nv = self._out.sign(NewView(self.view, chosen, tuple(o_set), own_id))
        self._out.broadcast(nv)
        self.install_new_view(nv, plan.min_seq, plan.min_seq_proof)

    def on_new_view(self, nv: NewView) -> None:
        if nv.view < self.view or (nv.view == self.view and self.active):
            return
        plan = valid_new_view(self._config, self._verifier, nv)
        if plan is None:
            self._out.reject(nv, "invalid V or O does not match V")
            return
        self.install_new_view(nv, plan.min_seq, plan.min_seq_proof)

    def install_new_view(self, nv: NewView, min_seq: int, min_seq_proof: tuple[Checkpoint, ...]) -> None:
        """Enter view ``nv.view``: adopt the checkpoint min-s, accept every pre-prepare in O (sending
        prepares as a backup) and resume normal operation. Requests already executed are not
        re-executed: execution only ever advances ``last_executed``.

        The view becomes active only once O is installed (C&L 4.4): until then a new primary must
        not assign fresh sequence numbers, or a checkpoint made stable on the way (adopting min-s,
        or executing O) would propose a new batch at a seq that O re-proposes, possibly one
        already committed elsewhere. With O in place ``next_seq`` is above max-s."""
        replica = self._replica
        normal_case = replica.normal_case
        self._out.persist(nv)
        self._stop_timer()
        self.view, self.active = nv.view, False
        self.new_views = {nv.view: nv}
        self._own = {}
        self.held = {v: vcs for v, vcs in self.held.items() if v > nv.view}
        normal_case.leave_views_below(nv.view)
        self._out.event(EventKind.NEW_VIEW, seq=min_seq)
        replica.checkpoints.adopt_proof(min_seq, min_seq_proof)
        normal_case.next_seq = max(replica.stable_checkpoint, min_seq) + 1
        for pp in nv.pre_prepares:
            if pp.seq > replica.stable_checkpoint:
                normal_case.accept_pre_prepare(pp, persist=False)
        self.active = True
        if not replica.is_primary and not self._out.replaying:
            for request in normal_case.pending.values():
                self._out.send(replica.primary, request)
        self._replay_future()
        self.arm_timer()
        if replica.is_primary:
            normal_case.propose_batches(flush=True)

    # ------------------------------------------------------------ messages ahead of the view

    def buffer_future(self, message: PrePrepare | Prepare | Commit) -> None:
        """Keep a message for a view not installed yet; the network does not retransmit it."""
        queue = self._future.setdefault(message.replica, [])
        if len(queue) >= FUTURE_BUFFER_PER_SENDER:
            queue.pop(0)
        queue.append(message)

    def _replay_future(self) -> None:
        buffered, self._future = self._future, {}
        for queue in buffered.values():
            for message in queue:
                if message.view == self.view:
                    self._replica.normal_case.on_agreement_message(message)
