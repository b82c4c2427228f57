"""A replica's message larger than a frame is split into fragments and put together again, or refused."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pot_impl.runtime.fragments import Reassembly, fragment
from pot_impl.runtime.transport import Connection, PeerLink, pack_control

LIMIT = 1 << 16


def put_together(reassembly: Reassembly, bodies: list[bytes]) -> list[bytes]:
    return [payload for body in bodies if (payload := reassembly.add(body)) is not None]


@given(
    messages=st.lists(st.binary(min_size=1, max_size=3000), min_size=1, max_size=5),
    chunk=st.integers(min_value=1, max_value=700),
)
def test_fragments_put_together_give_back_each_message(messages: list[bytes], chunk: int) -> None:
    reassembly = Reassembly(LIMIT)
    bodies = [body for message in messages for body in fragment(message, chunk)]
    assert all(len(body) <= chunk + 64 for body in bodies)
    assert put_together(reassembly, bodies) == messages


@given(message=st.binary(min_size=2, max_size=2000), chunk=st.integers(min_value=1, max_value=500))
def test_a_message_interrupted_by_another_is_dropped_and_the_other_arrives(
    message: bytes, chunk: int
) -> None:
    reassembly = Reassembly(LIMIT)
    first = fragment(message, chunk)
    second = fragment(message[::-1] + b"!", chunk)
    assert put_together(reassembly, first[:-1] + second) == [message[::-1] + b"!"]


def test_fragments_out_of_order_are_refused_and_the_message_dropped() -> None:
    reassembly = Reassembly(LIMIT)
    bodies = fragment(b"x" * 300, 100)
    reassembly.add(bodies[0])
    with pytest.raises(ValueError, match="out of order"):
        reassembly.add(bodies[2])
    with pytest.raises(ValueError, match="out of order"):
        reassembly.add(bodies[1])  # the message in progress was dropped


def test_a_message_over_the_limit_is_refused_before_it_is_held() -> None:
    reassembly = Reassembly(1000)
    bodies = fragment(b"y" * 5000, 400)
    reassembly.add(bodies[0])
    reassembly.add(bodies[1])
    with pytest.raises(ValueError, match="max_message_bytes"):
        reassembly.add(bodies[2])
    assert reassembly.size == 0


def test_chunks_that_do_not_match_their_digest_are_refused() -> None:
    bodies = fragment(b"z" * 200, 100)
    forged = pack_control([b"\0" * 32, 1, 2, b"w" * 100])
    reassembly = Reassembly(LIMIT)
    reassembly.add(pack_control([b"\0" * 32, 0, 2, b"z" * 100]))
    with pytest.raises(ValueError, match="digest"):
        reassembly.add(forged)
    assert put_together(reassembly, bodies) == [b"z" * 200]


@pytest.mark.parametrize(
    "fields",
    [
        [b"\0" * 32, 0, 2],
        [b"\0" * 31, 0, 2, b"a"],
        [b"\0" * 32, 2, 2, b"a"],
        [b"\0" * 32, -1, 2, b"a"],
        [b"\0" * 32, 0, 2, b""],
        [b"\0" * 32, "0", 2, b"a"],
    ],
)
def test_malformed_fragments_are_refused(fields: list[object]) -> None:
    with pytest.raises(ValueError):
        Reassembly(LIMIT).add(pack_control(fields))


def test_what_waits_for_a_dead_peer_is_bounded_in_bytes_as_well_as_frames() -> None:
    def never() -> Connection:
        raise AssertionError("the link is not started")

    link = PeerLink(1, "127.0.0.1", 9, hello=lambda: b"", queue_frames=100, make_connection=never)
    fragment_frame = b"f" * (12 << 20)
    for _ in range(5):
        link.send(fragment_frame)
    assert link.dropped == 3  # 36 MiB would exceed a live connection's write buffer: oldest dropped
    for _ in range(150):
        link.send(b"small")
    assert link.dropped == 3 + 2 + 50
