"""Reproducible numerics: training steps that are bitwise identical on any thread count and device.

A step computes in float64 from a float32 state and rounds its results (the loss, the weights and
the optimizer's moments) back to float32, in the spirit of Srivastava, Arora and Boneh (NeurIPS
2024). Float64 runs on different hardware or thread counts differ by a few float64 ulps, far below
a float32 ulp, so they round alike except near a rounding midpoint. Values within a small zone
around a midpoint round to the even neighbour (``TIE_ZONE_BITS``), so exact ties, which are common,
need nothing more; values near that zone's edge, which devices may place on different sides of it,
are logged by the trainer and followed by re-executors (``TIE_MARGIN_BITS``). A re-executor takes a
logged decision only for a value near the edge in its own computation too, and only if it names one
of that value's two float32 neighbours; it rounds every other value by the rule, so a trainer cannot
use the log to steer anything else, and a refused entry costs nothing unless the result differs.

Gradients are first put on a block grid (``GRADIENT_BITS``) by the same rule: a gradient that
cancels to almost nothing is reduction noise, different on every device, that float32 rounding
would keep.

Dropout masks come from the CPU generator whatever the device (CUDA's generator draws a different
stream), so the randomness is device-independent as well.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from pot_impl.training import _rounding

NATIVE = "native"
REPRODUCIBLE = "reproducible"
NUMERICS = (NATIVE, REPRODUCIBLE)
"""What a task may name as its numerics: native float32 (tier A needs the same environment) or
reproducible (tier A's standard can hold across environments)."""

TIE_ZONE_BITS = 10
"""A value within 2**-TIE_ZONE_BITS of a float32 ulp of a rounding midpoint rounds to the even
neighbour ("fat ties to even"), so exact ties (a float32 times 0.9 often is one) need no log entry:
every device puts them on the same side."""
TIE_MARGIN_BITS = 14
"""Values within 2**-TIE_MARGIN_BITS of an ulp of that zone's edge are the ones devices may place on
different sides of it: the trainer logs their rounding, and re-executors take logged decisions
within twice the margin. Honest runs agree while their float64 results differ by less than the
margin: 2**-14 ulp is 6.1e-5, above the largest divergence bench_reproducible's probe measured
between an H200 and its CPU (3.8e-5), at up to 8 log entries per 100,000 rounded values."""

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


def _even(nearest: torch.Tensor, neighbour: torch.Tensor) -> torch.Tensor:
    """Of two adjacent float32 values, the one whose last mantissa bit is 0."""
    return torch.where((nearest.view(torch.int32) & 1) == 0, nearest, neighbour)


def round_in_place(
    values: torch.Tensor, follow: tuple[np.ndarray, np.ndarray] = (_NONE, _NONE)
) -> tuple[np.ndarray, np.ndarray, int]:
    """Round a contiguous float64 tensor to float32 values in place: to the even neighbour inside
    the tie zone, else to the nearest, taking ``follow``'s logged (position, bits) decisions for
    values near the zone's edge here too. Returns the positions and chosen bits of the values near
    the edge (what a trainer logs) and how many logged decisions it refused.

    Both implementations do the same IEEE operations and compare exact quantities, so the result is
    the same on every device and thread count for the same input: CPU tensors take one compiled
    pass (``_rounding.c``), others tensor operations.
    """
    if values.device.type != "cpu":
        return round_with_tensor_ops(values, follow)
    return _compiled(_rounding.round_in_place, values, (TIE_ZONE_BITS, TIE_MARGIN_BITS), follow)


def _compiled(
    kernel: Callable[..., tuple[bytes, bytes, int]],
    values: torch.Tensor,
    settings: tuple[int, ...],
    follow: tuple[np.ndarray, np.ndarray],
) -> tuple[np.ndarray, np.ndarray, int]:
    """Run one of ``_rounding.c``'s passes over a CPU tensor in place: positions, 32-bit words
    (float32 bits or directions) and refusals, as the tensor-operation paths return them."""
    positions, words, refused = kernel(
        values.view(-1).numpy().data,
        *settings,
        np.ascontiguousarray(follow[0], dtype=np.int64).data,
        np.ascontiguousarray(follow[1], dtype=np.uint32).data,
    )
    return (
        np.frombuffer(positions, dtype=np.int64),
        np.frombuffer(words, dtype=np.uint32).astype(np.int64),
        refused,
    )


def round_with_tensor_ops(
    values: torch.Tensor, follow: tuple[np.ndarray, np.ndarray] = (_NONE, _NONE)
) -> tuple[np.ndarray, np.ndarray, int]:
    """``round_in_place`` in tensor operations, for any device."""
    flat = values.view(-1)
    bits = flat.view(torch.int64)
    rounded = flat.to(torch.float32)
    magnitude = bits & _MAGNITUDE
    below_normal = magnitude < _FLOAT32_MIN_NORMAL
    normal = ~below_normal & (magnitude < _FLOAT32_BINADES_END)
    offset = ((bits & _DROPPED_BITS) - _HALF_ULP).abs_()  # distance to the midpoint, in 2**-29 ulps
    zone = 1 << (29 - TIE_ZONE_BITS)
    at_edge = ((offset - zone).abs_() < 1 << (29 - TIE_MARGIN_BITS)) & normal
    special = np.flatnonzero((((offset < zone) & normal) | (below_normal & (magnitude != 0))).cpu().numpy())
    edge = np.flatnonzero(at_edge.cpu().numpy())
    if len(special):
        index = torch.from_numpy(special).to(flat.device)
        nearest, neighbour, distance, gap = rounding_geometry(flat[index])
        rounded[index] = torch.where(distance < gap * 2.0**-TIE_ZONE_BITS, _even(nearest, neighbour), nearest)
        off_edge = (distance - gap * 2.0**-TIE_ZONE_BITS).abs()
        subnormal_edge = (off_edge < gap * 2.0**-TIE_MARGIN_BITS) & below_normal[index]
        edge = np.union1d(edge, special[subnormal_edge.cpu().numpy()])
    chosen = rounded[torch.from_numpy(edge).to(flat.device)].cpu().numpy().view(np.uint32)
    logged_positions, logged_bits = follow
    refused = 0
    if len(logged_positions):
        index = torch.from_numpy(logged_positions).to(flat.device)
        logged = torch.from_numpy(logged_bits.astype(np.uint32).view(np.float32)).to(flat.device)
        nearest, neighbour, distance, gap = rounding_geometry(flat[index])
        near_edge = (distance - gap * 2.0**-TIE_ZONE_BITS).abs() < gap * 2.0 ** (1 - TIE_MARGIN_BITS)
        takeable = near_edge & ((logged == nearest) | (logged == neighbour))
        refused = len(logged_positions) - int(takeable.sum())
        rounded[index[takeable]] = logged[takeable]
    flat.copy_(rounded)
    return edge, chosen.astype(np.int64), refused


def round_step(tensors: Sequence[torch.Tensor], step: int, follow: RoundingLog) -> tuple[RoundingLog, int]:
    """Round a step's float64 results in place, as one vector in the order given (positions count
    across the tensors), taking ``follow``'s decisions for this step. Returns the step's logged
    decisions and how many of ``follow``'s were refused."""
    if tensors[0].device.type == "cpu":
        return _round_parts(tensors, step, follow, 0, round_in_place)
    whole = torch.cat([tensor.reshape(-1) for tensor in tensors])  # the tensor path launches its kernels once
    log, refused = _round_parts([whole], step, follow, 0, round_in_place)
    for tensor, rounded in zip(
        tensors, torch.split(whole, [tensor.numel() for tensor in tensors]), strict=True
    ):
        tensor.copy_(rounded.view_as(tensor))
    return log, refused


Rounding = Callable[[torch.Tensor, tuple[np.ndarray, np.ndarray]], tuple[np.ndarray, np.ndarray, int]]


def _round_parts(
    parts: Sequence[torch.Tensor], step: int, follow: RoundingLog, first_position: int, rounding: Rounding
) -> tuple[RoundingLog, int]:
    """Apply ``rounding`` to consecutive parts of one step's vector, whose positions start at
    ``first_position``; the step's log over all parts and the refusals of ``follow``'s decisions."""
    logged = follow.at_step(step)
    positions, words, refused, offset = [_NONE], [_NONE], 0, first_position
    for part in parts:
        edge, chosen, not_taken = rounding(part, logged.within(offset, offset + part.numel()))
        positions.append(edge + offset)
        words.append(chosen)
        refused += not_taken
        offset += part.numel()
    where = np.concatenate(positions)
    return RoundingLog(np.full(len(where), step, dtype=np.int64), where, np.concatenate(words)), refused


GRADIENT_BITS = 24
"""Gradients are rounded to multiples of 2**-GRADIENT_BITS of their tensor's largest power of two
(block floating point, one exponent per tensor): the grid is far coarser than reduction noise, so
every device gets the same gradient. Grid midpoints follow the float32 rule: a zone that rounds to
the even multiple, and a logged margin at its edge."""
GRADIENT_POSITIONS = 1 << 31
"""Gradient decisions are logged at this offset plus the element's place among the gradients,
after every position of the rounded state (which has fewer than 2**31 elements)."""


def quantize_gradients(
    gradients: Sequence[torch.Tensor], step: int, follow: RoundingLog
) -> tuple[RoundingLog, int]:
    """Put each float64 gradient on its block grid in place; logs the elements near the tie zone's
    edge as 0 (rounded down) or 1 (up) and takes ``follow``'s decisions there."""
    flats = [gradient.view(-1) for gradient in gradients]
    return _round_parts(flats, step, follow, GRADIENT_POSITIONS, quantize_in_place)


def quantize_in_place(
    flat: torch.Tensor, follow: tuple[np.ndarray, np.ndarray] = (_NONE, _NONE)
) -> tuple[np.ndarray, np.ndarray, int]:
    """One gradient's block-grid rounding, exact on every device (scaling by powers of two, floor
    and the comparisons are exact in float64): CPU tensors take one compiled pass
    (``_rounding.c``), others tensor operations."""
    if flat.device.type != "cpu":
        return quantize_with_tensor_ops(flat, follow)
    settings = (GRADIENT_BITS, TIE_ZONE_BITS, TIE_MARGIN_BITS)
    return _compiled(_rounding.quantize_in_place, flat, settings, follow)


def quantize_with_tensor_ops(
    flat: torch.Tensor, follow: tuple[np.ndarray, np.ndarray] = (_NONE, _NONE)
) -> tuple[np.ndarray, np.ndarray, int]:
    """One gradient's block-grid rounding in tensor operations, for any device: the positions and
    directions near the tie zone's edge, and how many of ``follow``'s decisions were refused."""
    largest = float(flat.abs().max()) if flat.numel() else 0.0
    if not (largest > 0.0 and math.isfinite(largest)):
        return _NONE, _NONE, len(follow[0])
    spacing = 2.0 ** (math.frexp(largest)[1] - GRADIENT_BITS)
    scaled = flat / spacing
    floor = scaled.floor()
    above = scaled.sub_(floor).sub_(0.5)  # signed distance to the grid midpoint, in grid steps
    up = above > 0
    distance = above.abs_()
    zoned = torch.from_numpy(np.flatnonzero((distance < 2.0**-TIE_ZONE_BITS).cpu().numpy()))
    if len(zoned):
        zoned = zoned.to(flat.device)
        up[zoned] = torch.remainder(floor[zoned], 2.0) == 1.0  # to the even multiple
    off_edge = distance.sub_(2.0**-TIE_ZONE_BITS).abs_()
    edge = np.flatnonzero((off_edge < 2.0**-TIE_MARGIN_BITS).cpu().numpy())
    directions = up[torch.from_numpy(edge).to(flat.device)].cpu().numpy().astype(np.int64)
    given, logged = follow
    refused = 0
    if len(given):
        at = torch.from_numpy(given).to(flat.device)
        valid = torch.from_numpy(logged <= 1).to(flat.device)
        takeable = (off_edge[at] < 2.0 ** (1 - TIE_MARGIN_BITS)) & valid
        refused = len(given) - int(takeable.sum())
        up[at[takeable]] = torch.from_numpy(logged == 1).to(flat.device)[takeable]
    flat.copy_(floor.add_(up).mul_(spacing))
    return edge, directions, refused


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
