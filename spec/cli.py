"""Subcommands of `pot` provided by `spec`."""

from __future__ import annotations

import argparse
from typing import Any


def register(sub: "argparse._SubParsersAction[Any]") -> None:
    """Add this package's subcommands to `pot`."""
