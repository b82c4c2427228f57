"""States as bytes and back, for the frontier and the workers' pipes.

pickle calls back into Python twice for every NamedTuple, and PBFT's states are
NamedTuples: on a chunk of ``pbft-window`` states (garbage collector off, as in a
search) pickle took 5.8 µs a state to write and 2.1 µs to read. ``_codec.c`` writes
what the fingerprint walker accepts (ints of at most 64 bits, bools, IntEnum
members, tuples and NamedTuples, frozensets) without calling Python, and keeps
the parts states share shared, as pickle's memo does: 1.3 and 0.9 µs. A batch
holding anything else (a frozen dataclass, a big int, or a part that the model's
``view`` leaves out of the fingerprint) is pickled instead.

An ``Encoded`` batch keeps the classes it names as objects, so a frontier in one
process holds states of any class, local ones included; ``dumps`` turns it into
bytes for a pipe or a checkpoint, which needs the classes importable where the
bytes are read, as pickle does.
"""

from __future__ import annotations

import pickle
from typing import Any

from model_checker import _codec
from model_checker.model import SpecError

Encoded = tuple[bytes, tuple[type, ...] | None]
"""The codec's bytes and the classes they name, or (None) a pickle of the batch."""

_CODEC, _PICKLE = b"C", b"P"


def encode(states: list[Any]) -> Encoded:
    """``states`` as an ``Encoded`` batch that ``decode`` reads back (equal values of the same types)."""
    try:
        return _codec.encode(states)
    except TypeError:
        return _pickled(states, "a state"), None


def decode(encoded: Encoded) -> list[Any]:
    """The states of an ``Encoded`` batch."""
    payload, classes = encoded
    if classes is None:
        states: list[Any] = pickle.loads(payload)
        return states
    return _codec.decode(payload, classes)


def dumps(states: list[Any]) -> bytes:
    """``states`` as self-contained bytes, for ``loads`` in this or another process."""
    return to_bytes(encode(states))


def loads(data: bytes) -> list[Any]:
    """The states ``dumps`` wrote."""
    return decode(from_bytes(data))


def to_bytes(encoded: Encoded) -> bytes:
    """An ``Encoded`` batch as self-contained bytes, its classes pickled by reference."""
    payload, classes = encoded
    if classes is None:
        return _PICKLE + payload
    header = _pickled(classes, "a state's class")
    return b"".join((_CODEC, len(header).to_bytes(4, "little"), header, payload))


def from_bytes(data: bytes) -> Encoded:
    """The ``Encoded`` batch ``to_bytes`` wrote."""
    view = memoryview(data)
    if view[:1] == _PICKLE:
        return bytes(view[1:]), None
    if view[:1] != _CODEC:
        raise ValueError("corrupt state encoding")
    length = int.from_bytes(view[1:5], "little")
    classes: tuple[type, ...] = pickle.loads(view[5 : 5 + length])
    return bytes(view[5 + length :]), classes


def _pickled(value: Any, what: str) -> bytes:
    try:
        return pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
    except (pickle.PicklingError, AttributeError, TypeError) as error:
        raise SpecError(
            f"{what} cannot be pickled ({error}): states that cross to worker processes or into a "
            "checkpoint, and states the codec cannot write, need classes defined at module level"
        ) from None
