"""Reproducible numerics: training steps that are bitwise identical on any thread count and device.

A step computes in float64 from a float32 state and rounds its results (the loss, the weights and
the optimizer's moments) back to float32. Float64 runs on different hardware or thread counts
differ by a few float64 ulps, and float32 rounding hides that unless a value lies within
a small fraction (``TIE_MARGIN_BITS``) of a float32 ulp of a rounding midpoint. The trainer logs its decision for every such
near-tie and a re-executor follows the log, in the spirit of Srivastava, Arora and Boneh
(NeurIPS 2024). A re-executor takes a logged decision only for a value that is near a tie in its
own computation too and only if it names one of that value's two float32 neighbours, so a trainer
cannot use the log to steer anything else.

Dropout masks come from the CPU generator whatever the device (CUDA's generator draws a different
stream), so the randomness is device-independent as well.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from pot_impl.training import _rounding

NATIVE = "native"
REPRODUCIBLE = "reproducible"
NUMERICS = (NATIVE, REPRODUCIBLE)
"""What a task may name as its numerics: native float32 (tier A needs the same environment) or
reproducible (tier A holds in every environment)."""

TIE_MARGIN_BITS = 17
"""A value is a near-tie when it lies within 2**-TIE_MARGIN_BITS of a float32 ulp of a rounding
midpoint; re-executors take logged decisions within twice that. Honest runs agree whenever their
float64 results differ by less than that margin (bench_training's reproducibility table measures
the divergence between thread counts and devices against it)."""

_DROPPED_BITS = (1 << 29) - 1  # float64 mantissa bits below float32's
_HALF_ULP = 1 << 28
_MAGNITUDE = (1 << 63) - 1
_FLOAT32_MIN_NORMAL = 0x3810000000000000  # float64 bits of 2**-126
_FLOAT32_BINADES_END = 0x47F0000000000000  # float64 bits of 2**128
_LOG_DTYPE = np.dtype(">u4")
_FIELDS = ("steps", "positions", "bits")


@dataclass(frozen=True)
class RoundingLog:
    """Near-tie decisions sorted by (step, position): at ``step``, element ``position`` of the
    step's rounded vector (the loss, then each parameter and its optimizer state) got the float32
    whose bits are ``bits``. One encoding: big-endian (step, position, bits) words."""

    steps: np.ndarray
    positions: np.ndarray
    bits: np.ndarray

    def __len__(self) -> int:
        return len(self.steps)

    def encode(self) -> bytes:
        return np.stack([self.steps, self.positions, self.bits], axis=1).astype(_LOG_DTYPE).tobytes()

    @classmethod
    def decode(cls, data: bytes) -> RoundingLog:
        """ValueError unless ``data`` is whole words in strictly increasing (step, position) order."""
        if len(data) % (3 * _LOG_DTYPE.itemsize):
            raise ValueError("rounding log length is not a whole number of decisions")
        words = np.frombuffer(data, dtype=_LOG_DTYPE).reshape(-1, 3).astype(np.int64)
        log = cls(words[:, 0].copy(), words[:, 1].copy(), words[:, 2].copy())
        keys = log.steps << 32 | log.positions
        if len(keys) > 1 and not bool((keys[1:] > keys[:-1]).all()):
            raise ValueError("rounding log is not in strictly increasing (step, position) order")
        return log

    @classmethod
    def of(cls, parts: Sequence[RoundingLog]) -> RoundingLog:
        """The log of consecutive parts, in order."""
        return cls(*(np.concatenate([getattr(part, name) for part in parts] or [_NONE]) for name in _FIELDS))

    def at_step(self, step: int) -> RoundingLog:
        low, high = np.searchsorted(self.steps, [step, step + 1])
        return RoundingLog(self.steps[low:high], self.positions[low:high], self.bits[low:high])

    def within(self, start: int, stop: int) -> tuple[np.ndarray, np.ndarray]:
        """Positions (relative to ``start``) and bits of a one-step log's entries in [start, stop)."""
        low, high = np.searchsorted(self.positions, [start, stop])
        return self.positions[low:high] - start, self.bits[low:high]


_NONE = np.zeros(0, dtype=np.int64)
EMPTY_LOG = RoundingLog(_NONE, _NONE, _NONE)


def rounding_geometry(exact: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """For float64 values: the nearest float32, the other float32 neighbour, and the distance to the
    midpoint between them and their gap (both exact in float64). Any magnitude, any device."""
    nearest = exact.to(torch.float32)
    widened = nearest.to(torch.float64)
    error = exact - widened
    toward = torch.full_like(nearest, torch.inf).copysign_(error.to(torch.float32))
    neighbour = torch.nextafter(nearest, toward)
    gap = (neighbour.to(torch.float64) - widened).abs_()
    return nearest, neighbour, 0.5 * gap - error.abs(), gap


def round_in_place(
    values: torch.Tensor,
    follow: tuple[np.ndarray, np.ndarray] = (_NONE, _NONE),
    margin_bits: int = TIE_MARGIN_BITS,
) -> tuple[np.ndarray, np.ndarray, int]:
    """Round a contiguous float64 tensor to float32 values in place, taking ``follow``'s logged
    (position, bits) decisions where they are near-ties here too. Returns the positions and chosen
    bits of this rounding's own near-ties, and how many logged decisions it refused.

    Every comparison is on exact quantities (bit fields, or float64 differences that are exact), so
    the result is the same on every device and thread count for the same input. CPU tensors take
    one compiled pass (``_rounding.c``); others the same rule in tensor operations.
    """
    if values.device.type != "cpu":
        return round_with_tensor_ops(values, follow, margin_bits)
    positions, bits, refused = _rounding.round_in_place(
        values.view(-1).numpy().data,
        margin_bits,
        np.ascontiguousarray(follow[0], dtype=np.int64).data,
        np.ascontiguousarray(follow[1], dtype=np.uint32).data,
    )
    return np.frombuffer(positions, dtype=np.int64), np.frombuffer(bits, dtype=np.uint32).astype(np.int64), refused


def round_with_tensor_ops(
    values: torch.Tensor,
    follow: tuple[np.ndarray, np.ndarray] = (_NONE, _NONE),
    margin_bits: int = TIE_MARGIN_BITS,
) -> tuple[np.ndarray, np.ndarray, int]:
    """``round_in_place`` in tensor operations, for any device."""
    flat = values.view(-1)
    bits = flat.view(torch.int64)
    nearest = flat.to(torch.float32)
    magnitude = bits & _MAGNITUDE
    below_normal = magnitude < _FLOAT32_MIN_NORMAL
    near = ((bits & _DROPPED_BITS) - _HALF_ULP).abs_() < (1 << (29 - margin_bits))
    near &= ~below_normal & (magnitude < _FLOAT32_BINADES_END)
    positions = np.flatnonzero(near.cpu().numpy())
    subnormal = np.flatnonzero((below_normal & (magnitude != 0)).cpu().numpy())
    if len(subnormal):
        _, _, distance, gap = rounding_geometry(flat[torch.from_numpy(subnormal).to(flat.device)])
        tied = (distance < gap * 2.0**-margin_bits).cpu().numpy()
        positions = np.union1d(positions, subnormal[tied])
    chosen = nearest[torch.from_numpy(positions).to(flat.device)].cpu().numpy().view(np.uint32)
    logged_positions, logged_bits = follow
    refused = 0
    if len(logged_positions):
        index = torch.from_numpy(logged_positions).to(flat.device)
        logged = torch.from_numpy(logged_bits.astype(np.uint32).view(np.float32)).to(flat.device)
        mine, neighbour, distance, gap = rounding_geometry(flat[index])
        takeable = (distance < gap * 2.0 ** (1 - margin_bits)) & ((logged == mine) | (logged == neighbour))
        refused = len(logged_positions) - int(takeable.sum())
        nearest[index[takeable]] = logged[takeable]
    flat.copy_(nearest)
    return positions, chosen.astype(np.int64), refused


def round_step(tensors: Sequence[torch.Tensor], step: int, follow: RoundingLog) -> tuple[RoundingLog, int]:
    """Round a step's float64 results in place, as one vector in the order given (positions count
    across the tensors), taking ``follow``'s decisions for this step. Returns the step's near-ties
    and how many logged decisions were refused."""
    if tensors[0].device.type == "cpu":
        parts, sizes = list(tensors), [tensor.numel() for tensor in tensors]
    else:  # one vector, so the tensor path launches its kernels once
        sizes = [tensor.numel() for tensor in tensors]
        parts = [torch.cat([tensor.reshape(-1) for tensor in tensors])]
    logged = follow.at_step(step)
    positions, chosen, refused, offset = [], [], 0, 0
    for part in parts:
        size = part.numel()
        near, bits, not_taken = round_in_place(part, logged.within(offset, offset + size))
        positions.append(near + offset)
        chosen.append(bits)
        refused += not_taken
        offset += size
    if len(parts) == 1 and len(tensors) > 1:
        for tensor, rounded in zip(tensors, torch.split(parts[0], sizes), strict=True):
            tensor.copy_(rounded.view_as(tensor))
    where = np.concatenate(positions)
    return RoundingLog(np.full(len(where), step, dtype=np.int64), where, np.concatenate(chosen)), refused


class HostDropout(nn.Module):
    """Dropout whose mask comes from the CPU generator on every device."""

    def __init__(self, p: float) -> None:
        super().__init__()
        self.p = p

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return inputs
        keep = torch.rand(inputs.shape, dtype=torch.float64) >= self.p
        return inputs * keep.to(inputs.device, inputs.dtype) / (1.0 - self.p)


def use_host_dropout(model: nn.Module) -> None:
    """Replace every ``nn.Dropout`` in ``model`` by a ``HostDropout`` of the same rate."""
    for module in list(model.modules()):
        for name, child in list(module.named_children()):
            if isinstance(child, nn.Dropout):
                setattr(module, name, HostDropout(child.p))
