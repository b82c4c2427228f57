"""Canonical JSON: the one byte encoding of tasks and orders that every node agrees on."""

from __future__ import annotations

import json
from typing import Any


class EncodingError(ValueError):
    """Bytes that are not the canonical encoding of a JSON object."""


def canonical_json(value: Any) -> bytes:
    """Sorted keys, no whitespace, ASCII only, no NaN or infinities: equal values give equal bytes."""
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False
    ).encode("ascii")


def parse_canonical_json(data: bytes) -> dict[str, Any]:
    """Decode a JSON object and insist that ``data`` was its canonical encoding.

    Insisting on canonical form keeps digests of tasks unambiguous: two byte
    strings can never describe the same task.
    """
    try:
        value = json.loads(data.decode("ascii"), parse_constant=_reject_constant)
    except (UnicodeDecodeError, json.JSONDecodeError, ValueError) as exc:
        raise EncodingError(f"not valid canonical JSON: {exc}") from None
    if not isinstance(value, dict):
        raise EncodingError("expected a JSON object at the top level")
    if canonical_json(value) != data:
        raise EncodingError("JSON is not in canonical form (sorted keys, no whitespace)")
    return value


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not allowed")
