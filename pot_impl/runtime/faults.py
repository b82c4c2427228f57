"""Fault injection between real replica processes: a frame-aware TCP proxy in front of every replica.

A ``LocalCluster`` created with ``proxied=True`` publishes, for every replica,
an address owned by this proxy and lets the replica listen on a private port.
Every connection to a replica therefore passes here; the proxy reads the
connection's hello frame to learn who is sending (``replica:<i>`` or a
client), then applies that link's ``LinkPolicy`` frame by frame: cut the
link, drop, duplicate, or delay frames (random per-frame delays reorder
them). Traffic towards the connecting side (replies, status) is passed
through untouched. Policies can be changed at any moment from any thread.

The proxy runs its own event loop in a daemon thread so that a synchronous
test can drive processes and faults side by side. It is a harness tool: the
node never imports it.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import random
import threading
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

from pot_impl.auth import REPLICA_PREFIX
from pot_impl.runtime.config import Address
from pot_impl.runtime.framing import FrameDecoder, encode_frame
from pot_impl.runtime.transport import FrameKind, split_frame, unpack_control

CLIENT_SIDE = -1
"""Stand-in sender index for connections that do not come from a replica."""


@dataclass(frozen=True)
class LinkPolicy:
    """What happens to frames on one directed link. The default passes everything through."""

    cut: bool = False
    drop: float = 0.0
    duplicate: float = 0.0
    delay_s: float = 0.0
    jitter_s: float = 0.0

    def __post_init__(self) -> None:
        if not (0.0 <= self.drop <= 1.0 and 0.0 <= self.duplicate <= 1.0):
            raise ValueError("drop and duplicate are probabilities in [0, 1]")
        if self.delay_s < 0 or self.jitter_s < 0:
            raise ValueError("delays cannot be negative")


PASS = LinkPolicy()


@dataclass
class LinkStats:
    forwarded: int = 0
    dropped: int = 0
    duplicated: int = 0


class FaultNetwork:
    """Proxies ``published -> listen`` for every replica, with per-link policies (sender, receiver)."""

    def __init__(
        self, routes: dict[int, tuple[Address, Address]], seed: int = 0, max_frame_bytes: int = 1 << 24
    ) -> None:
        self.routes = routes
        self.max_frame_bytes = max_frame_bytes
        self._random = random.Random(seed)
        self._policies: dict[tuple[int, int], LinkPolicy] = {}
        self.stats: dict[tuple[int, int], LinkStats] = {}
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="fault-network", daemon=True)
        self._servers: list[asyncio.Server] = []
        self._writers: set[asyncio.StreamWriter] = set()

    # ------------------------------------------------------------ control (any thread)

    def start(self) -> None:
        self._thread.start()
        self._call(self._start_servers())

    def close(self) -> None:
        self._call(self._close())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)

    def set_policy(self, sender: int, receiver: int, policy: LinkPolicy) -> None:
        self._policies[(sender, receiver)] = policy

    def set_all(self, policy: LinkPolicy) -> None:
        """Apply ``policy`` to every replica-to-replica link."""
        for sender in self.routes:
            for receiver in self.routes:
                if sender != receiver:
                    self.set_policy(sender, receiver, policy)

    def partition(self, isolated: int) -> None:
        """Cut every link to and from replica ``isolated`` (clients still reach it). A cut link's
        connection is closed at its next frame, so nothing buffered leaks across the cut."""
        for other in self.routes:
            if other != isolated:
                self.set_policy(isolated, other, LinkPolicy(cut=True))
                self.set_policy(other, isolated, LinkPolicy(cut=True))

    def heal(self) -> None:
        self._policies.clear()

    def policy(self, sender: int, receiver: int) -> LinkPolicy:
        return self._policies.get((sender, receiver), PASS)

    def _call(self, coroutine: Any) -> Any:
        future: Future[Any] = asyncio.run_coroutine_threadsafe(coroutine, self._loop)
        return future.result(timeout=10)

    # ------------------------------------------------------------ the proxy (its own loop)

    async def _start_servers(self) -> None:
        for receiver, (published, listen) in self.routes.items():
            server = await asyncio.start_server(
                functools.partial(self._serve, receiver, listen),
                published.host,
                published.port,
                reuse_address=True,
            )
            self._servers.append(server)

    async def _close(self) -> None:
        for server in self._servers:
            server.close()
        for writer in list(self._writers):
            writer.close()

    async def _serve(
        self, receiver: int, listen: Address, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(listen.host, listen.port)
        except OSError:
            writer.close()
            return
        self._writers.update((writer, upstream_writer))
        backwards = asyncio.create_task(self._pipe(upstream_reader, writer))
        try:
            await self._forward(receiver, reader, upstream_writer)
        finally:
            backwards.cancel()
            for side in (writer, upstream_writer):
                side.close()
                self._writers.discard(side)

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError, asyncio.CancelledError):
            while data := await reader.read(1 << 16):
                writer.write(data)
                await writer.drain()

    async def _forward(
        self, receiver: int, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        decoder = FrameDecoder(self.max_frame_bytes)
        sender: int | None = None
        with contextlib.suppress(OSError, asyncio.CancelledError):
            while data := await reader.read(1 << 16):
                for payload in decoder.feed(data).frames:
                    if sender is None:
                        sender = _sender_of_hello(payload, self.max_frame_bytes)
                        writer.write(encode_frame(payload))
                        continue
                    policy = self.policy(sender, receiver)
                    if policy.cut and sender != CLIENT_SIDE:
                        return  # severing the connection; the sender's link reconnects later
                    self._apply(policy, (sender, receiver), writer, encode_frame(payload))
                await writer.drain()

    def _apply(
        self, policy: LinkPolicy, link: tuple[int, int], writer: asyncio.StreamWriter, data: bytes
    ) -> None:
        stats = self.stats.setdefault(link, LinkStats())
        if policy.drop and self._random.random() < policy.drop:
            stats.dropped += 1
            return
        copies = 2 if policy.duplicate and self._random.random() < policy.duplicate else 1
        stats.duplicated += copies - 1
        for _ in range(copies):
            delay = policy.delay_s + (self._random.random() * policy.jitter_s if policy.jitter_s else 0.0)
            stats.forwarded += 1
            if delay:
                self._loop.call_later(delay, _write_if_open, writer, data)
            else:
                writer.write(data)


def _write_if_open(writer: asyncio.StreamWriter, data: bytes) -> None:
    if not writer.is_closing():
        writer.write(data)


def _sender_of_hello(payload: bytes, max_bytes: int) -> int:
    """The replica index a hello frame claims (the node checks its signature), or CLIENT_SIDE."""
    parts = split_frame(payload)
    if parts is None or parts[0] is not FrameKind.HELLO:
        return CLIENT_SIDE
    with contextlib.suppress(ValueError):
        fields = unpack_control(parts[1], max_bytes)
        if isinstance(fields, list) and fields and isinstance(fields[0], str):
            kind, _, index = fields[0].partition(":")
            if kind + ":" == REPLICA_PREFIX and index.isdigit():
                return int(index)
    return CLIENT_SIDE
