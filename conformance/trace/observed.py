"""Reading the per-node JSONL event logs of a real run into one observed behaviour.

A cluster directory written by ``pot cluster up`` / ``LocalCluster`` holds
``cluster.toml`` (group and protocol constants), ``node<i>.toml`` (which
replicas run a Byzantine behaviour) and ``events/replica<i>.jsonl``. The logs
of the Byzantine replicas are not read: the spec models Byzantine replicas by
what they can do, not by what they log.

The per-node logs are merged into one sequence by wall-clock time, keeping
each node's own order. All nodes of a ``LocalCluster`` share one host clock,
and a node flushes an event before sending any message that depends on it, so
the merge respects causality: a message is logged as sent (the step that
produced it) before any node logs receiving it.
"""

from __future__ import annotations

import enum
import heapq
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pot_impl.pbft.io import EventKind
from pot_impl.runtime.config import ConfigError, load_config


class TraceInputError(Exception):
    """The run to validate cannot be read: missing directory or file, malformed log line or config."""


@dataclass(frozen=True)
class Observed:
    """One logged protocol step of one node (the fields of ``pot_impl.pbft.io.ProtocolEvent``)."""

    node: int
    kind: str
    view: int
    seq: int
    digest: str
    peer: int
    message: str
    reason: str
    time: float
    source: str
    """``path:line`` of the log line, so a report points at the evidence."""

    def describe(self) -> str:
        parts = [f"node {self.node}", self.kind, f"view {self.view}"]
        if self.seq >= 0:
            parts.append(f"seq {self.seq}")
        if self.digest:
            parts.append(f"digest {self.digest[:12]}")
        if self.peer >= 0:
            parts.append(f"peer {self.peer}")
        if self.message:
            parts.append(self.message)
        if self.reason:
            parts.append(f"({self.reason})")
        return " ".join(parts) + f" at {self.source}"


@dataclass(frozen=True)
class RunLogs:
    """The constants of a run and the logs of its honest replicas, each in its own order."""

    replicas: int
    faulty: int
    byzantine: frozenset[int]
    checkpoint_interval: int
    window: int
    logs: Mapping[int, tuple[Observed, ...]]

    def merged(self) -> list[Observed]:
        """All honest nodes' events in one sequence: by time, each node's own order kept."""
        streams = [
            [(event.time, node, position, event) for position, event in enumerate(events)]
            for node, events in sorted(self.logs.items())
        ]
        return [item[3] for item in heapq.merge(*streams)]


class Role(enum.Enum):
    """What trace validation does with an event kind."""

    STEP = "matched against a step of the spec"
    CAUSE = "read to pair each receipt with its send; the step that sent is the spec step"
    SKIPPED = "read and type-checked, then skipped: no spec counterpart"


EVENT_ROLES: Mapping[str, Role] = {
    EventKind.RECEIVED: Role.STEP,
    EventKind.PRE_PREPARED: Role.STEP,
    EventKind.PREPARED: Role.STEP,
    EventKind.COMMITTED: Role.STEP,
    EventKind.CAUGHT_UP: Role.STEP,
    EventKind.EXECUTED: Role.STEP,
    EventKind.CHECKPOINT: Role.STEP,
    EventKind.CHECKPOINT_STABLE: Role.STEP,
    EventKind.VIEW_CHANGE: Role.STEP,
    EventKind.NEW_VIEW: Role.STEP,
    EventKind.STATE_TRANSFER: Role.STEP,
    EventKind.RECOVERED: Role.STEP,
    EventKind.SENT: Role.CAUSE,
    EventKind.REQUEST: Role.SKIPPED,  # the spec's clients send every request at the start
    EventKind.REJECTED: Role.SKIPPED,  # a rejected message changes nothing
    "started": Role.SKIPPED,
    "stopped": Role.SKIPPED,
    "dropped": Role.SKIPPED,  # a frame the transport refused: never reached the protocol
    "connection-closed": Role.SKIPPED,
}
"""Every event kind a node writes (``pot_impl.runtime.events.EVENT_KINDS``), by role; a test
fails when the runtime gains a kind this table does not classify."""

RUNTIME_FIELDS: Mapping[str, Mapping[str, tuple[type, ...]]] = {
    "started": {"view": (int,), "records": (int,)},
    "stopped": {"view": (int,)},
    "dropped": {"peer": (str,), "principal": (str,), "reason": (str,), "count": (int,)},
    "connection-closed": {"peer": (str,), "principal": (str,), "reason": (str,), "count": (int,)},
}
"""The fields of the runtime's own events and their JSON types (``peer`` names a connection
there, not a replica); every field is optional, a field of another type is an input error."""

_FIELD_DEFAULTS: Mapping[str, Any] = {
    "view": 0,
    "seq": -1,
    "digest": "",
    "peer": -1,
    "message": "",
    "reason": "",
}


def parse_log(path: Path, node: int) -> tuple[Observed, ...]:
    """A node's events in file order; a torn last line (a crash mid-write) is ignored."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise TraceInputError(f"{path}: cannot read event log ({exc.strerror})") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        number = data.count(b"\n", 0, exc.start) + 1
        raise TraceInputError(f"{path}:{number}: not UTF-8 text (byte {exc.start})") from None
    lines = text.split("\n")
    complete = lines[:-1]
    events = []
    for number, line in enumerate(complete, start=1):
        if not line.strip():
            continue
        events.append(_parse_line(line, f"{path}:{number}", node))
    return tuple(events)


def _parse_line(line: str, source: str, node: int) -> Observed:
    try:
        record = json.loads(line)
    except json.JSONDecodeError as exc:
        raise TraceInputError(f"{source}: not a JSON object ({exc.msg})") from None
    if not isinstance(record, dict):
        raise TraceInputError(f"{source}: not a JSON object")
    kind = record.get("event")
    if kind not in EVENT_ROLES:
        raise TraceInputError(f"{source}: unknown event kind {kind!r}")
    if kind in RUNTIME_FIELDS:
        record = _runtime_event(record, source)
    values = {**_FIELD_DEFAULTS, **record}
    try:
        observed = Observed(
            node=int(values["node"]),
            kind=str(values["event"]),
            view=int(values["view"]),
            seq=int(values["seq"]),
            digest=str(values["digest"]),
            peer=int(values["peer"]),
            message=str(values["message"]),
            reason=str(values["reason"]),
            time=float(values["t"]),
            source=source,
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise TraceInputError(f"{source}: event lacks a well-typed field ({exc})") from None
    if observed.node != node:
        raise TraceInputError(f"{source}: event of node {observed.node} in the log of node {node}")
    return observed


def _runtime_event(record: dict[str, Any], source: str) -> dict[str, Any]:
    """A runtime event's fields checked against ``RUNTIME_FIELDS``, in ``Observed``'s terms: the
    connection it concerns and why go into ``reason``."""
    fields = RUNTIME_FIELDS[record["event"]]
    for name, types in fields.items():
        if name in record and not isinstance(record[name], types):
            expected = " or ".join(t.__name__ for t in types)
            raise TraceInputError(f"{source}: field {name!r} of a {record['event']} event must be {expected}")
    context = [f"{name} {record[name]}" for name in ("peer", "principal", "count") if name in record]
    detail = ", ".join(context + ([str(record["reason"])] if "reason" in record else []))
    kept: dict[str, Any] = {key: record[key] for key in ("node", "n", "t", "event") if key in record}
    return {**kept, "view": record.get("view", 0), "reason": detail}


def load_logs(
    paths: Mapping[int, Path],
    *,
    replicas: int,
    byzantine: Iterable[int] = (),
    checkpoint_interval: int,
    window: int,
) -> RunLogs:
    """A run from explicit log paths (one per honest replica) and protocol constants."""
    byzantine_set = frozenset(byzantine)
    logs = {node: parse_log(path, node) for node, path in paths.items() if node not in byzantine_set}
    return RunLogs(
        replicas=replicas,
        faulty=(replicas - 1) // 3,
        byzantine=byzantine_set,
        checkpoint_interval=checkpoint_interval,
        window=window,
        logs=logs,
    )


def load_cluster_run(directory: Path) -> RunLogs:
    """A run from a cluster directory (``cluster.toml``, ``node<i>.toml``, ``events/``)."""
    if not directory.is_dir():
        raise TraceInputError(f"{directory}: no such cluster directory")
    try:
        group = load_config(directory / "cluster.toml")
        byzantine = set()
        for replica in range(group.n):
            node_config = directory / f"node{replica}.toml"
            if node_config.exists():
                node = load_config(node_config).require_node()
                if node.byzantine:
                    byzantine.add(replica)
    except ConfigError as exc:
        raise TraceInputError(str(exc)) from None
    paths = {}
    for replica in range(group.n):
        path = directory / "events" / f"replica{replica}.jsonl"
        if replica not in byzantine:
            if not path.exists():
                raise TraceInputError(f"{path}: event log of honest replica {replica} is missing")
            paths[replica] = path
    return load_logs(
        paths,
        replicas=group.n,
        byzantine=byzantine,
        checkpoint_interval=group.protocol.checkpoint_interval,
        window=group.protocol.watermark_window,
    )
