"""Segment samples derived from the validator's own Ed25519 signature.

The validator signs (order digest, proof root) and expands the signature into
q distinct segment indices. Ed25519 signatures are deterministic, so the
validator gets exactly one sample per claim and cannot shop for a convenient
one; the trainer cannot predict the sample without the validator's secret key,
and the proof root is fixed before anyone signs, so the trainer cannot grind
it either (unlike a sample derived from the root alone, which the trainer
could re-roll by perturbing its own commitment). Anyone holding the
validator's public key can check the sample (``check_sample``).
"""

from __future__ import annotations

import hashlib

from nacl.exceptions import CryptoError
from nacl.signing import SigningKey, VerifyKey

SAMPLE_DOMAIN = b"pot-sample-v1"


def sample_message(order_digest: bytes, proof_root: bytes) -> bytes:
    """What the validator signs: domain, order digest and proof root."""
    return SAMPLE_DOMAIN + order_digest + proof_root


def expand_sample(seed_signature: bytes, segments: int, size: int) -> tuple[int, ...]:
    """``size`` distinct indices in [0, segments), uniformly, by unbiased rejection sampling
    from SHA-256(signature || counter); returned sorted."""
    if not 0 < size <= segments:
        raise ValueError(f"sample size {size} must be in [1, {segments}]")
    limit = (1 << 64) - (1 << 64) % segments  # accept below the largest multiple of ``segments``
    chosen: set[int] = set()
    counter = 0
    while len(chosen) < size:
        block = hashlib.sha256(seed_signature + counter.to_bytes(8, "big")).digest()
        counter += 1
        for offset in range(0, 32, 8):
            value = int.from_bytes(block[offset : offset + 8], "big")
            if value < limit and len(chosen) < size:
                chosen.add(value % segments)
    return tuple(sorted(chosen))


def draw_sample(
    key: SigningKey, order_digest: bytes, proof_root: bytes, segments: int, size: int
) -> tuple[tuple[int, ...], bytes]:
    """The validator's sample and the signature that justifies it."""
    signature = key.sign(sample_message(order_digest, proof_root)).signature
    return expand_sample(signature, segments, min(size, segments)), signature


def sample_is_valid(
    order_digest: bytes,
    proof_root: bytes,
    segments: int,
    validator_key: bytes,
    sample: tuple[int, ...],
    seed_signature: bytes,
) -> bool:
    """True iff ``seed_signature`` is the validator's signature on (order, root), ``sample`` its expansion."""
    try:
        VerifyKey(validator_key).verify(sample_message(order_digest, proof_root), seed_signature)
    except (CryptoError, ValueError, TypeError):
        return False
    if not 0 < len(sample) <= segments:
        return False
    return expand_sample(seed_signature, segments, len(sample)) == tuple(sample)
