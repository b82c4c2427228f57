"""Length-prefixed frames over a byte stream, and per-connection abuse accounting.

A frame is a 4-byte big-endian length followed by that many payload bytes.
``FrameDecoder`` is sans-IO so it can be tested on arbitrary chunkings; an
oversized frame is skipped without buffering its body (memory stays bounded
whatever length a peer claims) and reported, so the caller can count it as
abuse.
"""

from __future__ import annotations

from dataclasses import dataclass, field

HEADER_BYTES = 4
MAX_ENCODABLE = (1 << (8 * HEADER_BYTES)) - 1


def encode_frame(payload: bytes) -> bytes:
    if len(payload) > MAX_ENCODABLE:
        raise ValueError(f"frame payload of {len(payload)} bytes exceeds the format limit")
    return len(payload).to_bytes(HEADER_BYTES, "big") + payload


@dataclass
class DecodeResult:
    frames: list[bytes] = field(default_factory=list)
    oversized: list[int] = field(default_factory=list)  # declared lengths of skipped frames


class FrameDecoder:
    """Splits a byte stream into frames of at most ``max_frame_bytes``.

    The limit may change between frames (a connection's first frame decides who the peer is,
    and so how large its later frames may be): ``feed(data, max_frames=1)`` stops after one
    frame and keeps the rest buffered for the next call."""

    def __init__(self, max_frame_bytes: int) -> None:
        self.max_frame_bytes = max_frame_bytes
        self._buffer = bytearray()
        self._skip = 0  # body bytes of an oversized frame still to discard

    def feed(self, data: bytes, max_frames: int | None = None) -> DecodeResult:
        result = DecodeResult()
        view = memoryview(data)
        if self._skip:
            dropped = min(self._skip, len(view))
            self._skip -= dropped
            view = view[dropped:]
        self._buffer += view
        buffer = self._buffer
        start = 0
        while len(buffer) - start >= HEADER_BYTES:
            length = int.from_bytes(buffer[start : start + HEADER_BYTES], "big")
            body = start + HEADER_BYTES
            if length > self.max_frame_bytes:
                result.oversized.append(length)
                available = len(buffer) - body
                if available >= length:
                    start = body + length
                    continue
                self._skip = length - available
                start = len(buffer)
                break
            if len(buffer) - body < length:
                break
            result.frames.append(bytes(buffer[body : body + length]))
            start = body + length
            if len(result.frames) == max_frames:
                break
        if start:
            del buffer[:start]
        return result

    @property
    def buffered(self) -> int:
        return len(self._buffer)


class AbuseCounter:
    """Counts a peer's bad frames; ``exhausted`` once it has sent ``limit`` of them."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.count = 0

    def record(self) -> bool:
        """Count one bad frame; True when the connection should now be closed."""
        self.count += 1
        return self.exhausted

    @property
    def exhausted(self) -> bool:
        return self.count >= self.limit
