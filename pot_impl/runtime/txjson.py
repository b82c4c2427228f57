"""Ledger transactions and receipts as JSON, for ``pot submit``.

A transaction is ``{"type": "<class name>", <field>: <value>, ...}`` with
byte fields in hex. The mapping is derived from the transaction dataclasses'
type hints, so new transaction types need no code here.
"""

from __future__ import annotations

import dataclasses
import json
import typing
from typing import Any

from pot_impl import codec
from pot_impl.ledger.transactions import TRANSACTION_TYPES, Receipt, Transaction

BY_NAME = {cls.__name__: cls for cls in TRANSACTION_TYPES}


def _convert(value: Any, hint: Any, where: str) -> Any:
    if hint is bytes:
        if not isinstance(value, str):
            raise ValueError(f"{where}: expected a hex string")
        try:
            return bytes.fromhex(value)
        except ValueError:
            raise ValueError(f"{where}: not hexadecimal") from None
    if hint is int:
        if type(value) is not int:
            raise ValueError(f"{where}: expected an integer")
        if not codec.INT_MIN <= value <= codec.INT_MAX:
            raise ValueError(f"{where}: {value} is outside {codec.INT_MIN}..{codec.INT_MAX}")
        return value
    if hint is str:
        if not isinstance(value, str):
            raise ValueError(f"{where}: expected a string")
        return value
    if typing.get_origin(hint) is tuple:
        if not isinstance(value, list):
            raise ValueError(f"{where}: expected an array")
        item = typing.get_args(hint)[0]
        return tuple(_convert(v, item, f"{where}[{i}]") for i, v in enumerate(value))
    raise ValueError(f"{where}: unsupported field type {hint}")


def transaction_from_json(text: str) -> Transaction:
    """Parse a transaction; ``ValueError`` names the offending field."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"--tx: not valid JSON ({exc.msg})") from None
    if not isinstance(data, dict):
        raise ValueError("--tx: expected a JSON object")
    name = data.pop("type", None)
    cls = BY_NAME.get(name) if isinstance(name, str) else None
    if cls is None:
        raise ValueError(f"--tx.type: expected one of {', '.join(BY_NAME)}, got {name!r}")
    hints = typing.get_type_hints(cls)
    fields = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - fields)
    if unknown:
        raise ValueError(f"--tx.{unknown[0]}: not a field of {name}")
    missing = sorted(fields - set(data))
    if missing:
        raise ValueError(f"--tx.{missing[0]}: missing (required by {name})")
    return cls(**{key: _convert(value, hints[key], f"--tx.{key}") for key, value in data.items()})


def result_to_json(result: bytes) -> dict[str, Any]:
    """A reply's result: the ledger's receipt when it decodes as one, raw hex otherwise."""
    try:
        receipt = codec.decode(result, Receipt)
    except codec.DecodeError:
        return {"result": result.hex()}
    return {"receipt": {f.name: getattr(receipt, f.name) for f in dataclasses.fields(receipt)}}
