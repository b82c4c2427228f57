"""Lamport's TwoPhase commit (tlaplus/Examples ``transaction_commit/TwoPhase.tla``).

A port that keeps the TLA+ module's variables, action names and invariants,
so that its state counts can be compared with TLC's (RM=3: 288 states, depth
11; RM=5: 8,832 / 17; RM=7: 296,448 / 23). The state is a plain tuple
``(rmState, tmState, tmPrepared, msgs)`` because the checker's speed on this
model is measured: building a tuple is the cheapest successor Python has.

* ``rmState``    -- tuple indexed by resource manager ``rm - 1`` of ``RMState``
* ``tmState``    -- ``TMState``
* ``tmPrepared`` -- frozenset of the RMs the TM has heard ``Prepared`` from
* ``msgs``       -- frozenset of messages ever sent (never removed):
  ``(PREPARED, rm)``, ``(COMMIT,)``, ``(ABORT,)``

``commit_needs_all_prepared=False`` plants the classic bug (TMCommit without
waiting for every RM), which breaks ``TCConsistent``.

The TLA+ module has no liveness part; ours adds two temporal properties under
weak fairness of every action but ``RMChooseToAbort`` (per resource manager
where the action has one): all RMs eventually decide for good, and a commit
leads to every RM committing. Without ``WF(TMAbort)`` the first one fails:
prepared RMs wait forever for a TM that never decides (2PC's blocking).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from enum import IntEnum
from typing import Any, NamedTuple

from model_checker.model import Action, Model, ModelSpec, eventually_always, leads_to, weak_fairness


class RMState(IntEnum):
    """A resource manager's state (``rmState[rm]``)."""

    WORKING = 0
    PREPARED = 1
    COMMITTED = 2
    ABORTED = 3


class TMState(IntEnum):
    """The transaction manager's state (``tmState``)."""

    INIT = 0
    COMMITTED = 1
    ABORTED = 2


class MsgType(IntEnum):
    """The ``type`` field of a message record."""

    PREPARED = 0
    COMMIT = 1
    ABORT = 2


State = tuple[tuple[RMState, ...], TMState, frozenset[int], frozenset[tuple[int, ...]]]

WORKING, PREPARED, COMMITTED, ABORTED = RMState
COMMIT_MSG = (MsgType.COMMIT,)
ABORT_MSG = (MsgType.ABORT,)
NO_VALUES = ()


def two_phase(RM: int = 3, commit_needs_all_prepared: bool = True) -> Model[State]:
    """The TwoPhase model with resource managers ``1..RM``."""
    if RM < 1:
        raise ValueError("RM must be at least 1")
    rms = tuple(range(1, RM + 1))
    all_rms = frozenset(rms)
    prepared_msg = {rm: (MsgType.PREPARED, rm) for rm in rms}
    with_rm = {rm: (rm,) for rm in rms}

    def set_rm(rm_state: tuple[RMState, ...], rm: int, value: RMState) -> tuple[RMState, ...]:
        """``[rmState EXCEPT ![rm] = value]`` (via a list: the fastest way to rebuild a tuple)."""
        updated = list(rm_state)
        updated[rm - 1] = value
        return tuple(updated)

    def TPInit() -> Iterator[State]:
        yield (WORKING,) * RM, TMState.INIT, frozenset(), frozenset()

    def TMRcvPrepared(s: State) -> Iterator[tuple[tuple[int], State]]:
        rm_state, tm_state, tm_prepared, msgs = s
        if tm_state == TMState.INIT:
            for rm in rms:
                if prepared_msg[rm] in msgs:
                    yield with_rm[rm], (rm_state, tm_state, tm_prepared | {rm}, msgs)

    def TMCommit(s: State) -> Iterator[tuple[tuple[()], State]]:
        rm_state, tm_state, tm_prepared, msgs = s
        if tm_state == TMState.INIT and (tm_prepared == all_rms or not commit_needs_all_prepared):
            yield NO_VALUES, (rm_state, TMState.COMMITTED, tm_prepared, msgs | {COMMIT_MSG})

    def TMAbort(s: State) -> Iterator[tuple[tuple[()], State]]:
        rm_state, tm_state, tm_prepared, msgs = s
        if tm_state == TMState.INIT:
            yield NO_VALUES, (rm_state, TMState.ABORTED, tm_prepared, msgs | {ABORT_MSG})

    def RMPrepare(s: State) -> Iterator[tuple[tuple[int], State]]:
        rm_state, tm_state, tm_prepared, msgs = s
        for rm in rms:
            if rm_state[rm - 1] == WORKING:
                yield (
                    with_rm[rm],
                    (set_rm(rm_state, rm, PREPARED), tm_state, tm_prepared, msgs | {prepared_msg[rm]}),
                )

    def RMChooseToAbort(s: State) -> Iterator[tuple[tuple[int], State]]:
        rm_state, tm_state, tm_prepared, msgs = s
        for rm in rms:
            if rm_state[rm - 1] == WORKING:
                yield with_rm[rm], (set_rm(rm_state, rm, ABORTED), tm_state, tm_prepared, msgs)

    def RMRcvCommitMsg(s: State) -> Iterator[tuple[tuple[int], State]]:
        rm_state, tm_state, tm_prepared, msgs = s
        if COMMIT_MSG in msgs:
            for rm in rms:
                if rm_state[rm - 1] == COMMITTED:
                    yield with_rm[rm], s  # enabled, but a stuttering step
                else:
                    yield with_rm[rm], (set_rm(rm_state, rm, COMMITTED), tm_state, tm_prepared, msgs)

    def RMRcvAbortMsg(s: State) -> Iterator[tuple[tuple[int], State]]:
        rm_state, tm_state, tm_prepared, msgs = s
        if ABORT_MSG in msgs:
            for rm in rms:
                if rm_state[rm - 1] == ABORTED:
                    yield with_rm[rm], s  # enabled, but a stuttering step
                else:
                    yield with_rm[rm], (set_rm(rm_state, rm, ABORTED), tm_state, tm_prepared, msgs)

    message_space = frozenset({COMMIT_MSG, ABORT_MSG, *prepared_msg.values()})

    def TPTypeOK(s: State) -> bool:
        """Type correctness: each variable ranges over its TLA+ type (``TPTypeOK``)."""
        rm_state, tm_state, tm_prepared, msgs = s
        return (
            len(rm_state) == RM
            and all(isinstance(r, RMState) for r in rm_state)
            and isinstance(tm_state, TMState)
            and tm_prepared <= all_rms
            and msgs <= message_space
        )

    def TCConsistent(s: State) -> bool:
        """No RM has committed while another has aborted (the commit protocol's safety)."""
        rm_state = s[0]
        return not (COMMITTED in rm_state and ABORTED in rm_state)

    def all_decided(s: State) -> bool:
        return all(r in (COMMITTED, ABORTED) for r in s[0])

    def fields(s: State) -> Mapping[str, Any]:
        rm_state, tm_state, tm_prepared, msgs = s
        return {
            "rmState": {rm: rm_state[rm - 1] for rm in rms},
            "tmState": tm_state,
            "tmPrepared": tm_prepared,
            "msgs": frozenset(_message_record(m) for m in msgs),
        }

    return Model(
        name="two-phase",
        init=TPInit,
        actions=(
            Action("TMRcvPrepared", TMRcvPrepared, ("rm",)),
            Action("TMCommit", TMCommit),
            Action("TMAbort", TMAbort),
            Action("RMPrepare", RMPrepare, ("rm",)),
            Action("RMChooseToAbort", RMChooseToAbort, ("rm",)),
            Action("RMRcvCommitMsg", RMRcvCommitMsg, ("rm",)),
            Action("RMRcvAbortMsg", RMRcvAbortMsg, ("rm",)),
        ),
        invariants={"TPTypeOK": TPTypeOK, "TCConsistent": TCConsistent},
        properties=(
            eventually_always("AllDecide", all_decided, "every RM ends committed or aborted, for good"),
            leads_to(
                "CommitLeadsToAllCommitted",
                lambda s: s[1] == TMState.COMMITTED,
                lambda s: all(r == COMMITTED for r in s[0]),
                "once the TM commits, every RM commits",
            ),
        ),
        fairness=(
            weak_fairness("TMRcvPrepared", per_instance=True),
            weak_fairness("TMCommit"),
            weak_fairness("TMAbort"),
            weak_fairness("RMPrepare", per_instance=True),
            weak_fairness("RMRcvCommitMsg", per_instance=True),
            weak_fairness("RMRcvAbortMsg", per_instance=True),
        ),
        fields=fields,
        constants={"RM": RM, "commit_needs_all_prepared": commit_needs_all_prepared},
        doc="Lamport's TwoPhase commit protocol",
    )


class PreparedMsg(NamedTuple):
    """``[type |-> "Prepared", rm |-> r]``, as traces print it."""

    type: MsgType
    rm: int


class ControlMsg(NamedTuple):
    """``[type |-> "Commit"]`` or ``[type |-> "Abort"]``, as traces print it."""

    type: MsgType


def _message_record(message: tuple[int, ...]) -> PreparedMsg | ControlMsg:
    if message[0] == MsgType.PREPARED:
        return PreparedMsg(MsgType.PREPARED, message[1])
    return ControlMsg(MsgType(message[0]))


TWO_PHASE = ModelSpec(
    name="two-phase",
    build=two_phase,
    defaults={"RM": 3, "commit_needs_all_prepared": True},
    doc="Lamport's TwoPhase commit (TLC: RM=3 288 states, RM=5 8,832, RM=7 296,448)",
    constant_docs={
        "RM": "number of resource managers",
        "commit_needs_all_prepared": "TMCommit waits for every RM; False plants the classic bug",
    },
)
