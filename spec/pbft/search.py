"""``SearchPbft``: the PBFT protocol as the checker runs it, with per-state memo caches.

The checker expands one state at a time: it runs every action on a state,
then moves on. Several actions read the same facts of that state (vote
tallies, stable checkpoints), and ``Quiescent`` asks whether any other action
was enabled, which the checker has just found out. So this subclass remembers
each fact for the state last seen (by identity: the checker holds that state
while it runs the actions) and notes which actions produced a successor. Facts
that read a small part of the state (what is readable, from the watermarks;
stable checkpoints, from the executed logs) are memoised by that part, across
states. The memos change no result: ``Pbft`` computes the same values afresh.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

from model_checker.model import Action
from spec.pbft import reductions
from spec.pbft.config import COUNTER, Application, PbftConfig
from spec.pbft.protocol import Pbft, Step, enabled
from spec.pbft.state import Logs, Ops, State, Tally


class SearchPbft(Pbft):
    """``Pbft`` with per-state memos; one instance serves one search at a time."""

    def __init__(
        self, config: PbftConfig, app: Application = COUNTER, *, byzantine_silent: bool = False
    ) -> None:
        super().__init__(config, app, byzantine_silent=byzantine_silent)
        self._tallied: State | None = None
        self._tally = Tally(Counter(), Counter())
        self._stable_of: State | None = None
        self._stable: frozenset[tuple[int, Ops]] = frozenset()
        self._readable: dict[tuple[tuple[int, bool, int], ...], reductions.Readable] = {}
        """By ``reductions.watermarks``, all that ``readable`` reads: a few dozen entries."""
        self._certified_by_logs: dict[Logs, frozenset[tuple[int, Ops]]] = {}
        """By the honest executed logs, all that ``certified_checkpoints`` reads."""
        self._probe_state: State | None = None
        self._probe_calls = 0
        self._probe_enabled = False

    def tally(self, s: State) -> Tally:
        if s is not self._tallied:
            self._tally, self._tallied = super().tally(s), s
        return self._tally

    def stable_checkpoints(self, s: State) -> frozenset[tuple[int, Ops]]:
        if s is not self._stable_of:
            self._stable, self._stable_of = super().stable_checkpoints(s), s
        return self._stable

    def certified_checkpoints(self, logs: Logs) -> frozenset[tuple[int, Ops]]:
        found = self._certified_by_logs.get(logs)
        if found is None:
            found = self._certified_by_logs[logs] = super().certified_checkpoints(logs)
        return found

    def readable(self, s: State) -> reductions.Readable:
        key = reductions.watermarks(self, s)
        found = self._readable.get(key)
        if found is None:
            found = self._readable[key] = super().readable(s)
        return found

    def actions(self) -> tuple[Action[State], ...]:
        """Next, each progress action noting whether it produced a successor (for ``quiescent``)."""
        probed = tuple(Action(a.name, self._probed(a.step), a.params) for a in self.progress_actions)
        return (*probed, Action("Quiescent", self.quiescent))

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
        """``Pbft.quiescent``, with enabledness taken from the progress actions just run on ``s``
        when the checker ran them all, in order, and recomputed otherwise."""
        if s is self._probe_state and self._probe_calls == len(self.progress_actions):
            quiet = not self._probe_enabled
        else:
            quiet = not any(enabled(a.step, s) for a in self.progress_actions)
        if quiet:
            yield (), s
