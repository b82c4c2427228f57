"""`pot prove`: z3 proves the quorum facts the invariants rely on, for every f >= 1 and n >= 3f + 1.

The facts are stated over the very threshold functions of spec/quorum.py,
called here with z3 integer terms instead of ints. Each fact is proved by
asking z3 for a counterexample to it (unbounded integer arithmetic, so no
model size is assumed); ``unsat`` is a proof, ``sat`` yields a concrete
(n, f) where the fact fails. Cardinality facts use the counting argument:
two subsets of n replicas of sizes a and b share at least a + b - n, and a
set of size a holds at least a - f replicas outside any f faulty ones.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import z3

from spec import quorum as thresholds


@dataclass(frozen=True)
class Fact:
    """One claim about thresholds: ``claim(n, f, thresholds)`` must hold whenever ``assume`` does."""

    name: str
    doc: str
    claim: Callable[[Any, Any, Any], Any]
    assume: Callable[[Any, Any], Any] = lambda n, f: z3.And(f >= 1, n >= 3 * f + 1)
    domain: str = "f >= 1, n >= 3f + 1"


@dataclass(frozen=True)
class Outcome:
    """The result of proving one fact: ``counterexample`` maps the variables to values when it fails,
    and is None when it holds or z3 could not decide (``unknown`` then says why)."""

    name: str
    doc: str
    domain: str
    proved: bool
    counterexample: dict[str, int] | None = None
    unknown: str | None = None


def _intersect(a: Any, b: Any, n: Any) -> Any:
    """Least overlap of two sets of sizes a and b among n elements."""
    return a + b - n


FACTS: tuple[Fact, ...] = (
    Fact(
        "QuorumIntersection",
        "any two quorums of n replicas share at least f + 1 replicas, hence an honest one "
        "(Agreement, CheckpointAgreement, NEW-VIEW carrying every committed request)",
        lambda n, f, q: _intersect(q.quorum(n, f), q.quorum(n, f), n) >= f + 1,
    ),
    Fact(
        "QuorumHasHonest",
        "every quorum holds at least one honest replica (certificates vouch for a real protocol step)",
        lambda n, f, q: q.quorum(n, f) - f >= 1,
    ),
    Fact(
        "QuorumAvailable",
        "the n - f replicas that may be honest can form a quorum alone (progress without faulty votes)",
        lambda n, f, q: q.quorum(n, f) <= n - f,
    ),
    Fact(
        "PreparedCertificateIsQuorum",
        "a PRE-PREPARE plus prepare_quorum PREPAREs from distinct backups are a quorum of replicas",
        lambda n, f, q: q.prepare_quorum(n, f) + 1 == q.quorum(n, f),
    ),
    Fact(
        "RepliesIncludeHonest",
        "reply_quorum matching replies include one from an honest replica (client accepts a correct result)",
        lambda n, f, q: q.reply_quorum(f) - f >= 1,
    ),
    Fact(
        "RepliesAvailable",
        "the honest replicas alone can supply reply_quorum matching replies",
        lambda n, f, q: q.reply_quorum(f) <= n - f,
    ),
    Fact(
        "ViewChangeJoinIncludesHonest",
        "view_change_join VIEW-CHANGEs for higher views include an honest replica's (no faulty-only "
        "view change)",
        lambda n, f, q: q.view_change_join(f) - f >= 1,
    ),
    Fact(
        "ValidationQuorumHasHonest",
        "every validation quorum of a claim holds an honest validator (n: validators, f: faulty validators)",
        lambda n, f, q: q.validation_quorum(n, f) - f >= 1,
        assume=lambda n, f: z3.And(f >= 1, n >= 2 * f + 1),
        domain="f >= 1, n >= 2f + 1 (validators)",
    ),
    Fact(
        "ValidationQuorumAvailable",
        "the honest validators alone can form a validation quorum",
        lambda n, f, q: q.validation_quorum(n, f) <= n - f,
        assume=lambda n, f: z3.And(f >= 1, n >= 2 * f + 1),
        domain="f >= 1, n >= 2f + 1 (validators)",
    ),
)


def prove(fact: Fact, module: Any = thresholds) -> Outcome:
    """Prove ``fact`` for all integers in its domain, using the thresholds in ``module``."""
    n, f = z3.Ints("n f")
    solver = z3.Solver()
    solver.add(fact.assume(n, f), z3.Not(fact.claim(n, f, module)))
    verdict = solver.check()
    if verdict == z3.unsat:
        return Outcome(fact.name, fact.doc, fact.domain, True)
    if verdict == z3.sat:
        model = solver.model()
        values = {str(var): model.eval(var, model_completion=True).as_long() for var in (n, f)}
        return Outcome(fact.name, fact.doc, fact.domain, False, values)
    return Outcome(fact.name, fact.doc, fact.domain, False, unknown=str(solver.reason_unknown()))


def prove_all(module: Any = thresholds) -> list[Outcome]:
    """Every fact in ``FACTS``, proved against the thresholds in ``module``."""
    return [prove(fact, module) for fact in FACTS]
