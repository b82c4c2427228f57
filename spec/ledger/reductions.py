"""State-space reductions of the ledger models: symmetry (TLC's SYMMETRY) over segment ids and
interchangeable validators. The ledger needs no garbage collection: it keeps no dead records."""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable
from itertools import permutations
from typing import Any

from spec.ledger.state import NO_SEGMENT, LedgerState


def ledger_symmetry(
    segments: int, accounts: int, groups: Iterable[tuple[int, ...]]
) -> Callable[[LedgerState], Hashable]:
    """SYMMETRY: segment ids are interchangeable, and so are the validators within each group.

    Sound for every ledger invariant: nothing in the protocol tells one segment
    from another (samples, fakes, evidence and challenges are all just ids),
    and the validators of one group (e.g. the honest ones) start with equal
    funds and have the same capabilities and the same role in every invariant;
    so renaming maps behaviours to behaviours and violations to violations.

    A validator appears in the state only through its own balance, stake,
    role, slashed flag and votes (no record names another validator), so the
    state is a fixed part plus, per group, a multiset of validator profiles.
    The canonical form sorts each group's profiles, for each renaming of the
    segments, and takes the least: an exact orbit representative without
    enumerating validator permutations.
    """
    group_list = [tuple(g) for g in groups]
    grouped = {a for g in group_list for a in g}
    fixed = tuple(a for a in range(accounts) if a not in grouped)
    # index NO_SEGMENT (-1) maps to itself through the trailing entry
    renamings = [(*perm, NO_SEGMENT) for perm in permutations(range(segments))]

    def encode(state: LedgerState, rename: tuple[int, ...]) -> tuple[Any, ...]:
        def segs(items: frozenset[int]) -> tuple[int, ...]:
            return tuple(sorted(rename[s] for s in items))

        votes_of: dict[int, list[tuple[Any, ...]]] = {}
        for v in state.votes:
            votes_of.setdefault(v.validator, []).append(
                (v.order, v.trainer, v.verdict, v.score, segs(v.sample), rename[v.evidence])
            )

        def profile(a: int) -> tuple[Any, ...]:
            votes = tuple(sorted(votes_of.get(a, ())))
            return (state.balances[a], state.stakes[a], state.roles[a], a in state.slashed, votes)

        return (
            tuple(sorted((c.order, c.trainer, c.model, c.score, segs(c.faked)) for c in state.claims)),
            tuple(sorted((c.order, c.trainer, rename[c.segment], c.challenger) for c in state.challenges)),
            tuple(tuple(sorted(profile(a) for a in group)) for group in group_list),
        )

    def canonical(state: LedgerState) -> Hashable:
        fixed_part = tuple(
            (state.balances[a], state.stakes[a], state.roles[a], a in state.slashed) for a in fixed
        )
        return (state.now, state.orders, fixed_part, min(encode(state, r) for r in renamings))

    return canonical
