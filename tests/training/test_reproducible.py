"""Reproducible numerics: the rounding rule, its two implementations, the log, and training runs
that agree bit for bit across thread counts (and, on a GPU machine, across devices).

Self-contained (no conftest fixtures), so it also runs on a bare GPU machine with --noconftest.
"""

from __future__ import annotations

import dataclasses
import math
import struct
from fractions import Fraction

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from benchmarks.training_orders import make_order, prepared
from pot_impl.training.checkpoint import checkpoint_digest
from pot_impl.training.environment import Environment
from pot_impl.training.reproducible import (
    EMPTY_LOG,
    GRADIENT_POSITIONS,
    NATIVE,
    REPRODUCIBLE,
    TIE_ZONE_BITS,
    RoundingLog,
    quantize_gradients,
    quantize_with_tensor_ops,
    round_in_place,
    round_with_tensor_ops,
)
from pot_impl.training.session import TrainingSession
from pot_impl.training.task import TaskError, TrainingOrder, decode_order, encode_task

CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


def float64(bits: int) -> float:
    (value,) = struct.unpack("<d", struct.pack("<q", bits))
    return float(value)


def near_midpoint(value: float, offset: int) -> float:
    """A float64 whose 29 bits below float32's mantissa are half an ulp plus ``offset``."""
    (bits,) = struct.unpack("<q", struct.pack("<d", float(np.float32(value))))
    return float64((bits & ~((1 << 29) - 1)) | ((1 << 28) + offset))


ZONE_EDGE = 1 << (29 - TIE_ZONE_BITS)  # in 2**-29 ulps
offsets = st.one_of(
    st.integers(-(2**14), 2**14),
    st.integers(ZONE_EDGE - 2**13, ZONE_EDGE + 2**13),
    st.integers(-ZONE_EDGE - 2**13, -ZONE_EDGE + 2**13),
    st.integers(-(2**28), 2**28 - 1),
)
values = st.one_of(
    st.integers(-(2**63), 2**63 - 1).map(float64),
    st.builds(near_midpoint, st.floats(width=32, allow_nan=False, allow_infinity=False), offsets),
    st.sampled_from(
        [0.0, -0.0, float("inf"), -float("inf"), 1e-40, -3e-45, 2.0**-126, 3.4028235e38, 3.40282357e38]
    ),
)


@st.composite
def roundings(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Values and a sorted log over some of them naming their nearest, the other neighbour or junk."""
    exact = np.array(draw(st.lists(values, min_size=1, max_size=64)), dtype=np.float64)
    chosen = sorted(draw(st.sets(st.integers(0, len(exact) - 1), max_size=8)))
    bits = []
    for position in chosen:
        with np.errstate(over="ignore", invalid="ignore"):
            nearest = np.float32(exact[position])
        kind = draw(st.sampled_from(["nearest", "up", "down", "junk"]))
        with np.errstate(over="ignore"):
            logged = {
                "nearest": nearest,
                "up": np.nextafter(nearest, np.float32(np.inf)),
                "down": np.nextafter(nearest, np.float32(-np.inf)),
                "junk": np.float32(draw(st.floats(width=32))),
            }[kind]
        bits.append(int(np.array(logged, dtype=np.float32).view(np.uint32)))
    return exact, np.array(chosen, dtype=np.int64), np.array(bits, dtype=np.int64)


def both_ways(
    exact: np.ndarray, follow: tuple[np.ndarray, np.ndarray], device: str = "cpu"
) -> tuple[tuple[list[int], list[int], int, list[int]], tuple[list[int], list[int], int, list[int]]]:
    compiled = torch.from_numpy(exact.copy())
    tensor_ops = torch.from_numpy(exact.copy()).to(device)
    results = []
    for tensor, rounding in ((compiled, round_in_place), (tensor_ops, round_with_tensor_ops)):
        positions, bits, refused = rounding(tensor, follow)
        results.append((positions.tolist(), bits.tolist(), refused, tensor.cpu().view(torch.int64).tolist()))
    return results[0], results[1]


@settings(max_examples=300, deadline=None)
@given(roundings())
def test_the_compiled_pass_and_the_tensor_operations_round_alike(case: tuple[np.ndarray, ...]) -> None:
    exact, positions, bits = case
    compiled, tensor_ops = both_ways(exact, (positions, bits))
    assert compiled == tensor_ops


def zone_rule(exact: float) -> float:
    """The rounding rule in exact rational arithmetic: the even float32 neighbour within the tie
    zone around a midpoint, else the nearest."""
    nearest = np.float32(exact)
    if not math.isfinite(nearest) or float(nearest) == exact:
        return float(nearest)
    other = np.nextafter(nearest, np.float32(math.copysign(math.inf, exact - float(nearest))))
    low, high = sorted((Fraction(float(nearest)), Fraction(float(other))))
    distance = abs(Fraction(exact) - (low + high) / 2) / (high - low)
    if distance >= Fraction(1, 2**TIE_ZONE_BITS):
        return float(nearest)
    even = [v for v in (nearest, other) if not int(np.array(v, dtype=np.float32).view(np.uint32)) & 1]
    return float(even[0])


@settings(max_examples=300, deadline=None)
@given(st.lists(values.filter(lambda v: math.isfinite(v) and abs(v) < 3.4e38), min_size=1, max_size=64))
def test_rounding_takes_the_even_neighbour_in_the_tie_zone_and_the_nearest_elsewhere(
    exact_values: list[float],
) -> None:
    exact = torch.tensor(exact_values, dtype=torch.float64)
    round_in_place(exact)
    assert exact.tolist() == [zone_rule(value) for value in exact_values]


def test_a_logged_neighbour_is_taken_only_near_the_zone_edge() -> None:
    edge = near_midpoint(1.5, ZONE_EDGE + 3)  # just outside the zone, above the midpoint: rounds up
    far = near_midpoint(1.5, 2**27)
    down = int(np.array(np.float32(1.5), dtype=np.float32).view(np.uint32))
    values = torch.tensor([edge, far], dtype=torch.float64)
    positions, _, refused = round_in_place(values, (np.array([0, 1]), np.array([down, down])))
    assert positions.tolist() == [0]  # only the value at the edge is one the trainer would log
    assert refused == 1  # the far value may not be steered
    assert values[0].item() == 1.5  # the logged decision won at the edge
    assert values[1].item() == float(np.float32(far))


def test_an_exact_tie_rounds_to_even_without_a_log_entry() -> None:
    values = torch.tensor([near_midpoint(1.5, 0), near_midpoint(1.5, 5)], dtype=torch.float64)
    positions, _, _ = round_in_place(values)
    assert len(positions) == 0
    assert values.tolist() == [1.5, 1.5]  # 1.5's mantissa is even; its successor's is odd


def test_a_logged_value_that_is_no_neighbour_is_refused() -> None:
    values = torch.tensor([near_midpoint(1.5, ZONE_EDGE)], dtype=torch.float64)
    junk = int(np.array(np.float32(2.0), dtype=np.float32).view(np.uint32))
    _, _, refused = round_in_place(values, (np.array([0]), np.array([junk])))
    assert refused == 1
    assert values[0].item() != 2.0


@given(
    st.lists(st.tuples(st.integers(0, 2**20), st.integers(0, 2**31), st.integers(0, 2**32 - 1)), max_size=40)
)
def test_rounding_logs_round_trip_through_their_one_encoding(entries: list[tuple[int, int, int]]) -> None:
    unique = sorted({(step, position): bits for step, position, bits in entries}.items())
    columns = [
        np.array(column, dtype=np.int64) for column in zip(*[(s, p, b) for (s, p), b in unique], strict=True)
    ]
    log = RoundingLog(*columns) if unique else EMPTY_LOG
    decoded = RoundingLog.decode(log.encode())
    assert decoded.encode() == log.encode()
    assert len(decoded) == len(unique)


def test_rounding_logs_out_of_order_or_cut_short_do_not_decode() -> None:
    two = RoundingLog(np.array([0, 0]), np.array([5, 3]), np.array([1, 2]))
    with pytest.raises(ValueError, match="increasing"):
        RoundingLog.decode(two.encode())
    with pytest.raises(ValueError, match="whole number"):
        RoundingLog.decode(b"\x00" * 13)


def test_the_numerics_is_in_a_task_only_when_reproducible() -> None:
    native = make_order("tiny_mlp", 4, 2)
    chosen = make_order("tiny_mlp", 4, 2, numerics=REPRODUCIBLE)
    assert b"numerics" not in encode_task(native.task)
    assert b'"numerics":"reproducible"' in encode_task(chosen.task)
    assert decode_order(chosen.encode()) == chosen
    odd = TrainingOrder(dataclasses.replace(native.task, numerics="fast"), native.data_order_seed)
    with pytest.raises(TaskError, match="unknown numerics"):
        decode_order(odd.encode())
    assert native.task.numerics == NATIVE


def segment_digests(
    order: TrainingOrder, env: Environment, follow: list[RoundingLog] | None = None
) -> list[bytes]:
    session = TrainingSession(prepared(order), order.data_order_seed, env)
    digests = []
    for segment in range(order.task.segments):
        outcome = session.run_segment(follow[segment] if follow else EMPTY_LOG)
        digests.append(checkpoint_digest(outcome.checkpoint))
    return digests


@pytest.mark.parametrize("config", ["tiny_mlp", "transformer_lm"])
def test_reproducible_training_is_bitwise_identical_on_one_and_two_threads(config: str) -> None:
    order = make_order(config, 8, 4, batch_size=16, numerics=REPRODUCIBLE)
    assert segment_digests(order, Environment("cpu", 1)) == segment_digests(order, Environment("cpu", 2))


def test_the_transformer_draws_dropout_from_the_cpu_generator_under_reproducible_numerics() -> None:
    order = make_order("transformer_lm", 2, 2, batch_size=8, numerics=REPRODUCIBLE)
    session = TrainingSession(prepared(order), order.data_order_seed, Environment("cpu", 1))
    assert not any(isinstance(module, torch.nn.Dropout) for module in session.model.modules())
    assert set(session.checkpoint()) >= {"rng/cpu"}
    assert all(tensor.dtype != torch.float64 for tensor in session.checkpoint().values())


@CUDA
@settings(max_examples=100, deadline=None)
@given(roundings())
def test_the_tensor_operations_on_cuda_round_as_the_compiled_pass(case: tuple[np.ndarray, ...]) -> None:
    exact, positions, bits = case
    compiled, on_cuda = both_ways(exact, (positions, bits), "cuda")
    assert compiled == on_cuda


@CUDA
def test_a_cuda_session_trains_on_from_a_cpu_checkpoint() -> None:
    order = make_order("transformer_lm", 4, 2, batch_size=8)
    cpu = TrainingSession(prepared(order), order.data_order_seed, Environment("cpu", 1))
    cpu.run_segment()
    cuda = TrainingSession(prepared(order), order.data_order_seed, Environment("cuda", 1))
    cuda.restore(cpu.checkpoint())
    assert cuda.run_segment().losses


ZONE = 2.0**-TIE_ZONE_BITS
grid_offsets = st.one_of(
    st.just(0.0),
    st.floats(-(2.0**-12), 2.0**-12),
    st.floats(ZONE - 2.0**-15, ZONE + 2.0**-15).flatmap(lambda edge: st.sampled_from([edge, -edge])),
    st.floats(-0.5, 0.5),
)


@st.composite
def gradients(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A gradient whose largest magnitude is 1 (grid step 2**-23), with values near grid midpoints
    and the tie zone's edges, and a log of directions (0, 1, or junk) for some of them."""
    steps = draw(st.lists(st.tuples(st.integers(-(2**22), 2**22 - 1), grid_offsets), min_size=1, max_size=48))
    exact = np.array([1.0] + [(n + 0.5 + offset) * 2.0**-23 for n, offset in steps], dtype=np.float64)
    chosen = sorted(draw(st.sets(st.integers(0, len(exact) - 1), max_size=8)))
    directions = [draw(st.sampled_from([0, 1, 7])) for _ in chosen]
    return exact, np.array(chosen, dtype=np.int64), np.array(directions, dtype=np.int64)


@settings(max_examples=300, deadline=None)
@given(gradients())
def test_the_compiled_pass_and_the_tensor_operations_quantize_gradients_alike(
    case: tuple[np.ndarray, ...],
) -> None:
    exact, positions, directions = case
    compiled = torch.from_numpy(exact.copy())
    log = RoundingLog(np.zeros(len(positions), dtype=np.int64), positions + GRADIENT_POSITIONS, directions)
    compiled_log, compiled_refused = quantize_gradients([compiled], 0, log)
    tensor_ops = torch.from_numpy(exact.copy())
    edge, ups, refused = quantize_with_tensor_ops(tensor_ops, (positions, directions))
    assert compiled.view(torch.int64).tolist() == tensor_ops.view(torch.int64).tolist()
    assert (compiled_log.positions - GRADIENT_POSITIONS).tolist() == edge.tolist()
    assert compiled_log.bits.tolist() == ups.tolist()
    assert compiled_refused == refused


def test_a_gradient_is_put_on_its_block_grid_with_ties_to_even() -> None:
    step = 2.0**-23  # the grid of a gradient whose largest magnitude is 1
    values = torch.tensor([1.0, 2.5 * step, 3.5 * step, 3.7 * step, 1e-12], dtype=torch.float64)
    quantize_gradients([values], 0, EMPTY_LOG)
    assert values.tolist() == [1.0, 2 * step, 4 * step, 4 * step, 0.0]
