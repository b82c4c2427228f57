"""The breadth-first frontier, kept compact: one BFS level's states as encoded blocks.

A level's states arrive as the new states of each expanded chunk (a worker's as
the bytes it sent) and leave, in the same order, as the chunks of the next
level. Held as Python objects they were most of a search's memory (about 1 KB a
state on PaxosCommit-size models); encoded by ``model_checker.codec``, which
keeps the parts states share shared, a block of a few thousand states takes a
small fraction of that. Past ``memory_budget`` bytes of encoded blocks, further
blocks go to a temporary file and are read back in order, as TLC's disk queue
does; ids stay in memory (4 bytes a state).

Encoding costs less than it saves, also in time: ``pbft-window`` with two processes took
141 s and 392 MiB encoded, 149 s and 643 MiB as objects, and one process on ``pbft`` 26.3
to 26.6 s against 27.9 to 28.3 s (interleaved runs). Only a small model with workers, whose
levels are single chunks, pays for it: ``pbft`` with two processes, 17.6 s against 16.1 to
16.9 s.

The bytes are never compared: equality and identity of states are the fingerprint's job.
"""

from __future__ import annotations

import tempfile
from collections import deque
from collections.abc import Iterator
from typing import IO, Generic, TypeVar

import numpy as np
import numpy.typing as npt

from model_checker import codec

S = TypeVar("S")

Spilled = tuple[int, int, tuple[type, ...] | None]
"""Where an encoded batch's bytes lie in the spill file (offset, length), and its classes."""

Block = tuple[codec.Encoded | Spilled, npt.NDArray[np.int32]]
"""Encoded states (in memory or spilled) and their ids."""

Chunk = tuple[list[S], npt.NDArray[np.int32]]
"""Decoded states and their ids, as the search expands them."""


class NewStates(Generic[S]):
    """A chunk's new states in order, in pieces: lists of states, or batches still encoded as a
    worker sent them, each with its count. The master, which has the workers' judgement of
    theirs, queues them without decoding and encoding them again."""

    def __init__(self, pieces: list[tuple[list[S] | codec.Encoded, int]]) -> None:
        self.pieces = pieces

    @classmethod
    def of(cls, states: list[S]) -> NewStates[S]:
        return cls([(states, len(states))])

    def states(self) -> list[S]:
        """Every state, decoded (once: the pieces become one list)."""
        if len(self.pieces) == 1 and isinstance(self.pieces[0][0], list):
            return self.pieces[0][0]
        decoded = [
            state
            for piece, _ in self.pieces
            for state in (piece if isinstance(piece, list) else codec.decode(piece))
        ]
        self.pieces = [(decoded, len(decoded))]
        return decoded


class Frontier(Generic[S]):
    """States in first-in, first-out order, encoded; with a ``memory_budget``, spilled to disk past
    that many bytes."""

    def __init__(self, memory_budget: int | None = None) -> None:
        self.memory_budget = memory_budget
        self._blocks: deque[Block] = deque()
        self._spill: IO[bytes] | None = None
        self.count = 0
        """States held."""
        self.encoded_bytes = 0
        """Bytes of encoded blocks held in memory now."""
        self.peak_encoded_bytes = 0
        self.spilled_bytes = 0
        """Bytes written to the spill file so far."""

    def __len__(self) -> int:
        return self.count

    def append(self, states: list[S], ids: npt.NDArray[np.int32]) -> None:
        """Add ``states`` (with their ids) after those already held."""
        if states:
            self.append_encoded(codec.encode(states), ids)

    def extend(self, new: NewStates[S], ids: npt.NDArray[np.int32]) -> None:
        """Add ``new``'s states (with their ids), keeping its encoded pieces as they are."""
        start = 0
        for piece, count in new.pieces:
            if count:
                piece_ids = ids[start : start + count]
                if isinstance(piece, list):
                    self.append(piece, piece_ids)
                else:
                    self.append_encoded(piece, piece_ids)
            start += count

    def append_encoded(self, encoded: codec.Encoded, ids: npt.NDArray[np.int32]) -> None:
        """Add a batch already encoded, of ``len(ids)`` states."""
        self.count += len(ids)
        data, classes = encoded
        if self.memory_budget is not None and self.encoded_bytes + len(data) > self.memory_budget:
            spill = self._spill_file()
            offset = spill.seek(0, 2)
            spill.write(data)
            self.spilled_bytes += len(data)
            self._blocks.append(((offset, len(data), classes), ids))
        else:
            self._blocks.append((encoded, ids))
            self.encoded_bytes += len(data)
            self.peak_encoded_bytes = max(self.peak_encoded_bytes, self.encoded_bytes)

    def chunks(self, size: int) -> Iterator[Chunk[S]]:
        """The states in order, decoded in chunks of ``size`` (the last may be smaller), each taken out
        of the frontier as it is yielded. States appended meanwhile are yielded too, so a search may
        take a level's first chunk out while the level is still being filled."""
        states: list[S] = []
        ids: list[npt.NDArray[np.int32]] = []
        while self._blocks:
            block, block_ids = self._blocks.popleft()
            if len(block) == 2:  # in memory: a Spilled block has three fields
                self.encoded_bytes -= len(block[0])
            states += codec.decode(self._in_memory(block))
            ids.append(block_ids)
            while len(states) >= size:
                joined = np.concatenate(ids)
                chunk, states = states[:size], states[size:]
                ids = [joined[size:]]
                self.count -= len(chunk)
                yield chunk, joined[:size]
        if states:
            self.count -= len(states)
            yield states, np.concatenate(ids)
        self.close()

    def encoded(self) -> list[tuple[bytes, npt.NDArray[np.int32]]]:
        """Every block as self-contained bytes (``codec.to_bytes``), read back from disk where
        spilled, in order (the frontier is unchanged)."""
        return [(codec.to_bytes(self._in_memory(block)), ids) for block, ids in self._blocks]

    def _in_memory(self, block: codec.Encoded | Spilled) -> codec.Encoded:
        if len(block) == 2:  # in memory: a Spilled block has three fields
            return block
        offset, length, classes = block
        assert self._spill is not None
        self._spill.seek(offset)
        return self._spill.read(length), classes

    @classmethod
    def of_encoded(
        cls, blocks: list[tuple[bytes, npt.NDArray[np.int32]]], memory_budget: int | None
    ) -> Frontier[S]:
        """A frontier holding ``blocks`` (from ``encoded``), spilling past ``memory_budget``."""
        frontier: Frontier[S] = cls(memory_budget)
        for data, ids in blocks:
            frontier.append(codec.loads(data), ids)
        return frontier

    def close(self) -> None:
        """Drop the spill file (it is a temporary file: closing removes it)."""
        if self._spill is not None:
            self._spill.close()
            self._spill = None

    def _spill_file(self) -> IO[bytes]:
        if self._spill is None:
            self._spill = tempfile.TemporaryFile(prefix="pot-frontier-")  # noqa: SIM115 (closed by close)
        return self._spill
