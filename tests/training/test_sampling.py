"""Segment samples: derived from the validator's signature, verifiable, not choosable by either side."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from nacl.signing import SigningKey

from pot_impl.training.proof_checker import TrainingProofChecker
from pot_impl.training.sampling import draw_sample, expand_sample
from tests.training.conftest import make_order

ORDER = make_order(steps=64, segment_length=2)
ROOT = b"\x42" * 32


def key(seed: int) -> SigningKey:
    return SigningKey(seed.to_bytes(32, "big"))


@settings(max_examples=200, deadline=None)
@given(signature=st.binary(min_size=64, max_size=64), segments=st.integers(1, 300), data=st.data())
def test_expansion_gives_distinct_in_range_indices(
    signature: bytes, segments: int, data: st.DataObject
) -> None:
    size = data.draw(st.integers(1, segments))
    sample = expand_sample(signature, segments, size)
    assert len(sample) == size == len(set(sample))
    assert all(0 <= index < segments for index in sample)
    assert sample == tuple(sorted(sample))


def test_expansion_is_uniform_enough() -> None:
    counts = [0] * 10
    for seed in range(2000):
        (index,) = expand_sample(seed.to_bytes(64, "big"), 10, 1)
        counts[index] += 1
    assert min(counts) > 140 and max(counts) < 260  # 200 expected each; a biased map would stray far


def test_checker_accepts_exactly_the_signed_sample() -> None:
    checker = TrainingProofChecker()
    order_bytes = ORDER.encode()
    validator = key(1)
    public = bytes(validator.verify_key)
    sample, signature = draw_sample(validator, ORDER.digest, ROOT, ORDER.task.segments, 5)
    assert checker.check_sample(order_bytes, ROOT, public, sample, signature)
    others = sorted(set(range(ORDER.task.segments)) - set(sample))
    chosen = tuple(sorted((*sample[1:], others[0])))
    assert not checker.check_sample(order_bytes, ROOT, public, chosen, signature), "validator picked segments"
    assert not checker.check_sample(order_bytes, ROOT, bytes(key(2).verify_key), sample, signature)
    assert not checker.check_sample(order_bytes, b"\x43" * 32, public, sample, signature), "other root"
    assert not checker.check_sample(order_bytes, ROOT, public, sample, b"\x00" * 64)
    assert not checker.check_sample(order_bytes, ROOT, b"short", sample, signature)
    assert not checker.check_sample(b"{}", ROOT, public, sample, signature)


def test_sample_depends_on_the_validator_not_on_what_the_trainer_controls() -> None:
    """Ed25519 is deterministic: one validator gets one sample per claim (no shopping), and
    different validators get independent samples the trainer cannot predict without their keys."""
    segments = ORDER.task.segments
    first = draw_sample(key(1), ORDER.digest, ROOT, segments, 4)
    assert draw_sample(key(1), ORDER.digest, ROOT, segments, 4) == first
    samples = {draw_sample(key(seed), ORDER.digest, ROOT, segments, 4)[0] for seed in range(30)}
    assert len(samples) > 25


def test_sample_size_is_bounded_by_the_segment_count() -> None:
    assert draw_sample(key(1), ORDER.digest, ROOT, 3, 10)[0] == (0, 1, 2)
    with pytest.raises(ValueError, match="sample size"):
        expand_sample(b"\x00" * 64, 3, 0)
