"""The visited-state table: 64-bit fingerprints, parent links, nothing else.

States get integer ids in breadth-first order, so each BFS level is one
contiguous id range. Per state the table keeps

* its fingerprint, by id (8 bytes), to rebuild traces by re-expanding parents,
* its parent's id (4 bytes),
* the fingerprint again in an open-addressing set (``model_checker._visited``, C),
  kept at most 60% full: 8 bytes a slot, and 4 more for the state's id when the
  search records its graph (an edge needs the id of a known successor).

A sorted index searched with ``np.searchsorted`` served before the set: at tens
of millions of states each lookup missed the cache a dozen times, and the
lookups took a third of the master's time on TwoPhase RM=10; a probe of the
set misses about once. The set's arrays are numpy arrays, so the table pickles
into checkpoints as it is.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from model_checker import _visited

Int64Array = npt.NDArray[np.int64]
Int32Array = npt.NDArray[np.int32]

_MAX_LOAD = 0.6
"""The set grows (doubling) before an insertion could fill more than this fraction of its slots."""

_INITIAL_SLOTS = 1 << 12


class GrowableArray:
    """A numpy array with amortised O(1) append of batches."""

    def __init__(self, dtype: npt.DTypeLike, capacity: int = 1024) -> None:
        self._data: npt.NDArray[Any] = np.empty(capacity, dtype=dtype)
        self._size = 0

    def __len__(self) -> int:
        return self._size

    def extend(self, values: npt.NDArray[Any]) -> None:
        """Append ``values`` at the end."""
        needed = self._size + len(values)
        if needed > len(self._data):
            grown = np.empty(max(needed, 2 * len(self._data)), dtype=self._data.dtype)
            grown[: self._size] = self._data[: self._size]
            self._data = grown
        self._data[self._size : needed] = values
        self._size = needed

    @property
    def view(self) -> npt.NDArray[Any]:
        """The filled part (a view, invalidated by the next ``extend``)."""
        return self._data[: self._size]

    @property
    def nbytes(self) -> int:
        """Bytes per element times elements held (capacity slack not counted)."""
        return self._size * self._data.itemsize


class VisitedTable:
    """Fingerprints seen so far, with ids in discovery order and parent links."""

    def __init__(self, with_ids: bool = False) -> None:
        self.fps_by_id = GrowableArray(np.int64)
        self.parents = GrowableArray(np.int32)
        self._keys: Int64Array = np.zeros(_INITIAL_SLOTS + 1, dtype=np.int64)
        """The set's slots (0: empty), and last the presence of the fingerprint 0."""
        self._ids: Int32Array | None = np.zeros(_INITIAL_SLOTS + 1, dtype=np.int32) if with_ids else None
        """Each slot's state id, when the table answers ``ids_of``."""

    def __len__(self) -> int:
        return len(self.fps_by_id)

    def insert_new(
        self, fps: Int64Array, limit: int | None = None, with_ids: bool = False
    ) -> tuple[npt.NDArray[np.int64], Int32Array | None, bool]:
        """Enter the fingerprints of ``fps`` not yet in the table, in order, at most ``limit`` of them:
        the positions in ``fps`` of those entered (first occurrences, in order), each fingerprint's id
        when ``with_ids`` (-1 for one left out), and whether the limit left any out. Their ids are
        ``len(self)`` onwards once ``record`` stores them, which must come next."""
        if with_ids and self._ids is None:
            raise ValueError("this table was made without ids")
        self._reserve(len(fps))
        positions = np.empty(len(fps), dtype=np.int64)
        successor_ids = np.empty(len(fps), dtype=np.int32) if with_ids else None
        fps = np.ascontiguousarray(fps, dtype=np.int64)
        allowed = len(fps) if limit is None else limit
        inserted, dropped = _visited.insert_new(
            self._keys, self._ids, fps, len(self), allowed, positions, successor_ids
        )
        return positions[:inserted], successor_ids, dropped

    def record(self, fps: Int64Array, parents: Int32Array) -> range:
        """Store the states ``insert_new`` just entered (in its order), with their parents; their ids."""
        first = len(self)
        self.fps_by_id.extend(fps)
        self.parents.extend(parents)
        return range(first, first + len(fps))

    def _reserve(self, incoming: int) -> None:
        """Grow the set so that ``incoming`` more fingerprints keep it under ``_MAX_LOAD``."""
        slots = len(self._keys) - 1
        needed = len(self) + incoming
        if needed <= _MAX_LOAD * slots:
            return
        while needed > _MAX_LOAD * slots:
            slots *= 2
        keys = np.zeros(slots + 1, dtype=np.int64)
        ids = None if self._ids is None else np.zeros(slots + 1, dtype=np.int32)
        _visited.rehash(self._keys, self._ids, keys, ids)
        self._keys, self._ids = keys, ids

    def fingerprint(self, state_id: int) -> int:
        """The fingerprint of one state."""
        return int(self.fps_by_id.view[state_id])

    def path_to(self, state_id: int) -> list[int]:
        """Ids from an initial state to ``state_id`` along parent links."""
        parents = self.parents.view
        path = [state_id]
        while parents[path[-1]] >= 0:
            path.append(int(parents[path[-1]]))
        path.reverse()
        return path

    @property
    def nbytes(self) -> int:
        """Bytes held per the layout in the module docstring (the set's empty slots included)."""
        return (
            self.fps_by_id.nbytes
            + self.parents.nbytes
            + self._keys.nbytes
            + (0 if self._ids is None else self._ids.nbytes)
        )
