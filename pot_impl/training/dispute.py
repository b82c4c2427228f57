"""The training side of the bisection dispute game: per-step state digests and the one-step referee.

In a dispute over a segment the trainer and the challenger each re-run it and
hash the state after every step (``trajectory``); the ledger's game (the
ledger specification's ``spec/dispute.py``) bisects their revealed digests
down to one step ``lo -> lo + 1`` whose start both accept and whose end they
contest. The trainer then supplies its full state after ``lo`` and coordinators
run ``referee``: the state must be the one whose digest was agreed, and one
optimizer step from it must give the trainer's digest after ``lo + 1``. So
settling a fraud costs a coordinator one step instead of the segment's ``k``.

Re-executing one step proves anything only where the step is bit-exact for the
coordinator too: the same environment under native numerics, any device under
reproducible numerics (the step's rounding decisions come from the committed
leaf). The referee refuses to judge otherwise rather than guess.
"""

from __future__ import annotations

from pot_impl.ledger.proofs import StepRuling
from pot_impl.training.checkpoint import Checkpoint, CheckpointError, checkpoint_digest, decode_checkpoint
from pot_impl.training.environment import run_fingerprint
from pot_impl.training.reexecution import Reexecutor
from pot_impl.training.reproducible import RoundingLog


class RefereeError(ValueError):
    """The referee cannot judge here: its environment cannot reproduce the step bit for bit."""


def trajectory(
    replayer: Reexecutor, start: Checkpoint, first_step: int, count: int, log: RoundingLog
) -> list[bytes]:
    """The digest of the state after each of ``count`` steps from ``start`` (at ``first_step``),
    following ``log``; what a party reveals, midpoint by midpoint, in the game."""
    replayer.restore_at(start, first_step)
    return list(replayer.session.run_steps(count, log, digest_steps=True).state_digests)


def first_disagreement(mine: list[bytes], theirs: list[bytes]) -> int | None:
    """The first step (index into the trajectories) after which two parties' states differ: what
    the bisection converges to when the challenger disagrees exactly where its own run does."""
    return next((index for index, (a, b) in enumerate(zip(mine, theirs, strict=True)) if a != b), None)


def referee(
    replayer: Reexecutor,
    claim_environment: str,
    step: int,
    supplied_state: bytes,
    agreed_digest: bytes,
    claimed_digest: bytes,
    log: RoundingLog,
) -> StepRuling:
    """Judge the one contested step ``step -> step + 1``: ``supplied_state`` must hash to
    ``agreed_digest`` and be this task's state after ``step``; one step from it, following the
    committed ``log``'s decisions for that step, must give ``claimed_digest``.

    Raises RefereeError where this referee's result would not be bit-exact for the claim.
    """
    pinned = run_fingerprint(replayer.session.env, replayer.task.numerics)
    if claim_environment != pinned:
        raise RefereeError(f"the claim was trained in {claim_environment}; this referee reproduces {pinned}")
    try:
        replayer.restore_at(decode_checkpoint(supplied_state, agreed_digest), step)
    except CheckpointError:
        return StepRuling.WRONG_STATE
    replayer.session.run_steps(1, log.at_step(step))
    if checkpoint_digest(replayer.session.checkpoint()) != claimed_digest:
        return StepRuling.FRAUD_PROVED
    return StepRuling.STEP_VALID
