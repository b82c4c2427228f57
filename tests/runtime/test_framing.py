"""Frame splitting is independent of how the stream is chunked; oversized frames are skipped."""

from __future__ import annotations

import itertools

from hypothesis import given
from hypothesis import strategies as st

from pot_impl.runtime.framing import AbuseCounter, FrameDecoder, encode_frame

MAX = 64


def feed_in_chunks(decoder: FrameDecoder, stream: bytes, cuts: list[int]) -> tuple[list[bytes], list[int]]:
    frames: list[bytes] = []
    oversized: list[int] = []
    points = sorted({min(c, len(stream)) for c in cuts} | {0, len(stream)})
    for start, end in itertools.pairwise(points):
        result = decoder.feed(stream[start:end])
        frames += result.frames
        oversized += result.oversized
    return frames, oversized


@given(
    payloads=st.lists(st.binary(max_size=2 * MAX), max_size=12),
    cuts=st.lists(st.integers(min_value=0, max_value=2000), max_size=20),
)
def test_any_chunking_yields_the_small_frames_in_order_and_reports_the_big_ones(
    payloads: list[bytes], cuts: list[int]
) -> None:
    stream = b"".join(encode_frame(p) for p in payloads)
    decoder = FrameDecoder(MAX)
    frames, oversized = feed_in_chunks(decoder, stream, cuts)
    assert frames == [p for p in payloads if len(p) <= MAX]
    assert oversized == [len(p) for p in payloads if len(p) > MAX]
    assert decoder.buffered == 0


def test_huge_declared_length_is_not_buffered() -> None:
    decoder = FrameDecoder(MAX)
    result = decoder.feed((10**9).to_bytes(4, "big") + b"\0" * 10_000)
    assert result.oversized == [10**9]
    assert decoder.buffered == 0
    # the rest of the claimed body is discarded, never parsed as frames
    assert decoder.feed(encode_frame(b"hello")).frames == []


def test_partial_header_waits_for_more_bytes() -> None:
    decoder = FrameDecoder(MAX)
    frame = encode_frame(b"abc")
    assert decoder.feed(frame[:2]).frames == []
    assert decoder.feed(frame[2:]).frames == [b"abc"]


def test_abuse_counter_closes_at_limit() -> None:
    counter = AbuseCounter(3)
    assert [counter.record() for _ in range(3)] == [False, False, True]
