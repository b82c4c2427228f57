"""TOML configuration of a node, a cluster and a client.

Every problem is reported as one ``ConfigError`` whose message starts with the
dotted path of the offending field (``replicas[2].address: ...``), so a user can
fix the file without reading code. Relative paths are resolved against the
directory of the config file, so a cluster directory can be moved as a whole.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Literal, TypeVar, cast

from pot_impl import codec
from pot_impl.byzantine import BEHAVIOURS
from pot_impl.ledger.records import LedgerParams
from pot_impl.pbft.config import ReplicaConfig, largest_batch_bytes
from pot_impl.runtime.crypto import public_key_from_hex

T = TypeVar("T")

SyncMode = Literal["full", "normal"]
BYZANTINE_BEHAVIOURS = tuple(BEHAVIOURS)


class ConfigError(ValueError):
    """A configuration problem; the message names the field."""


@dataclass(frozen=True)
class Address:
    host: str
    port: int

    def __str__(self) -> str:
        return f"{self.host}:{self.port}"


@dataclass(frozen=True)
class ReplicaEntry:
    """A member of the replica group as every node and client sees it."""

    id: int
    address: Address
    public_key: bytes


PROTOCOL_DEFAULTS: dict[str, int] = {
    "checkpoint_interval": 16,
    "watermark_window": 64,
    "batch_size": 256,
    "batch_timeout_ms": 2,
    "view_change_timeout_ms": 2000,
    "state_transfer_timeout_ms": 1000,
    "max_pending_requests": 20_000,
    "max_pending_bytes": 64 * 1024 * 1024,
    "max_pending_per_client": 16,
}
"""Defaults for a real network; the core's own defaults are tuned for simulated ticks."""

BYTE_LIMITS = ("max_request_bytes", "max_batch_bytes")
"""``[protocol]`` fields whose defaults derive from the others: ``max_batch_bytes`` is the largest at
which every NEW-VIEW fits in ``transport.max_frame_bytes`` (rounded down to KiB), and
``max_request_bytes`` a quarter of it, so that a batch with a large request still has room for
small ones."""
REQUESTS_PER_FULL_BATCH = 4
MIN_BATCH_BYTES = 4096


LEDGER_DEFAULTS: dict[str, int] = {
    "segments": 64,
    "sample_size": 29,  # misses a 10% faked proof with probability <= 0.05 (ANCHORS.md)
    "validation_quorum": 2,
    "min_trainer_stake": 100,
    "min_validator_stake": 100,
    "challenge_window": 32,
    "dispute_steps": 0,  # 0: fraud proofs re-execute a segment; k: the bisection game, k steps a segment
    "move_window": 0,
    "dispute_bond": 0,
}


@dataclass(frozen=True)
class LedgerSettings:
    """Genesis of the replicated ledger; every replica of a group must have the same."""

    params: LedgerParams = field(default_factory=lambda: LedgerParams(**LEDGER_DEFAULTS))
    genesis: tuple[tuple[str, int], ...] = ()


@dataclass(frozen=True)
class TransportSettings:
    """Limits that protect a node from its peers and clients.

    ``max_frame_bytes`` bounds a replica's frames (a new-view carries n - f view-changes with
    batches); a client's are bounded by ``max_client_frame_bytes`` (or the request limit, if
    larger), and a peer's first frame, its hello, by a few kilobytes. The connection defaults
    hold within the common limit of 1024 open files: 512 inbound connections, plus the peer
    links, the store and the logs. A subscription costs about 400 bytes, so 131,072 are
    about 50 MB. A replica's message larger than a frame (a state transfer of a large ledger)
    travels in fragments, up to ``max_message_bytes`` in all, which is also what a replica may
    hold per peer while putting one together."""

    max_frame_bytes: int = codec.MAX_FRAME_BYTES
    max_message_bytes: int = 256 * 1024 * 1024
    max_client_frame_bytes: int = 256 * 1024
    abuse_limit: int = 8
    send_queue_frames: int = 10_000
    verify_threads: int = 2
    max_connections: int = 512
    max_connections_per_address: int = 64
    new_connections_per_s_per_address: int = 256
    handshake_timeout_ms: int = 5_000
    idle_timeout_ms: int = 300_000
    control_frames_per_s: int = 10
    max_subscriptions_per_connection: int = 1_024
    max_subscriptions_per_key: int = 4_096
    max_subscriptions: int = 131_072


@dataclass(frozen=True)
class NodeSettings:
    """What one replica process needs beyond the group description."""

    id: int
    key_file: Path
    data_dir: Path
    event_log: Path
    sync: SyncMode = "full"
    byzantine: str | None = None
    listen: Address | None = None  # default: the replica's own address; differs behind a fault proxy


@dataclass(frozen=True)
class Config:
    """A parsed config file: the group, its settings and optionally one node's own part."""

    replicas: tuple[ReplicaEntry, ...]
    protocol: ReplicaConfig
    transport: TransportSettings = field(default_factory=TransportSettings)
    ledger: LedgerSettings = field(default_factory=LedgerSettings)
    node: NodeSettings | None = None

    @property
    def n(self) -> int:
        return len(self.replicas)

    @property
    def f(self) -> int:
        return (self.n - 1) // 3

    def replica(self, replica_id: int) -> ReplicaEntry:
        return self.replicas[replica_id]

    def listen_address(self) -> Address:
        """Where this node's server binds: ``node.listen`` or its published address."""
        node = self.require_node()
        return node.listen or self.replica(node.id).address

    def require_node(self) -> NodeSettings:
        if self.node is None:
            raise ConfigError("node: missing table [node] (required to run a replica)")
        return self.node


class _Table:
    """Typed access to one TOML table that records which keys were used."""

    def __init__(self, path: str, data: Mapping[str, Any]) -> None:
        self.path = path
        self.data = data
        self.used: set[str] = set()

    def name(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def get(self, key: str, kind: type[T], default: T | None = None) -> T:
        self.used.add(key)
        if key not in self.data:
            if default is None:
                raise ConfigError(f"{self.name(key)}: missing (required)")
            return default
        value = self.data[key]
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise ConfigError(f"{self.name(key)}: expected {kind.__name__}, got {type(value).__name__}")
        return value

    def number(self, key: str, default: int | None = None, minimum: int = 1) -> int:
        value = self.get(key, int, default)
        if value < minimum:
            raise ConfigError(f"{self.name(key)}: must be at least {minimum}, got {value}")
        return value

    def finish(self) -> None:
        """Reject unknown keys: a misspelt option must not be silently ignored."""
        unknown = sorted(set(self.data) - self.used)
        if unknown:
            raise ConfigError(f"{self.name(unknown[0])}: unknown key")


def parse_address(text: str, where: str) -> Address:
    host, sep, port_text = text.rpartition(":")
    if not sep or not host or not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ConfigError(f"{where}: expected HOST:PORT with a port in 1..65535, got {text!r}")
    return Address(host, int(port_text))


def _replicas(raw: object) -> tuple[ReplicaEntry, ...]:
    if not isinstance(raw, list) or not raw:
        raise ConfigError("replicas: expected a non-empty array of tables [[replicas]]")
    entries: list[ReplicaEntry] = []
    for index, item in enumerate(raw):
        where = f"replicas[{index}]"
        if not isinstance(item, dict):
            raise ConfigError(f"{where}: expected a table")
        table = _Table(where, item)
        replica_id = table.get("id", int)
        if replica_id != index:
            raise ConfigError(f"{where}.id: replicas must be listed in id order 0..n-1, got {replica_id}")
        address = parse_address(table.get("address", str), f"{where}.address")
        try:
            public_key = public_key_from_hex(table.get("public_key", str))
        except ValueError as exc:
            raise ConfigError(f"{where}.public_key: {exc}") from None
        table.finish()
        entries.append(ReplicaEntry(replica_id, address, public_key))
    if len(entries) < 4:
        raise ConfigError(f"replicas: PBFT needs n = 3f+1 >= 4 replicas, got {len(entries)}")
    return tuple(entries)


def _protocol(table: _Table, n: int, max_frame_bytes: int) -> ReplicaConfig:
    """The ``[protocol]`` table: any ``ReplicaConfig`` field but ``n`` (taken from the replica list)."""
    values = {
        name: table.number(name, default, minimum=0 if name == "batch_timeout_ms" else 1)
        for name, default in PROTOCOL_DEFAULTS.items()
    }
    values.update((name, table.number(name)) for name in BYTE_LIMITS if name in table.data)
    table.finish()
    return protocol_config(n, values, max_frame_bytes)


def protocol_config(n: int, values: Mapping[str, int], max_frame_bytes: int) -> ReplicaConfig:
    """The replica constants for ``values`` (``PROTOCOL_DEFAULTS`` where missing, ``BYTE_LIMITS``
    derived where missing); byte limits at which a NEW-VIEW could outgrow a frame are refused,
    since such a message would be dropped and no view change could complete."""
    settings = {**PROTOCOL_DEFAULTS, **values}
    try:
        shape = ReplicaConfig(n=n, **{k: v for k, v in settings.items() if k not in BYTE_LIMITS})
    except ValueError as exc:
        raise ConfigError(f"protocol: {exc}") from None
    largest = largest_batch_bytes(shape, max_frame_bytes)
    bound = (
        f"with transport.max_frame_bytes = {max_frame_bytes}, n = {n} and watermark_window = "
        f"{shape.watermark_window} (a NEW-VIEW carries up to (n - f + 1) * watermark_window batches)"
    )
    if largest < MIN_BATCH_BYTES:
        too_large = f"too large for batches of {MIN_BATCH_BYTES} bytes"
        raise ConfigError(f"protocol.watermark_window: {too_large} {bound}")
    batch = settings.get("max_batch_bytes", largest // 1024 * 1024)
    if batch > largest:
        raise ConfigError(f"protocol.max_batch_bytes: at most {largest} {bound}")
    request = settings.get("max_request_bytes", batch // REQUESTS_PER_FULL_BATCH)
    if request > batch:
        limit = f"at most max_batch_bytes ({batch})"
        raise ConfigError(f"protocol.max_request_bytes: {limit}, since a request must fit in a batch")
    settings.update(max_batch_bytes=batch, max_request_bytes=request)
    try:
        return ReplicaConfig(n=n, **settings)
    except ValueError as exc:
        raise ConfigError(f"protocol: {exc}") from None


def _ledger(table: _Table) -> LedgerSettings:
    """The ``[ledger]`` table: ``LedgerParams`` fields and a ``[ledger.genesis]`` account -> balance table."""
    values = {name: table.number(name, default, minimum=0) for name, default in LEDGER_DEFAULTS.items()}
    genesis = _Table(table.name("genesis"), table.get("genesis", dict, {}))
    balances = tuple((account, genesis.number(account, minimum=0)) for account in sorted(genesis.data))
    table.finish()
    if values["sample_size"] > values["segments"]:
        raise ConfigError(f"{table.name('sample_size')}: cannot exceed segments ({values['segments']})")
    return LedgerSettings(LedgerParams(**values), balances)


def _transport(table: _Table) -> TransportSettings:
    defaults = TransportSettings()
    settings = TransportSettings(
        **{f.name: table.number(f.name, getattr(defaults, f.name)) for f in fields(TransportSettings)}
    )
    table.finish()
    if settings.max_message_bytes < settings.max_frame_bytes:
        raise ConfigError(
            f"{table.name('max_message_bytes')}: must be at least max_frame_bytes "
            f"({settings.max_frame_bytes}), got {settings.max_message_bytes}"
        )
    return settings


def _node(table: _Table, base: Path, n: int) -> NodeSettings:
    node_id = table.get("id", int)
    if not 0 <= node_id < n:
        raise ConfigError(f"{table.name('id')}: must name one of the replicas 0..{n - 1}, got {node_id}")
    sync = table.get("sync", str, "full")
    if sync not in ("full", "normal"):
        raise ConfigError(f'{table.name("sync")}: expected "full" or "normal", got {sync!r}')
    byzantine = table.get("byzantine", str, "") or None
    listen_text = table.get("listen", str, "")
    listen = parse_address(listen_text, table.name("listen")) if listen_text else None
    if byzantine is not None and byzantine not in BYZANTINE_BEHAVIOURS:
        raise ConfigError(f"{table.name('byzantine')}: expected one of {', '.join(BYZANTINE_BEHAVIOURS)}")
    settings = NodeSettings(
        id=node_id,
        key_file=base / table.get("key_file", str),
        data_dir=base / table.get("data_dir", str),
        event_log=base / table.get("event_log", str),
        sync=cast(SyncMode, sync),
        byzantine=byzantine,
        listen=listen,
    )
    table.finish()
    return settings


def _sub_table(root: _Table, key: str) -> _Table:
    raw = root.get(key, dict, {})
    return _Table(key, raw)


def parse_config(data: Mapping[str, Any], base: Path) -> Config:
    """Validate a decoded TOML document; paths are resolved against ``base``."""
    root = _Table("", data)
    root.used.add("replicas")
    replicas = _replicas(data.get("replicas"))
    transport = _transport(_sub_table(root, "transport"))
    protocol = _protocol(_sub_table(root, "protocol"), len(replicas), transport.max_frame_bytes)
    ledger = _ledger(_sub_table(root, "ledger"))
    node = _node(_sub_table(root, "node"), base, len(replicas)) if "node" in data else None
    root.used.add("node")
    root.finish()
    return Config(replicas, protocol, transport, ledger, node)


def load_config(path: Path) -> Config:
    """Read and validate a TOML config file."""
    try:
        text = path.read_bytes().decode("utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read config ({exc.strerror})") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text (byte {exc.start})") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc})") from None
    try:
        return parse_config(data, path.resolve().parent)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None


def render_config(config: Config, base: Path) -> str:
    """The TOML text of ``config``, with node paths written relative to ``base``."""
    lines: list[str] = []
    if config.node is not None:
        node = config.node
        lines += [
            "[node]",
            f"id = {node.id}",
            f'key_file = "{_relative(node.key_file, base)}"',
            f'data_dir = "{_relative(node.data_dir, base)}"',
            f'event_log = "{_relative(node.event_log, base)}"',
            f'sync = "{node.sync}"',
        ]
        if node.byzantine:
            lines.append(f'byzantine = "{node.byzantine}"')
        if node.listen:
            lines.append(f'listen = "{node.listen}"')
        lines.append("")
    transport = config.transport
    lines.append("[protocol]")
    lines += [f"{name} = {getattr(config.protocol, name)}" for name in (*PROTOCOL_DEFAULTS, *BYTE_LIMITS)]
    lines += ["", "[transport]"]
    lines += [f"{f.name} = {getattr(transport, f.name)}" for f in fields(TransportSettings)]
    lines.append("")
    lines.append("[ledger]")
    lines += [f"{name} = {getattr(config.ledger.params, name)}" for name in LEDGER_DEFAULTS]
    lines += ["", "[ledger.genesis]"]
    lines += [f'"{account}" = {balance}' for account, balance in config.ledger.genesis]
    lines.append("")
    for replica in config.replicas:
        lines += [
            "[[replicas]]",
            f"id = {replica.id}",
            f'address = "{replica.address}"',
            f'public_key = "{replica.public_key.hex()}"',
            "",
        ]
    return "\n".join(lines)


def _relative(path: Path, base: Path) -> str:
    try:
        return str(path.relative_to(base))
    except ValueError:
        return str(path)
