"""PBFT (Castro and Liskov, OSDI'99, section 4) as an executable specification.

PBFT orders opaque requests; what a request *does* is left to an
``Application`` (a pure function of the executed log), so the same protocol
model is checked alone (``pbft-*`` models, with a counter application) and
composed with the PoT ledger (spec/combined.py).

The layer, as the ledger's (docs/spec.md, "Layout"):

* ``state``: the state value (``State``, ``Replica``, the messages);
* ``config``: the constants (``PbftConfig``, every field a model constant),
  planted bugs (``PbftBug``) and the replicated service (``Application``);
* ``protocol``: ``Pbft``, the actions (guard, then effect) and what they read;
* ``properties``: invariants, liveness properties and fairness;
* ``reductions``: garbage collection of unreadable messages, and symmetry;
* ``search``: ``SearchPbft``, the per-state memos the checker runs with;
* ``model``: the ``Model`` of a config (``build``).

Modelling choices (each argued in docs/spec.md, "Abstractions"):

* Honest replicas' messages form a monotone set that replicas read when they
  choose: delay, reordering and duplication are implicit, loss is a message
  never read.
* Byzantine replicas have no state and send nothing into the set: whatever
  they can sign is always available (spec.pbft.protocol says how).
* Clients have sent every request at the start (reading is what replicas
  choose); replies are derived from executed logs, and client acceptance
  (f + 1 matching replies) is a predicate on them.
* "Prepared at i" is "i sent COMMIT", since a replica multicasts its COMMIT
  the moment it becomes prepared.
* Views, sequence numbers and requests are bounded by model constants.

Every threshold comes from spec/quorum.py.
"""

from spec.pbft.config import CONSTANT_DOCS, COUNTER, Application, PbftBug, PbftConfig, parse_bug
from spec.pbft.model import build, pbft_model
from spec.pbft.protocol import Pbft, Step
from spec.pbft.search import SearchPbft
from spec.pbft.state import NULL, NewView, Ops, Proposals, Replica, State, Tally, ViewChange

__all__ = [
    "CONSTANT_DOCS",
    "COUNTER",
    "NULL",
    "Application",
    "NewView",
    "Ops",
    "Pbft",
    "PbftBug",
    "PbftConfig",
    "Proposals",
    "Replica",
    "SearchPbft",
    "State",
    "Step",
    "Tally",
    "ViewChange",
    "build",
    "parse_bug",
    "pbft_model",
]
