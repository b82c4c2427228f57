"""Canonical, strict encoding of every wire type (PBFT messages and ledger transactions).

Format: msgpack, and only arrays, ints, byte strings and UTF-8 strings. A
wire object is the array ``[TAG, field1, field2, ...]`` with fields in
declaration order; nested objects carry their own tag, tuples are arrays.
There are no maps, floats or optionals, so each value has exactly one
encoding. Decoding is strict: the frame size, every length, every type and
every tag is checked against the dataclass schema, and the input must be the
canonical encoding of what it decodes to (re-encoding must give the same
bytes). Any failure raises ``DecodeError`` and nothing else. Never pickle.

Digests are SHA-256 over canonical bytes, so two processes that hold equal
values compute equal digests (Python's salted ``hash()`` is never used).
"""

from __future__ import annotations

import dataclasses
import enum
import hashlib
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import msgpack

from pot_impl.ledger import records, transactions
from pot_impl.pbft import messages

MAX_FRAME_BYTES = 16 * 1024 * 1024
"""Largest encoded message accepted; larger frames are rejected before parsing."""
MAX_FIELD_BYTES = 8 * 1024 * 1024
"""Largest single byte or text string inside a message."""
MAX_ARRAY_LEN = 100_000
"""Longest tuple inside a message."""
INT_MIN: int = -(2**63)
INT_MAX: int = 2**64 - 1
"""The integer range msgpack encodes natively: [INT_MIN, INT_MAX]."""

SIGNING_DOMAIN = b"pot-pbft/v1/sign\x00"
"""Prefix of every signed payload, so signatures cannot be replayed in another protocol."""

T = TypeVar("T")


class DecodeError(ValueError):
    """The input is not the canonical encoding of a well-formed wire object."""


class EncodeError(TypeError):
    """A value outside the wire schema was passed to ``encode`` (a programming error)."""


@dataclass(frozen=True)
class _Field:
    name: str
    encode: Callable[[Any], Any]
    decode: Callable[[Any], Any]


def _check_int(value: Any) -> int:
    if type(value) is not int or not INT_MIN <= value <= INT_MAX:
        raise DecodeError(f"expected an integer, got {type(value).__name__}")
    return value


def _check_bytes(value: Any) -> bytes:
    if type(value) is not bytes:
        raise DecodeError(f"expected bytes, got {type(value).__name__}")
    return value


def _check_str(value: Any) -> str:
    if type(value) is not str:
        raise DecodeError(f"expected a string, got {type(value).__name__}")
    return value


def _scalar_encoder(kind: type) -> Callable[[Any], Any]:
    def encode_scalar(value: Any) -> Any:
        if kind is int and isinstance(value, enum.IntEnum):
            value = int(value)  # protocol enums travel as their plain values
        if type(value) is not kind:
            raise EncodeError(f"expected {kind.__name__}, got {type(value).__name__}")
        if isinstance(value, int) and not INT_MIN <= value <= INT_MAX:
            raise EncodeError(f"integer {value} outside the encodable range")
        return value

    return encode_scalar


class _Schema:
    """Encoders and decoders for the registered wire types, derived from their type hints."""

    def __init__(self, wire_types: Sequence[type]) -> None:
        self.by_tag: dict[int, type] = {}
        self.fields: dict[type, tuple[_Field, ...]] = {}
        for cls in wire_types:
            tag = cls.TAG  # type: ignore[attr-defined]
            if tag in self.by_tag:
                raise ValueError(f"duplicate wire tag {tag}: {cls.__name__} and {self.by_tag[tag].__name__}")
            self.by_tag[tag] = cls
        for cls in wire_types:
            hints = typing.get_type_hints(cls)
            self.fields[cls] = tuple(
                _Field(f.name, *self._codec_for(hints[f.name])) for f in dataclasses.fields(cls)
            )

    def _codec_for(self, hint: Any) -> tuple[Callable[[Any], Any], Callable[[Any], Any]]:
        if hint is int:
            return _scalar_encoder(int), _check_int
        if hint is bytes:
            return _scalar_encoder(bytes), _check_bytes
        if hint is str:
            return _scalar_encoder(str), _check_str
        origin = typing.get_origin(hint)
        if origin is tuple:
            item, ellipsis = typing.get_args(hint)
            if ellipsis is not Ellipsis:
                raise ValueError(f"only homogeneous tuples are wire types, not {hint}")
            encode_item, decode_item = self._codec_for(item)
            return (
                (lambda v: self._encode_tuple(v, encode_item)),
                (lambda v: self._decode_tuple(v, decode_item)),
            )
        if origin in (typing.Union, types.UnionType):
            allowed = typing.get_args(hint)
            return self.encode_object, (lambda v: self.decode_object(v, allowed))
        if isinstance(hint, type) and hint in self.by_tag.values():
            return self.encode_object, (lambda v: self.decode_object(v, (hint,)))
        raise ValueError(f"{hint} is not a wire type")

    @staticmethod
    def _encode_tuple(value: Any, encode_item: Callable[[Any], Any]) -> list[Any]:
        if type(value) is not tuple:
            raise EncodeError(f"expected a tuple, got {type(value).__name__}")
        return [encode_item(item) for item in value]

    @staticmethod
    def _decode_tuple(value: Any, decode_item: Callable[[Any], Any]) -> tuple[Any, ...]:
        if type(value) is not list:
            raise DecodeError(f"expected an array, got {type(value).__name__}")
        return tuple(decode_item(item) for item in value)

    def encode_object(self, obj: Any) -> list[Any]:
        fields = self.fields.get(type(obj))
        if fields is None:
            raise EncodeError(f"{type(obj).__name__} is not a wire type")
        return [type(obj).TAG, *(f.encode(getattr(obj, f.name)) for f in fields)]

    def decode_object(self, value: Any, allowed: tuple[type, ...]) -> Any:
        if type(value) is not list or not value:
            raise DecodeError("expected a tagged array")
        cls = self.by_tag.get(_check_int(value[0]))
        if cls is None:
            raise DecodeError(f"unknown type tag {value[0]}")
        if cls not in allowed:
            raise DecodeError(f"{cls.__name__} is not allowed here")
        fields = self.fields[cls]
        if len(value) != len(fields) + 1:
            raise DecodeError(f"{cls.__name__} needs {len(fields)} fields, got {len(value) - 1}")
        return cls(**{f.name: f.decode(item) for f, item in zip(fields, value[1:], strict=True)})


_SCHEMA = _Schema((*messages.WIRE_TYPES, *transactions.WIRE_TYPES, *records.WIRE_TYPES))


def _pack(value: Any) -> bytes:
    return msgpack.packb(value, use_bin_type=True)  # type: ignore[no-any-return]


def encode(obj: object) -> bytes:
    """The canonical bytes of a wire object."""
    return _pack(_SCHEMA.encode_object(obj))


def encode_array(items: Sequence[bytes]) -> bytes:
    """The canonical bytes of an array whose items are given encoded (a msgpack array is its
    header followed by its items), so a caller may keep the encodings of items that do not change."""
    count = len(items)
    if count < 16:
        header = bytes((0x90 | count,))
    elif count < 1 << 16:
        header = b"\xdc" + count.to_bytes(2, "big")
    else:
        header = b"\xdd" + count.to_bytes(4, "big")
    return header + b"".join(items)


def encode_fields(cls: type, values: Mapping[str, object], encoded: Mapping[str, bytes]) -> bytes:
    """``encode(cls(**fields))`` for fields given partly as values and partly already encoded
    (``encoded``, taken as they are and not checked again)."""
    parts = [_pack(cls.TAG)]  # type: ignore[attr-defined]
    for field in _SCHEMA.fields[cls]:
        given = encoded.get(field.name)
        parts.append(_pack(field.encode(values[field.name])) if given is None else given)
    return encode_array(parts)


@dataclass(frozen=True)
class Limits:
    """The largest input, byte or text string and array that ``decode`` accepts."""

    total: int = MAX_FRAME_BYTES
    field: int = MAX_FIELD_BYTES
    array: int = MAX_ARRAY_LEN


NETWORK_LIMITS = Limits()
"""For anything a peer sent: frames are checked against these before parsing."""


def decode(data: bytes, expected: type[T] | tuple[type[T], ...], limits: Limits = NETWORK_LIMITS) -> T:
    """Parse ``data`` as one of the ``expected`` wire types; raises ``DecodeError`` on anything else."""
    allowed = expected if isinstance(expected, tuple) else (expected,)
    if type(data) is not bytes:
        raise DecodeError("input must be bytes")
    if len(data) > limits.total:
        raise DecodeError(f"{len(data)} bytes exceed the limit of {limits.total}")
    try:
        raw = msgpack.unpackb(
            data,
            raw=False,
            use_list=True,
            strict_map_key=True,
            max_bin_len=limits.field,
            max_str_len=limits.field,
            max_array_len=limits.array,
            max_map_len=0,
            max_ext_len=0,
        )
    except Exception as error:  # msgpack raises several unrelated types on malformed input
        raise DecodeError(_msgpack_problem(error)) from None
    try:
        obj = _SCHEMA.decode_object(raw, allowed)
    except (TypeError, ValueError, RecursionError) as error:
        if isinstance(error, DecodeError):
            raise
        raise DecodeError(f"invalid field: {error}") from None
    if encode(obj) != data:
        raise DecodeError("non-canonical encoding")
    return typing.cast(T, obj)


def decode_unlimited(data: bytes, expected: type[T] | tuple[type[T], ...]) -> T:
    """Parse bytes that are no peer's frame (a record this node stored, a snapshot it holds): no
    limit but their own length. A state may legitimately outgrow any frame, and refusing to read
    it back would stop a restart."""
    return decode(data, expected, Limits(len(data), len(data), len(data)))


def _msgpack_problem(error: Exception) -> str:
    """What is wrong with input msgpack refused, in words (its own messages are terse)."""
    if isinstance(error, msgpack.ExtraData):
        return "trailing bytes after the encoded value"
    if isinstance(error, msgpack.FormatError):
        return "not msgpack (a reserved type byte)"
    if isinstance(error, msgpack.StackError):
        return "nested too deeply"
    if "incomplete input" in str(error):
        return "truncated: the input ends inside a value"
    return f"malformed msgpack: {error}"


def decode_message(data: bytes) -> messages.Message:
    """Parse one top-level PBFT or client message from the network."""
    return decode(data, messages.SIGNED_TYPES)


def digest(obj: object) -> bytes:
    """SHA-256 of the canonical encoding of a wire object."""
    return hashlib.sha256(encode(obj)).digest()


def request_size(request: messages.Request) -> int:
    """``len(encode(request))``, computed without encoding: the replica sizes every request it
    admits or finds in a batch against its byte limits, and encoding each would cost far more."""
    client = request.client
    client_bytes = len(client) if client.isascii() else len(client.encode())
    return (
        2  # the array header and the one-byte tag
        + _length_prefixed_size(client_bytes, short_limit=31)
        + _int_size(request.timestamp)
        + _length_prefixed_size(len(request.operation), short_limit=-1)
        + _length_prefixed_size(len(request.signature), short_limit=-1)
    )


def _length_prefixed_size(length: int, short_limit: int) -> int:
    """A msgpack string (``short_limit`` 31: one-byte header up to 31 bytes) or byte string
    (``short_limit`` -1: no one-byte form) of ``length`` bytes, header included."""
    if length <= short_limit:
        return 1 + length
    if length <= 0xFF:
        return 2 + length
    if length <= 0xFFFF:
        return 3 + length
    return 5 + length


def _int_size(value: int) -> int:
    if -32 <= value <= 127:
        return 1
    if value > 0:
        return 2 if value <= 0xFF else 3 if value <= 0xFFFF else 5 if value <= 0xFFFFFFFF else 9
    return 2 if value >= -(2**7) else 3 if value >= -(2**15) else 5 if value >= -(2**31) else 9


def batch_digest(batch: tuple[messages.Request, ...]) -> bytes:
    """The digest a pre-prepare carries for its batch (the empty batch is the null request)."""
    encoded = _pack([_SCHEMA.encode_object(request) for request in batch])
    return hashlib.sha256(b"pot-pbft/v1/batch\x00" + encoded).digest()


def signing_payload(message: messages.Message) -> bytes:
    """The bytes a message's signature covers: its canonical encoding with an empty signature."""
    return SIGNING_DOMAIN + encode(dataclasses.replace(message, signature=b""))
