"""The structured protocol log: one JSON object per line, one line per protocol step.

The log is the raw material for trace validation, so every event carries the
node id, a per-node event counter (total order within the node) and the fields
that identify the message or state it concerns (sender, type, view, seq,
digest). Events are buffered and flushed at the same points where the node
commits its store, i.e. before the messages that depend on them are sent; a
SIGKILL can only lose a tail that no other node has seen the effects of. The node takes the
lines on its event-loop thread and writes them on its store thread, together with the commit.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import IO, Any

from pot_impl.pbft.io import EventKind, ProtocolEvent

RUNTIME_EVENT_KINDS = frozenset({"started", "stopped", "dropped", "connection-closed"})
"""Events of the runtime itself; protocol steps use the core's ``EventKind`` values."""

EVENT_KINDS = frozenset(kind.value for kind in EventKind) | RUNTIME_EVENT_KINDS


def _plain(value: Any) -> Any:
    """JSON-friendly form: bytes as hex, tuples as lists, enums by name."""
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).hex()
    if isinstance(value, tuple | list):
        return [_plain(item) for item in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    name = getattr(value, "name", None)
    if name is not None and not isinstance(value, str | int | float | bool):
        return name
    return value


class EventLog:
    """Appends protocol events for one node to a JSONL file."""

    def __init__(self, path: Path, node_id: int) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.node_id = node_id
        _drop_torn_tail(path)
        self.counter = _last_counter(path)
        self._pending: list[str] = []
        self._file: IO[str] = path.open("a", encoding="utf-8")

    def emit(self, event: str, **fields: Any) -> None:
        if event not in EVENT_KINDS:
            raise ValueError(f"unknown event kind {event!r}")
        self.counter += 1
        record = {"node": self.node_id, "n": self.counter, "t": round(time.time(), 6), "event": event}
        record.update((key, _plain(value)) for key, value in fields.items() if value is not None)
        self._pending.append(json.dumps(record, separators=(",", ":")))

    def protocol(self, event: ProtocolEvent) -> None:
        """Record one of the core's protocol-step events."""
        fields = event.to_json()
        del fields["kind"], fields["node"]
        self.emit(event.kind.value, **fields)

    def take(self) -> list[str]:
        """The lines emitted since the last ``take``, for ``write`` (possibly on another thread)."""
        lines, self._pending = self._pending, []
        return lines

    def write(self, lines: list[str]) -> None:
        """Append ``lines`` to the file; called by one thread at a time, in ``take`` order."""
        if lines:
            self._file.write("\n".join(lines) + "\n")
            self._file.flush()

    def flush(self) -> None:
        self.write(self.take())

    def close(self) -> None:
        self.flush()
        self._file.close()


def _drop_torn_tail(path: Path) -> None:
    """Cut a last line that a crash left without its newline, so appending stays line-aligned."""
    if not path.exists():
        return
    with path.open("rb+") as log:
        size = log.seek(0, 2)
        if size == 0:
            return
        log.seek(max(0, size - (1 << 16)))
        tail = log.read()
        if tail.endswith(b"\n"):
            return
        cut = tail.rfind(b"\n")
        log.truncate(size - len(tail) + cut + 1 if cut >= 0 else max(0, size - len(tail)))


def _last_counter(path: Path, tail_bytes: int = 1 << 16) -> int:
    """The ``n`` of the last complete line already in the log, so a restarted node continues the
    per-node order instead of restarting it (a torn last line from a crash is skipped)."""
    if not path.exists():
        return 0
    with path.open("rb") as log:
        log.seek(max(0, log.seek(0, 2) - tail_bytes))
        lines = log.read().split(b"\n")
    for line in reversed(lines[:-1]):  # the part after the last newline is empty or torn
        try:
            return int(json.loads(line)["n"])
        except (ValueError, KeyError, TypeError):
            continue
    return 0


def read_events(path: Path) -> list[dict[str, Any]]:
    """Parse a node's event log, ignoring a torn last line left by a crash."""
    events: list[dict[str, Any]] = []
    with path.open(encoding="utf-8") as log:
        for line in log:
            if not line.endswith("\n"):
                break
            events.append(json.loads(line))
    return events
