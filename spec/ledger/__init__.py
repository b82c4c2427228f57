"""The PoT ledger as an executable specification: the deterministic state machine PBFT replicates.

The layer, as PBFT's (docs/spec.md, "Layout"):

* ``state``: the state value (``LedgerState``, its records, ``genesis``);
* ``config``: the constants (``LedgerModelConfig``, every field a model constant), the
  participants' ``Cast`` and planted bugs (``LedgerBug``);
* ``protocol``: the transactions and ``apply``, each transaction's guard then effect, and the
  queries they read;
* ``participants``: ``LedgerParticipants``, what each participant may submit (the actions);
* ``properties``: invariants, liveness properties and fairness;
* ``reductions``: symmetry;
* ``model``: the ``Model`` of a config (``ledger_model``) and the registered ledger models.
"""

from spec.ledger.config import LedgerBug
from spec.ledger.protocol import (
    Bisect,
    Challenge,
    Claim,
    Finalize,
    Order,
    Reason,
    Receipt,
    Register,
    Reveal,
    Supply,
    Tick,
    Timeout,
    Tx,
    Validate,
    apply,
    challenges_open,
    execute,
    find_claim,
    find_dispute,
    total_value,
)
from spec.ledger.state import (
    NO_SEGMENT,
    ChallengeRecord,
    ClaimRecord,
    LedgerParams,
    LedgerState,
    OrderRecord,
    OrderStatus,
    Role,
    Verdict,
    VoteRecord,
    genesis,
)

__all__ = [
    "NO_SEGMENT",
    "Bisect",
    "Challenge",
    "ChallengeRecord",
    "Claim",
    "ClaimRecord",
    "Finalize",
    "LedgerBug",
    "LedgerParams",
    "LedgerState",
    "Order",
    "OrderRecord",
    "OrderStatus",
    "Reason",
    "Receipt",
    "Register",
    "Reveal",
    "Role",
    "Supply",
    "Tick",
    "Timeout",
    "Tx",
    "Validate",
    "Verdict",
    "VoteRecord",
    "apply",
    "challenges_open",
    "execute",
    "find_claim",
    "find_dispute",
    "genesis",
    "total_value",
]
