"""States as bytes and back, for the frontier and the workers' pipes.

pickle calls back into Python twice for every NamedTuple, and PBFT's states are
NamedTuples: a round trip of a chunk of ``pbft-window`` states took about 17 µs a
state, against 3.5 µs for the same values as plain tuples. ``_codec.c`` writes
what the fingerprint walker accepts (ints of at most 64 bits, bools, IntEnum
members, tuples and NamedTuples, frozensets) without calling Python, and keeps
the parts states share shared, as pickle's memo does. A batch holding anything
else (a frozen dataclass, a big int, or a part that the model's ``view`` leaves
out of the fingerprint) is pickled instead; the first byte says which.

The classes a batch names are pickled by reference beside it, so, as with
pickle, a state's classes must be importable where the batch is read.
"""

from __future__ import annotations

import pickle
from typing import Any

from model_checker import _codec

_CODEC, _PICKLE = b"C", b"P"


def encode(states: list[Any]) -> bytes:
    """``states`` as bytes that ``decode`` reads back (equal values of the same types)."""
    try:
        payload, classes = _codec.encode(states)
    except TypeError:
        return _PICKLE + pickle.dumps(states, protocol=pickle.HIGHEST_PROTOCOL)
    header = pickle.dumps(classes, protocol=pickle.HIGHEST_PROTOCOL)
    return b"".join((_CODEC, len(header).to_bytes(4, "little"), header, payload))


def decode(data: bytes) -> list[Any]:
    """The states ``encode`` wrote as ``data``."""
    view = memoryview(data)
    if view[:1] == _PICKLE:
        states: list[Any] = pickle.loads(view[1:])
        return states
    if view[:1] != _CODEC:
        raise ValueError("corrupt state encoding")
    length = int.from_bytes(view[1:5], "little")
    classes = pickle.loads(view[5 : 5 + length])
    return _codec.decode(view[5 + length :], classes)
