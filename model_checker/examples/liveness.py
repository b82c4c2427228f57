"""Small models whose temporal properties hinge on fairness; they validate the liveness engine.

``mutex``: one client competes with an adversary for a lock. The adversary
grabs and releases the lock at will, so the client's ``Enter`` is enabled only
intermittently: weak fairness of ``Enter`` does not get the client in (the
adversary may grab the lock every time), strong fairness does. Without
fairness on ``Release`` the adversary may hold the lock forever.

``countdown``: ``Dec`` counts down to 0; with ``kick`` an unfair ``Kick``
restarts the count from 0, which breaks ``<>[](x = 0)`` on a fair behaviour.
"""

from __future__ import annotations

from collections.abc import Iterator
from enum import Enum, IntEnum
from typing import NamedTuple

from model_checker.model import (
    Action,
    Fairness,
    Model,
    ModelSpec,
    always_eventually,
    eventually,
    eventually_always,
    leads_to,
    strong_fairness,
    weak_fairness,
)


class Phase(IntEnum):
    """Where the client is."""

    IDLE = 0
    WAITING = 1
    CRITICAL = 2


class MutexState(NamedTuple):
    held: bool
    """The adversary holds the lock."""
    phase: Phase


class EnterFairness(Enum):
    """The fairness the client's ``Enter`` gets."""

    STRONG = "strong"
    WEAK = "weak"
    NONE = "none"


NO_VALUES = ()


def mutex(enter: EnterFairness | str = EnterFairness.STRONG, release_fair: bool = True) -> Model[MutexState]:
    """The lock race; ``enter`` is the fairness of ``Enter``: ``strong``, ``weak`` or ``none``."""
    enter = EnterFairness(enter)

    def Init() -> Iterator[MutexState]:
        yield MutexState(False, Phase.IDLE)

    def Request(s: MutexState) -> Iterator[tuple[tuple[()], MutexState]]:
        if s.phase == Phase.IDLE:
            yield NO_VALUES, s._replace(phase=Phase.WAITING)

    def Enter(s: MutexState) -> Iterator[tuple[tuple[()], MutexState]]:
        if s.phase == Phase.WAITING and not s.held:
            yield NO_VALUES, s._replace(phase=Phase.CRITICAL)

    def Exit(s: MutexState) -> Iterator[tuple[tuple[()], MutexState]]:
        if s.phase == Phase.CRITICAL:
            yield NO_VALUES, s._replace(phase=Phase.IDLE)

    def Grab(s: MutexState) -> Iterator[tuple[tuple[()], MutexState]]:
        if not s.held and s.phase != Phase.CRITICAL:
            yield NO_VALUES, s._replace(held=True)

    def Release(s: MutexState) -> Iterator[tuple[tuple[()], MutexState]]:
        if s.held:
            yield NO_VALUES, s._replace(held=False)

    fairness: list[Fairness] = [weak_fairness("Request"), weak_fairness("Exit")]
    if release_fair:
        fairness.append(weak_fairness("Release"))
    if enter is EnterFairness.STRONG:
        fairness.append(strong_fairness("Enter"))
    elif enter is EnterFairness.WEAK:
        fairness.append(weak_fairness("Enter"))

    def critical(s: MutexState) -> bool:
        return s.phase == Phase.CRITICAL

    return Model(
        name="mutex",
        init=Init,
        actions=(
            Action("Request", Request),
            Action("Enter", Enter),
            Action("Exit", Exit),
            Action("Grab", Grab),
            Action("Release", Release),
        ),
        invariants={"MutualExclusion": lambda s: not (s.held and s.phase == Phase.CRITICAL)},
        properties=(
            leads_to("WaitingLeadsToCritical", lambda s: s.phase == Phase.WAITING, critical),
            always_eventually("InfinitelyOftenCritical", critical),
            eventually("EventuallyCritical", critical),
        ),
        fairness=tuple(fairness),
        constants={"enter": enter, "release_fair": release_fair},
        doc="a client racing an adversary for a lock",
    )


def countdown(N: int = 3, kick: bool = False) -> Model[int]:
    """``x`` counts down from ``N`` to 0 under WF(Dec); ``kick`` adds an unfair restart at 0."""

    def Init() -> Iterator[int]:
        yield N

    def Dec(x: int) -> Iterator[tuple[tuple[()], int]]:
        if x > 0:
            yield NO_VALUES, x - 1

    def Kick(x: int) -> Iterator[tuple[tuple[()], int]]:
        if kick and x == 0:
            yield NO_VALUES, N

    return Model(
        name="countdown",
        init=Init,
        actions=(Action("Dec", Dec), Action("Kick", Kick)),
        invariants={"InRange": lambda x: 0 <= x <= N},
        properties=(eventually_always("SettlesAtZero", lambda x: x == 0),),
        fairness=(weak_fairness("Dec"),),
        fields=lambda x: {"x": x},
        constants={"N": N, "kick": kick},
        doc="a counter that must settle at zero",
    )


MUTEX = ModelSpec(
    name="mutex",
    build=mutex,
    defaults={"enter": EnterFairness.STRONG, "release_fair": True},
    doc="lock race: liveness needs SF(Enter) (a WF vs SF example)",
    constant_docs={"enter": "fairness of Enter", "release_fair": "WF(Release)"},
)

COUNTDOWN = ModelSpec(
    name="countdown",
    build=countdown,
    defaults={"N": 3, "kick": False},
    doc="counter settling at zero (<>[] example); kick=True breaks it",
    constant_docs={"N": "start value", "kick": "allow an unfair restart at zero"},
)
