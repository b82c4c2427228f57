"""Replies travel in frames under one signature each; a client counts only replies its replica signed."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pot_impl import codec
from pot_impl.auth import replica_principal
from pot_impl.pbft.messages import Reply
from pot_impl.runtime import transport
from pot_impl.runtime.client import ClientSession
from pot_impl.runtime.cluster import LocalCluster
from pot_impl.runtime.crypto import Ed25519Verifier, KeyPair, read_key_pair
from pot_impl.runtime.transport import make_replies, open_replies, replies_signed

PAIRS = [KeyPair.from_seed(bytes([r]) * 32) for r in range(4)]
VERIFIER = Ed25519Verifier([pair.public for pair in PAIRS])


@given(replies=st.lists(st.binary(max_size=40), max_size=30), limit=st.integers(min_value=1, max_value=120))
def test_frames_carry_every_reply_in_order_each_under_its_replicas_signature(
    replies: list[bytes], limit: int
) -> None:
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(transport, "REPLIES_FRAME_BYTES", limit)
        bodies = make_replies(2, replies, PAIRS[2].sign)
    carried: list[bytes] = []
    for body in bodies:
        sender, encoded = open_replies(body, 1 << 20)
        assert sender == 2 and encoded
        assert sum(map(len, encoded[:-1])) < limit  # a frame closes once it reaches the limit
        carried += encoded
        assert replies_signed(body, replica_principal(2), VERIFIER.check)
        assert not replies_signed(body, replica_principal(1), VERIFIER.check)
        tampered = bytearray(body)
        tampered[-1] ^= 1
        assert not replies_signed(bytes(tampered), replica_principal(2), VERIFIER.check)
    assert carried == replies


@pytest.mark.parametrize(
    "body", [b"", b"\x00" * 64, b"\x00" * 64 + b"\x93\x01\x02\x03", b"\x00" * 64 + b"\x92\x01\x91\x05"]
)
def test_malformed_reply_frames_are_refused(body: bytes) -> None:
    with pytest.raises(ValueError):
        open_replies(body, 1 << 20)


def test_a_client_counts_a_reply_only_under_its_replicas_signature_and_checks_no_late_frame(
    tmp_path: Path,
) -> None:
    cluster = LocalCluster(tmp_path / "cluster", 4)
    config = cluster.create()
    pairs = [read_key_pair(tmp_path / "cluster" / "keys" / f"replica{r}.key") for r in range(4)]
    session = ClientSession(config, KeyPair.generate())
    checked: list[str] = []
    check = session.verifier.check

    def counting_check(principal: str, payload: bytes, signature: bytes) -> bool:
        checked.append(principal)
        return check(principal, payload, signature)

    session.verifier.check = counting_check  # type: ignore[method-assign]
    request = session.request(b"operation")

    def frame_from(replica: int, signer: KeyPair, result: bytes = b"done") -> bytes:
        reply = Reply(0, request.timestamp, request.client, replica, result)
        (body,) = make_replies(replica, [codec.encode(reply)], signer.sign)
        return body

    async def scenario() -> None:
        submitted = asyncio.create_task(session.submit_request(request, timeout_s=5.0))
        await asyncio.sleep(0)
        session.receive_replies(1, frame_from(1, pairs[2]))  # replica 2's key passed off as replica 1's
        session.receive_replies(2, frame_from(2, pairs[2], b"other"))  # genuine, but another result
        session.receive_replies(3, frame_from(3, pairs[3]))
        await asyncio.sleep(0)
        assert not submitted.done(), "one genuine matching reply is not f + 1"
        session.receive_replies(0, frame_from(0, pairs[0]))
        outcome = await submitted
        assert (outcome.result, outcome.replicas) == (b"done", (0, 3))
        checks = len(checked)
        session.receive_replies(1, frame_from(1, pairs[1]))
        assert len(checked) == checks, "a frame with no awaited reply is not checked"

    asyncio.run(scenario())
