"""Messages larger than a frame, between replicas: split when sent, put together when received.

A ``StateResponse`` carries the whole service state and a ``CatchUp`` up to a watermark window
of batches; both grow with the ledger past any frame limit, and a replica that cannot receive
them can never catch up. So a replica sends such a message as ``FRAGMENT`` frames, each
``[digest, index, count, chunk]`` with the SHA-256 of the whole message, and the receiver puts
them together in order, one message at a time per connection, within
``transport.max_message_bytes``. Only replicas may send fragments (they are authenticated by
their hello); the message put together is then decoded and its signatures checked like any other.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from pot_impl.runtime.transport import pack_control, unpack_control

FRAGMENT_OVERHEAD = 64
"""Bytes a fragment frame adds around its chunk: kind byte, array header, digest, index, count."""


def fragment(payload: bytes, chunk_bytes: int) -> list[bytes]:
    """FRAGMENT frame bodies that carry ``payload`` in chunks of at most ``chunk_bytes``."""
    digest = hashlib.sha256(payload).digest()
    count = -(-len(payload) // chunk_bytes)
    return [
        pack_control([digest, index, count, payload[index * chunk_bytes : (index + 1) * chunk_bytes]])
        for index in range(count)
    ]


@dataclass
class Reassembly:
    """The message being put together from one connection's fragments."""

    max_bytes: int
    digest: bytes = b""
    count: int = 0
    chunks: list[bytes] = field(default_factory=list)
    size: int = 0

    def add(self, body: bytes) -> bytes | None:
        """Take one fragment; the whole message once its last fragment arrived. Raises
        ``ValueError`` saying why a fragment is refused (malformed, out of order, over the limit,
        or a message whose bytes do not match its digest); the message in progress is dropped."""
        try:
            digest, index, count, chunk = self._parse(body)
            if index == 0:
                self._start(digest, count)
            elif (digest, count, index) != (self.digest, self.count, len(self.chunks)):
                raise ValueError(f"fragment {index} of {count} out of order")
            self.size += len(chunk)
            if self.size > self.max_bytes:
                raise ValueError(f"message over transport.max_message_bytes ({self.max_bytes})")
            self.chunks.append(chunk)
        except ValueError:
            self._start(b"", 0)
            raise
        if len(self.chunks) < self.count:
            return None
        payload = b"".join(self.chunks)
        self._start(b"", 0)
        if hashlib.sha256(payload).digest() != digest:
            raise ValueError("fragments do not match their digest")
        return payload

    def _start(self, digest: bytes, count: int) -> None:
        self.digest, self.count, self.chunks, self.size = digest, count, [], 0

    def _parse(self, body: bytes) -> tuple[bytes, int, int, bytes]:
        fields = unpack_control(body, self.max_bytes)
        if not (isinstance(fields, list) and len(fields) == 4):
            raise ValueError("a fragment is [digest, index, count, chunk]")
        digest, index, count, chunk = fields
        if not (isinstance(digest, bytes) and len(digest) == 32 and isinstance(chunk, bytes) and chunk):
            raise ValueError("a fragment needs a 32-byte digest and a non-empty chunk")
        if not (isinstance(index, int) and isinstance(count, int) and 0 <= index < count):
            raise ValueError("a fragment's index must lie below its count")
        return digest, index, count, chunk
