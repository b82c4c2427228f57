"""The mutation catalogue: planted bugs in ``pot_impl``, each an exact search/replace on one file.

A mutant is never applied to the working tree: ``runner.py`` applies it to a
temporary copy of the repository and runs the conformance suite there, with
``PYTHONPATH`` pointing at the copy. Nothing here is imported by ``pot_impl``.

Every edit must match its file exactly once; ``Mutant.apply`` refuses
otherwise, and a test checks that every mutant still applies to the current
``pot_impl`` so the catalogue cannot rot silently.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


class MutantError(Exception):
    """A mutant no longer applies: its search text is missing from, or not unique in, its file."""


@dataclass(frozen=True)
class Edit:
    """Replace the one occurrence of ``search`` by ``replace``."""

    search: str
    replace: str


@dataclass(frozen=True)
class Mutant:
    """A planted bug: ``edits`` to ``path`` (relative to the repository root)."""

    name: str
    path: str
    edits: tuple[Edit, ...]
    bug: str
    """What goes wrong, in the words of the literature (C&L OSDI'99 section, or the PoT design)."""

    def apply(self, root: Path) -> None:
        """Patch ``root / path`` in place (``root`` must be a scratch copy)."""
        target = root / self.path
        text = target.read_text(encoding="utf-8")
        target.write_text(self.patched(text), encoding="utf-8")

    def patched(self, text: str) -> str:
        for edit in self.edits:
            count = text.count(edit.search)
            if count != 1:
                where = "missing from" if count == 0 else f"found {count} times in"
                raise MutantError(
                    f"mutant {self.name}: search text {where} {self.path}: {edit.search[:60]!r}"
                )
            text = text.replace(edit.search, edit.replace)
        return text


def _one(name: str, path: str, search: str, replace: str, bug: str) -> Mutant:
    return Mutant(name, path, (Edit(search, replace),), bug)


QUORUMS = "pot_impl/pbft/quorums.py"
NORMAL_CASE = "pot_impl/pbft/normal_case.py"
VIEW_CHANGE = "pot_impl/pbft/view_change.py"
CERTIFICATES = "pot_impl/pbft/certificates.py"
LEDGER = "pot_impl/ledger/ledger.py"
SAMPLING = "pot_impl/training/sampling.py"

CATALOGUE: tuple[Mutant, ...] = (
    _one(
        "prepare-quorum-off-by-one",
        QUORUMS,
        "    return certificate_quorum(n, f) - 1\n",
        "    return certificate_quorum(n, f) - 2\n",
        "prepared with 2f - 1 matching PREPAREs instead of 2f (C&L 4.2)",
    ),
    Mutant(
        "duplicate-votes-counted",
        NORMAL_CASE,
        (
            Edit(
                "        if not _first_vote(slot.prepares, prepare.replica):\n            return False\n"
                "        slot.prepares.setdefault(prepare.digest, {})[prepare.replica] = prepare\n",
                "        votes = slot.prepares.setdefault(prepare.digest, {})\n"
                "        votes[prepare.replica if prepare.replica not in votes else -len(votes)] = prepare\n",
            ),
        ),
        "a PREPARE received twice from one backup counts twice (C&L 4.2: 2f from different backups)",
    ),
    _one(
        "commit-at-2f",
        QUORUMS,
        'committed-local (2f+1)."""\n    return certificate_quorum(n, f)\n',
        'committed-local (2f+1)."""\n    return certificate_quorum(n, f) - 1\n',
        "committed-local after 2f matching COMMITs instead of 2f + 1 (C&L 4.2)",
    ),
    _one(
        "digest-not-checked",
        CERTIFICATES,
        "    ) and pre_prepare.digest == codec.batch_digest(pre_prepare.batch)\n",
        "    )\n",
        "a PRE-PREPARE is accepted although its digest is not the digest of the request it carries (C&L 4.2)",
    ),
    _one(
        "two-pre-prepares-accepted",
        NORMAL_CASE,
        "        if slot.pre_prepare is not None:\n"
        "            if slot.pre_prepare.digest != pp.digest:\n"
        '                self._out.reject(pp, "a different pre-prepare was accepted for this view and'
        ' sequence number")\n'
        "            return\n",
        "        if slot.pre_prepare is not None and slot.pre_prepare.digest == pp.digest:\n"
        "            return\n",
        "a backup accepts a second PRE-PREPARE, with another digest, for one view and sequence number"
        " (C&L 4.2)",
    ),
    _one(
        "view-not-checked",
        NORMAL_CASE,
        "        if message.view < replica.view and not self._completes_left_view_commit(message):\n"
        '            self._out.reject(message, f"stale view {message.view} < {replica.view}")\n'
        "            return\n",
        "",
        "agreement messages of an earlier view are processed in the current one (C&L 4.2: 'in view v')",
    ),
    _one(
        "watermarks-not-checked",
        NORMAL_CASE,
        "        if not replica.checkpoints.in_window(message.seq):\n"
        '            window = f"({replica.low_watermark}, {replica.high_watermark}]"\n'
        '            self._out.reject(message, f"seq {message.seq} outside watermarks {window}")\n'
        "            return\n",
        "",
        "agreement messages outside the watermarks h < n <= H are accepted (C&L 4.2, 4.3)",
    ),
    _one(
        "new-view-lowest-view",
        CERTIFICATES,
        "if current is None or (pp.view, pp.digest) > (current.view, current.digest):",
        "if current is None or (pp.view, pp.digest) < (current.view, current.digest):",
        "NEW-VIEW re-proposes the prepared entry of the lowest view instead of the highest (C&L 4.4)",
    ),
    _one(
        "no-null-fill",
        CERTIFICATES,
        "        (seq, best[seq].digest, best[seq].batch) if seq in best else (seq, NULL_DIGEST, ())\n"
        "        for seq in range(min_seq + 1, max_seq + 1)\n",
        "        (seq, best[seq].digest, best[seq].batch)\n"
        "        for seq in range(min_seq + 1, max_seq + 1)\n"
        "        if seq in best\n",
        "NEW-VIEW leaves gaps in O instead of filling them with null requests (C&L 4.4)",
    ),
    _one(
        "p-holds-committed",
        VIEW_CHANGE,
        "prepared = tuple(c for n, c in sorted(certificates.items()) if n > stable_seq)",
        "prepared = tuple(\n"
        "            c for n, c in sorted(certificates.items())"
        " if n > stable_seq and n in replica.normal_case.committed\n        )",
        "VIEW-CHANGE's P holds the committed entries instead of the prepared ones (C&L 4.4)",
    ),
    _one(
        "checkpoint-stable-at-f-plus-1",
        QUORUMS,
        'make a checkpoint stable (2f+1)."""\n    return certificate_quorum(n, f)\n',
        'make a checkpoint stable (2f+1)."""\n    return f + 1\n',
        "a checkpoint becomes stable with f + 1 matching CHECKPOINTs instead of 2f + 1 (C&L 4.3)",
    ),
    _one(
        "reexecute-after-view-change",
        NORMAL_CASE,
        "        record = self.clients.get(request.client)\n"
        "        if record is not None and request.timestamp <= record.timestamp:\n"
        "            if request.timestamp == record.timestamp:\n"
        "                self._out.reply(request.client, request.timestamp, record.result)\n"
        "            return False\n"
        "        result = self._app.execute(",
        "        result = self._app.execute(",
        "a request ordered again (re-proposed after a view change) is executed again (C&L 4.1 timestamps)",
    ),
    _one(
        "committed-without-prepared",
        NORMAL_CASE,
        "        if pp is None or not slot.prepared or slot.committed:\n",
        "        if pp is None or slot.committed:\n",
        "committed-local from 2f + 1 COMMITs without being prepared itself (C&L 4.2)",
    ),
    _one(
        "finalize-ignores-upheld-challenges",
        LEDGER,
        "        return frozenset(from_challenges | from_rejects | from_disputes)\n",
        "        return frozenset(from_rejects | from_disputes)\n",
        "Finalize pays a claim whose fraud an upheld challenge proved (PoT design: Challenge, Finalize)",
    ),
    _one(
        "slash-on-unproved-challenge",
        LEDGER,
        "if k[:2] == key and c.upheld}",
        "if k[:2] == key}",
        "a challenge that the checker did not uphold still slashes the challenged validator (PoT design)",
    ),
    _one(
        "dispute-timeout-at-deadline",
        LEDGER,
        "_require(self._height > record.due, Reason.MOVE_WINDOW_OPEN)",
        "_require(self._height >= record.due, Reason.MOVE_WINDOW_OPEN)",
        "a dispute times out at its deadline, when the party to move may still move (dispute game)",
    ),
    _one(
        "dispute-midpoint-off-by-one",
        LEDGER,
        "        midpoint = (record.lo + record.hi) // 2\n",
        "        midpoint = (record.lo + record.hi) // 2 + 1\n",
        "the trainer reveals the digest after the step past the middle, so bisection can skip the "
        "first invalid step (dispute game, Srivastava et al. 2024)",
    ),
    _one(
        "referee-trusts-supplied-state",
        "pot_impl/training/dispute.py",
        "decode_checkpoint(supplied_state, agreed_digest)",
        "decode_checkpoint(supplied_state)",
        "the referee steps from whatever state the trainer supplies, not the agreed one, so a trainer "
        "that defends badly proves its genuine segment faked and its validators are slashed",
    ),
    _one(
        "finalize-during-dispute",
        LEDGER,
        "d.order_id != tx.order_id or d.outcome != DisputeOutcome.OPEN",
        "d.order_id == tx.order_id or d.outcome != DisputeOutcome.OPEN",
        "Finalize waits for other orders' open disputes but settles its own while they are open "
        "(dispute game)",
    ),
    _one(
        "reward-paid-twice",
        LEDGER,
        "            status=int(OrderStatus.PAID if winner else OrderStatus.REFUNDED),\n",
        "            status=int(OrderStatus.OPEN if winner else OrderStatus.REFUNDED),\n",
        "a paid order stays open, so a second Finalize pays the bounty again (PoT design: Finalize)",
    ),
    Mutant(
        "sample-predictable-from-claim",
        SAMPLING,
        (
            Edit(
                "    return expand_sample(signature, segments, min(size, segments)), signature\n",
                "    return expand_sample(sample_message(order_digest, proof_root), segments,"
                " min(size, segments)), signature\n",
            ),
            Edit(
                "    return expand_sample(seed_signature, segments, len(sample)) == tuple(sample)\n",
                "    return expand_sample(sample_message(order_digest, proof_root), segments, len(sample)) =="
                " tuple(sample)\n",
            ),
        ),
        "validators' samples derive from the claim alone, so the trainer knows them in advance "
        "(PoT design: sampling randomness the trainer cannot predict)",
    ),
)


def by_name(names: list[str] | None = None) -> list[Mutant]:
    """The named mutants (all when ``names`` is None); ``KeyError`` names an unknown one."""
    if names is None:
        return list(CATALOGUE)
    table = {m.name: m for m in CATALOGUE}
    unknown = [n for n in names if n not in table]
    if unknown:
        raise KeyError(f"unknown mutant {', '.join(unknown)}; known: {', '.join(table)}")
    return [table[n] for n in names]
