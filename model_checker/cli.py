"""Subcommands of `pot` provided by `model_checker`: check, models."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Mapping
from typing import Any

from model_checker.model import ModelSpec


def register(sub: argparse._SubParsersAction[Any], models: Callable[[], Mapping[str, ModelSpec]]) -> None:
    """Add `check` and `models`; `models` supplies the registry lazily."""
