"""Tier-B drift measures: zero for identical runs, proportional to how far a claim strays."""

from __future__ import annotations

import math
from dataclasses import replace

import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from pot_impl.training.comparison import DEFAULT_TOLERANCE, judge_segment, loss_deviation, measure_drift


def state(values: list[float]) -> dict[str, torch.Tensor]:
    return {"model/w": torch.tensor(values, dtype=torch.float32), "step": torch.tensor([1])}


@settings(max_examples=100, deadline=None)
@given(
    start=st.lists(st.floats(-10, 10, width=32), min_size=3, max_size=3),
    update=st.lists(st.floats(-1, 1, width=32), min_size=3, max_size=3).filter(
        lambda u: sum(x * x for x in u) > 1e-4
    ),
    scale=st.floats(0.0, 2.0),
)
def test_scaled_updates_have_distance_one_minus_scale_and_full_cosine(
    start: list[float], update: list[float], scale: float
) -> None:
    honest = [s + u for s, u in zip(start, update, strict=True)]
    claimed = [s + scale * u for s, u in zip(start, update, strict=True)]
    drift = measure_drift(state(start), state(claimed), state(honest), [1.0], [1.0])
    assert math.isclose(drift.distance, abs(1 - scale), rel_tol=1e-3, abs_tol=1e-3)
    if scale > 0.01:
        assert drift.cosine > 0.999
    assert measure_drift(state(start), state(honest), state(honest), [1.0], [1.0]).distance == 0


def test_opposite_update_is_rejected_in_tier_b() -> None:
    start, honest, reversed_update = state([0.0, 0.0]), state([1.0, 1.0]), state([-1.0, -1.0])
    drift = measure_drift(start, reversed_update, honest, [1.0], [1.0])
    assert drift.cosine < -0.99 and drift.distance > 1.9
    judgement = judge_segment(
        claimed_checkpoint_digest=b"a",
        claimed_batch_digest=b"b",
        claimed_losses=[1.0],
        reexecuted_checkpoint_digest=b"c",
        reexecuted_batch_digest=b"b",
        reexecuted_losses=[1.0],
        tolerance=DEFAULT_TOLERANCE,
        start=start,
        claimed_end=reversed_update,
        reexecuted_end=honest,
    )
    assert judgement.mismatch is not None and "tier-B" in judgement.mismatch


def test_loss_deviation_is_relative_with_a_floor() -> None:
    assert loss_deviation([1.0, 2.0], [1.0, 2.0]) == 0
    assert math.isclose(loss_deviation([1.1], [1.0]), 0.1)
    assert math.isclose(loss_deviation([0.002], [0.001]), 0.1)  # below the floor: absolute / 0.01
    assert loss_deviation([1.0], [1.0, 1.0]) == math.inf
    assert loss_deviation([math.nan], [1.0]) == math.inf
    assert loss_deviation([math.nan], [math.nan]) == 0


def judge(claimed_batch: bytes, losses: list[float], tier_b: bool) -> str | None:
    """Judge a segment whose checkpoint digest matches, varying only batches and losses."""
    return judge_segment(
        claimed_checkpoint_digest=b"x",
        claimed_batch_digest=claimed_batch,
        claimed_losses=losses,
        reexecuted_checkpoint_digest=b"x",
        reexecuted_batch_digest=b"b",
        reexecuted_losses=[1.0],
        tolerance=DEFAULT_TOLERANCE if tier_b else None,
    ).mismatch


def test_tier_a_demands_bit_equality_and_batches_are_always_exact() -> None:
    assert judge(b"b", [1.0], tier_b=False) is None
    assert judge(b"b", [math.nextafter(1.0, 2.0)], tier_b=False) is not None
    assert judge(b"b", [math.nextafter(1.0, 2.0)], tier_b=True) is None
    mismatch = judge(b"c", [1.0], tier_b=True)
    assert mismatch is not None and "batch" in mismatch


def test_a_tolerance_loose_in_distance_still_rejects_a_turned_update() -> None:
    """The cosine bound is what rejects an update of the right size in the wrong direction when a
    tolerance allows a large distance. (Under the default tolerance it never binds: a distance of
    at most d turns the update by at most asin(d), so the cosine is at least sqrt(1 - d**2).)"""
    loose = replace(DEFAULT_TOLERANCE, max_distance=0.5)
    angle = math.radians(20)
    start, honest = state([0.0, 0.0]), state([1.0, 0.0])
    turned = state([math.cos(angle), math.sin(angle)])
    drift = measure_drift(start, turned, honest, [1.0], [1.0])
    assert drift.distance < loose.max_distance and drift.cosine < loose.min_cosine
    assert not drift.within(loose)
    assert drift.within(replace(loose, min_cosine=0.9))
    assert math.sqrt(1 - DEFAULT_TOLERANCE.max_distance**2) > DEFAULT_TOLERANCE.min_cosine
