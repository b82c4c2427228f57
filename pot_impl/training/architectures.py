"""The architecture registry: every model an order may name, with its parameter bounds.

Each architecture declares which dataset kind it accepts, the parameters it
takes (with bounds, so a task cannot request an impossible model) and builds
an ``nn.Module`` mapping a batch of inputs to logits. All of them are
classifiers in the broad sense (a language model classifies the next token),
so one loss and one score (accuracy) serve them all.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from pot_impl.training.datasets import Dataset

ParamValue = int | float


class ArchitectureError(ValueError):
    """An unknown architecture or parameters it does not accept."""


@dataclass(frozen=True)
class ParamBound:
    """Inclusive bounds and default of one architecture parameter."""

    low: ParamValue
    high: ParamValue
    default: ParamValue
    integer: bool = True


class MLP(nn.Module):
    """Fully connected ReLU network on flat feature vectors."""

    def __init__(self, features: int, classes: int, hidden: int, depth: int) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        width = features
        for _ in range(depth):
            layers += [nn.Linear(width, hidden), nn.ReLU()]
            width = hidden
        layers.append(nn.Linear(width, classes))
        self.net = nn.Sequential(*layers)

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        return self.net(inputs)  # type: ignore[no-any-return]


class SmallCNN(nn.Module):
    """Two conv-ReLU-pool stages and a linear head."""

    def __init__(self, in_channels: int, size: int, classes: int, channels: int, hidden: int) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, channels, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(channels, 2 * channels, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
        )
        reduced = size // 4
        self.head = nn.Sequential(
            nn.Flatten(),
            nn.Linear(2 * channels * reduced * reduced, hidden),
            nn.ReLU(),
            nn.Linear(hidden, classes),
        )

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(inputs))  # type: ignore[no-any-return]


class CausalSelfAttention(nn.Module):
    """Multi-head attention written out with matmuls so it is deterministic on every backend
    (fused attention kernels have non-deterministic backward passes on CUDA)."""

    def __init__(self, width: int, heads: int, dropout: float) -> None:
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(width, 3 * width)
        self.out = nn.Linear(width, width)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, length, width = x.shape
        q, k, v = self.qkv(x).view(batch, length, 3, self.heads, width // self.heads).permute(2, 0, 3, 1, 4)
        scores = (q @ k.transpose(-2, -1)) / math.sqrt(width // self.heads)
        mask = torch.ones(length, length, dtype=torch.bool, device=x.device).triu(1)
        weights = self.dropout(scores.masked_fill(mask, float("-inf")).softmax(dim=-1))
        mixed = (weights @ v).transpose(1, 2).reshape(batch, length, width)
        return self.out(mixed)  # type: ignore[no-any-return]


class Block(nn.Module):
    """Pre-norm transformer block."""

    def __init__(self, width: int, heads: int, dropout: float) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(width)
        self.attention = CausalSelfAttention(width, heads, dropout)
        self.norm2 = nn.LayerNorm(width)
        self.mlp = nn.Sequential(nn.Linear(width, 4 * width), nn.GELU(), nn.Linear(4 * width, width))
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.dropout(self.attention(self.norm1(x)))
        return x + self.dropout(self.mlp(self.norm2(x)))  # type: ignore[no-any-return]


class TinyTransformerLM(nn.Module):
    """Decoder-only language model: token and position embeddings, causal blocks, tied-free head."""

    def __init__(self, vocab: int, length: int, width: int, heads: int, layers: int, dropout: float) -> None:
        super().__init__()
        self.tokens = nn.Embedding(vocab, width)
        self.positions = nn.Embedding(length, width)
        self.blocks = nn.Sequential(*(Block(width, heads, dropout) for _ in range(layers)))
        self.norm = nn.LayerNorm(width)
        self.head = nn.Linear(width, vocab)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        positions = torch.arange(tokens.shape[1], device=tokens.device)
        x = self.tokens(tokens) + self.positions(positions)
        return self.head(self.norm(self.blocks(x)))  # type: ignore[no-any-return]


Builder = Callable[[Mapping[str, ParamValue], Dataset], nn.Module]


@dataclass(frozen=True)
class Architecture:
    """A registry entry: accepted dataset kind, parameter bounds and the model builder."""

    dataset_kind: str
    params: Mapping[str, ParamBound]
    build: Builder


def _build_mlp(p: Mapping[str, ParamValue], data: Dataset) -> nn.Module:
    return MLP(data.example_shape[0], data.classes, int(p["hidden"]), int(p["depth"]))


def _build_cnn(p: Mapping[str, ParamValue], data: Dataset) -> nn.Module:
    channels, height, width = data.example_shape
    if height != width or height < 4:
        raise ArchitectureError(f"cnn needs square images of side >= 4, got {height}x{width}")
    return SmallCNN(channels, height, data.classes, int(p["channels"]), int(p["hidden"]))


def _build_transformer(p: Mapping[str, ParamValue], data: Dataset) -> nn.Module:
    if int(p["width"]) % int(p["heads"]) != 0:
        raise ArchitectureError(f"transformer width {p['width']} is not divisible by heads {p['heads']}")
    return TinyTransformerLM(
        data.classes,
        data.example_shape[0],
        int(p["width"]),
        int(p["heads"]),
        int(p["layers"]),
        float(p["dropout"]),
    )


ARCHITECTURES: Mapping[str, Architecture] = {
    "mlp": Architecture(
        "vectors", {"hidden": ParamBound(1, 8192, 64), "depth": ParamBound(0, 16, 2)}, _build_mlp
    ),
    "cnn": Architecture(
        "images", {"channels": ParamBound(1, 256, 8), "hidden": ParamBound(1, 4096, 64)}, _build_cnn
    ),
    "transformer_lm": Architecture(
        "tokens",
        {
            "width": ParamBound(8, 2048, 32),
            "heads": ParamBound(1, 32, 2),
            "layers": ParamBound(1, 24, 2),
            "dropout": ParamBound(0.0, 0.5, 0.1, integer=False),
        },
        _build_transformer,
    ),
}


def resolve_arch_params(name: str, given: Mapping[str, object]) -> dict[str, ParamValue]:
    """Defaults filled in and bounds checked; raises ArchitectureError naming the problem."""
    arch = ARCHITECTURES.get(name)
    if arch is None:
        raise ArchitectureError(f"unknown architecture {name!r}; known: {sorted(ARCHITECTURES)}")
    unknown = set(given) - set(arch.params)
    if unknown:
        raise ArchitectureError(f"architecture {name!r} has no parameters {sorted(unknown)}")
    resolved: dict[str, ParamValue] = {}
    for key, bound in arch.params.items():
        value = given.get(key, bound.default)
        numeric = isinstance(value, int) if bound.integer else isinstance(value, int | float)
        if isinstance(value, bool) or not numeric or not bound.low <= value <= bound.high:  # type: ignore[operator]
            kind = "an integer" if bound.integer else "a number"
            raise ArchitectureError(f"{name} parameter {key!r} must be {kind} in [{bound.low}, {bound.high}]")
        resolved[key] = value  # type: ignore[assignment]
    return resolved


def build_model(name: str, params: Mapping[str, ParamValue], data: Dataset) -> nn.Module:
    """The architecture's model for ``data``; raises ArchitectureError when they do not fit."""
    arch = ARCHITECTURES[name]
    if data.kind != arch.dataset_kind:
        raise ArchitectureError(
            f"architecture {name!r} trains on {arch.dataset_kind} datasets, not {data.kind}"
        )
    return arch.build(params, data)


def classification_loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy over examples (or over tokens for a language model)."""
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1))


def correct_predictions(logits: torch.Tensor, targets: torch.Tensor) -> int:
    """How many examples (or tokens) the arg-max prediction gets right."""
    return int((logits.argmax(dim=-1) == targets).sum())
