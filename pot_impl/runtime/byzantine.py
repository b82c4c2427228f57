"""Byzantine behaviours a replica process can be configured with, for fault-injection runs.

A Byzantine replica is modelled by what it can do: send any message it can
sign. These behaviours rewrite the honest replica's outgoing effects just
before they are performed; they are reachable only through ``node.byzantine``
in a config file (``pot cluster up --byzantine``), and an honest node's
effects pass through unchanged.

* ``equivocate``: as primary, send a different (validly signed) pre-prepare
  for the same view and sequence number to half of the backups.
* ``silent``: send nothing at all (a replica that crashed while its
  connections stay open).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from pot_impl import codec
from pot_impl.auth import Signer, sign_message
from pot_impl.pbft.io import Broadcast, Effect, ReplyToClient, SendTo
from pot_impl.pbft.messages import PrePrepare


def corrupt(
    behaviour: str | None, effects: Sequence[Effect], signer: Signer, n: int, me: int
) -> Sequence[Effect]:
    """``effects`` as a replica with ``behaviour`` would perform them (unchanged when None)."""
    if behaviour is None:
        return effects
    if behaviour == "silent":
        return [e for e in effects if not isinstance(e, Broadcast | SendTo | ReplyToClient)]
    if behaviour == "equivocate":
        return [rewritten for effect in effects for rewritten in _equivocate(effect, signer, n, me)]
    raise ValueError(f"unknown Byzantine behaviour {behaviour!r}")


def _equivocate(effect: Effect, signer: Signer, n: int, me: int) -> list[Effect]:
    if not isinstance(effect, Broadcast) or not isinstance(effect.message, PrePrepare):
        return [effect]
    honest = effect.message
    if not honest.batch:
        return [effect]
    batch = honest.batch[:-1]
    forged = sign_message(
        signer, dataclasses.replace(honest, batch=batch, digest=codec.batch_digest(batch), signature=b"")
    )
    others = [r for r in range(n) if r != me]
    half = len(others) // 2
    split: list[Effect] = [SendTo(r, honest) for r in others[:half]]
    return split + [SendTo(r, forged) for r in others[half:]]
