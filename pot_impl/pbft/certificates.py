"""Validation of the certificates a replica receives second-hand, and the new-view computation.

These are pure functions of their arguments so that the replica, Byzantine test
agents and conformance checks all use one definition: checkpoint proofs (C),
prepared certificates (P), view-changes, and O as defined in Castro and Liskov,
OSDI'99, section 4.4, and the committed certificates a lagging replica catches up with.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from pot_impl import codec
from pot_impl.auth import Verifier, verify_message
from pot_impl.pbft.config import ReplicaConfig
from pot_impl.pbft.messages import (
    Checkpoint,
    Commit,
    CommittedCertificate,
    NewView,
    Prepare,
    PreparedCertificate,
    PrePrepare,
    Request,
    ViewChange,
)
from pot_impl.pbft.quorums import checkpoint_quorum, commit_quorum, prepare_quorum, view_change_quorum

NULL_DIGEST = codec.batch_digest(())
"""Digest of the null request (the empty batch) that fills gaps in a new view."""


def state_digest(snapshot: bytes) -> bytes:
    """The digest a checkpoint message certifies for an encoded ``ServiceState``."""
    return hashlib.sha256(snapshot).digest()


def _distinct_valid_replicas(config: ReplicaConfig, replicas: Iterable[int]) -> bool:
    seen = list(replicas)
    return len(seen) == len(set(seen)) and all(0 <= r < config.n for r in seen)


def checkpoint_proof_digest(
    config: ReplicaConfig, verifier: Verifier, seq: int, proof: Sequence[Checkpoint]
) -> bytes | None:
    """The state digest that ``proof`` certifies for ``seq``, or None if it is not a valid proof:
    at least 2f+1 correctly signed checkpoints for ``seq`` with one digest, from distinct replicas."""
    if len(proof) < checkpoint_quorum(config.n, config.f) or seq % config.checkpoint_interval:
        return None
    digests = {c.state_digest for c in proof}
    if len(digests) != 1 or any(c.seq != seq for c in proof):
        return None
    if not _distinct_valid_replicas(config, (c.replica for c in proof)):
        return None
    if not all(verify_message(verifier, c) for c in proof):
        return None
    return digests.pop()


def valid_pre_prepare_body(config: ReplicaConfig, pre_prepare: PrePrepare) -> bool:
    """Sender is the view's primary and the digest is the batch's (signature checked separately)."""
    return pre_prepare.replica == config.primary(
        pre_prepare.view
    ) and pre_prepare.digest == codec.batch_digest(pre_prepare.batch)


def valid_prepared_certificate(
    config: ReplicaConfig,
    verifier: Verifier,
    certificate: PreparedCertificate,
    stable_seq: int,
    new_view: int,
) -> bool:
    """A P-set element: a pre-prepare of an earlier view inside the sender's watermarks, and
    2f correctly signed matching prepares from distinct backups."""
    pp = certificate.pre_prepare
    if not (pp.view < new_view and stable_seq < pp.seq <= stable_seq + config.watermark_window):
        return False
    if not valid_pre_prepare_body(config, pp) or not verify_message(verifier, pp):
        return False
    if any(p.replica == pp.replica for p in certificate.prepares):
        return False  # the primary sends no PREPARE
    return _matching_votes(config, verifier, pp, certificate.prepares, prepare_quorum(config.n, config.f))


def valid_committed_certificate(
    config: ReplicaConfig, verifier: Verifier, certificate: CommittedCertificate
) -> bool:
    """committed-local at 2f+1 replicas' say-so: the pre-prepare is signed by the primary of its view
    and its digest is the batch's, and 2f+1 correctly signed COMMITs of that view, sequence number
    and digest come from distinct replicas (the primary's included). Any view: a batch committed in
    one view is what every later view re-proposes at that sequence number (C&L 4.4)."""
    pp = certificate.pre_prepare
    if not valid_pre_prepare_body(config, pp) or not verify_message(verifier, pp):
        return False
    return _matching_votes(config, verifier, pp, certificate.commits, commit_quorum(config.n, config.f))


def _matching_votes(
    config: ReplicaConfig,
    verifier: Verifier,
    pp: PrePrepare,
    votes: Sequence[Prepare] | Sequence[Commit],
    quorum: int,
) -> bool:
    """At least ``quorum`` correctly signed votes for the pre-prepare's (view, seq, digest), from
    distinct replicas: the core of a prepared and of a committed certificate."""
    if len(votes) < quorum:
        return False
    if any((v.view, v.seq, v.digest) != (pp.view, pp.seq, pp.digest) for v in votes):
        return False
    if not _distinct_valid_replicas(config, (v.replica for v in votes)):
        return False
    return all(verify_message(verifier, v) for v in votes)


def valid_view_change(config: ReplicaConfig, verifier: Verifier, view_change: ViewChange) -> bool:
    """A view-change whose signature, C proof and every P certificate check."""
    vc = view_change
    if not 0 <= vc.replica < config.n or not verify_message(verifier, vc):
        return False
    if vc.stable_seq % config.checkpoint_interval:
        return False
    if vc.stable_seq == 0:
        if vc.checkpoint_proof:
            return False
    elif checkpoint_proof_digest(config, verifier, vc.stable_seq, vc.checkpoint_proof) is None:
        return False
    seqs = [c.pre_prepare.seq for c in vc.prepared]
    if len(seqs) != len(set(seqs)):
        return False
    return all(
        valid_prepared_certificate(config, verifier, c, vc.stable_seq, vc.new_view) for c in vc.prepared
    )


@dataclass(frozen=True)
class NewViewPlan:
    """What a new-view must contain, computed from its V set: the stable checkpoint ``min_seq``
    (with the proof from V that certifies it) and O as (seq, digest, batch) for min_s < seq <= max_s."""

    min_seq: int
    min_seq_proof: tuple[Checkpoint, ...]
    proposals: tuple[tuple[int, bytes, tuple[Request, ...]], ...]

    @property
    def max_seq(self) -> int:
        return self.proposals[-1][0] if self.proposals else self.min_seq


def plan_new_view(view_changes: Sequence[ViewChange]) -> NewViewPlan:
    """Section 4.4: min-s is the latest stable checkpoint in V, max-s the highest prepared sequence
    number; for every n in between, re-propose the digest of the prepared certificate with the
    highest view, or the null request where none exists. Ties (only possible with forged views)
    are broken by digest so every replica computes the same O."""
    anchor = max(view_changes, key=lambda vc: (vc.stable_seq, -vc.replica))
    min_seq = anchor.stable_seq
    best: dict[int, PrePrepare] = {}
    for vc in view_changes:
        for certificate in vc.prepared:
            pp = certificate.pre_prepare
            if pp.seq <= min_seq:
                continue
            current = best.get(pp.seq)
            if current is None or (pp.view, pp.digest) > (current.view, current.digest):
                best[pp.seq] = pp
    max_seq = max(best, default=min_seq)
    proposals = tuple(
        (seq, best[seq].digest, best[seq].batch) if seq in best else (seq, NULL_DIGEST, ())
        for seq in range(min_seq + 1, max_seq + 1)
    )
    return NewViewPlan(min_seq, anchor.checkpoint_proof, proposals)


def valid_new_view(config: ReplicaConfig, verifier: Verifier, new_view: NewView) -> NewViewPlan | None:
    """The plan a new-view follows if it is valid: sent by the view's primary, V holds 2f+1 valid
    view-changes for this view from distinct replicas, and O is exactly what V determines."""
    nv = new_view
    if nv.replica != config.primary(nv.view) or not verify_message(verifier, nv):
        return None
    vcs = nv.view_changes
    if len(vcs) < view_change_quorum(config.n, config.f):
        return None
    if not _distinct_valid_replicas(config, (v.replica for v in vcs)):
        return None
    if any(vc.new_view != nv.view or not valid_view_change(config, verifier, vc) for vc in vcs):
        return None
    plan = plan_new_view(vcs)
    if len(nv.pre_prepares) != len(plan.proposals):
        return None
    for pp, (seq, digest, batch) in zip(nv.pre_prepares, plan.proposals, strict=True):
        if (pp.view, pp.seq, pp.digest, pp.batch, pp.replica) != (nv.view, seq, digest, batch, nv.replica):
            return None
        if not verify_message(verifier, pp):
            return None
    return plan
