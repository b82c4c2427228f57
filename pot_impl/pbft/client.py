"""The client side of PBFT as a sans-IO object: sign requests, accept a result on f+1 matching replies.

A client has at most one outstanding request (section 4.1): replicas execute
a client's requests in timestamp order and drop older timestamps, so a
second concurrent request could overtake the first.
"""

from __future__ import annotations

from pot_impl.auth import Signer, Verifier, client_principal, sign_message, verify_message
from pot_impl.pbft.messages import Reply, Request
from pot_impl.pbft.quorums import max_faulty, reply_quorum


class Client:
    """Client ``client_id`` of a cluster of ``n`` replicas."""

    def __init__(self, client_id: str, n: int, signer: Signer, verifier: Verifier) -> None:
        if signer.principal != client_principal(client_id):
            raise ValueError(f"signer is {signer.principal}, not {client_principal(client_id)}")
        self.client_id = client_id
        self.n = n
        self._signer = signer
        self._verifier = verifier
        self._timestamp = 0
        self._outstanding: Request | None = None
        self._replies: dict[int, bytes] = {}

    @property
    def outstanding(self) -> Request | None:
        """The request awaiting its result, if any (re-send it on a retransmission timeout)."""
        return self._outstanding

    def request(self, operation: bytes) -> Request:
        """A new signed request with the next timestamp."""
        if self._outstanding is not None:
            raise RuntimeError("a client has at most one outstanding request")
        self._timestamp += 1
        self._outstanding = sign_message(self._signer, Request(self.client_id, self._timestamp, operation))
        self._replies = {}
        return self._outstanding

    def on_reply(self, reply: Reply) -> bytes | None:
        """Record one reply; return the result once f+1 distinct replicas sent the same one."""
        pending = self._outstanding
        if pending is None or reply.client != self.client_id or reply.timestamp != pending.timestamp:
            return None
        if not 0 <= reply.replica < self.n or not verify_message(self._verifier, reply):
            return None
        self._replies.setdefault(reply.replica, reply.result)
        matching = sum(1 for result in self._replies.values() if result == reply.result)
        if matching < reply_quorum(self.n, max_faulty(self.n)):
            return None
        self._outstanding = None
        return reply.result
