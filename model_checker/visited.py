"""The visited-state table: 64-bit fingerprints, parent links, nothing else.

States get integer ids in breadth-first order, so each BFS level is one
contiguous id range. Per state the table keeps

* its fingerprint, by id (8 bytes), to rebuild traces by re-expanding parents,
* its parent's id (4 bytes),
* the fingerprint again in a sorted index with the matching id (8 + 4 bytes),
  for vectorised membership tests with ``np.searchsorted``.

The sorted index is two-tiered (a large main array and a small recent one,
merged when the recent one outgrows a fraction of the main one) so that adding
a batch costs O(batch + recent) instead of O(all states): amortised, each
fingerprint is moved a logarithmic number of times.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

Int64Array = npt.NDArray[np.int64]
Int32Array = npt.NDArray[np.int32]

_MERGE_FRACTION = 8
"""Merge the recent tier into the main one when it exceeds 1/_MERGE_FRACTION of it."""


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


class _SortedIndex:
    """A sorted fingerprint array with the id of each fingerprint."""

    def __init__(self) -> None:
        self.fps: Int64Array = np.empty(0, dtype=np.int64)
        self.ids: Int32Array = np.empty(0, dtype=np.int32)

    def positions(self, fps: Int64Array) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.bool_]]:
        """Insertion positions of ``fps`` and whether each is already present."""
        pos = np.searchsorted(self.fps, fps)
        if len(self.fps) == 0:
            return pos, np.zeros(len(fps), dtype=bool)
        found = self.fps[np.minimum(pos, len(self.fps) - 1)] == fps
        return pos, found

    def insert(self, pos: npt.NDArray[np.intp], fps: Int64Array, ids: Int32Array) -> None:
        """Insert sorted, absent ``fps`` at the positions ``positions`` returned."""
        self.fps = np.insert(self.fps, pos, fps)
        self.ids = np.insert(self.ids, pos, ids)

    def merge(self, other: _SortedIndex) -> None:
        """Absorb ``other`` (disjoint from this index)."""
        pos, _ = self.positions(other.fps)
        self.insert(pos, other.fps, other.ids)


class VisitedTable:
    """Fingerprints seen so far, with ids in discovery order and parent links."""

    def __init__(self) -> None:
        self.fps_by_id = GrowableArray(np.int64)
        self.parents = GrowableArray(np.int32)
        self._main = _SortedIndex()
        self._recent = _SortedIndex()

    def __len__(self) -> int:
        return len(self.fps_by_id)

    def contains(self, fps: Int64Array) -> npt.NDArray[np.bool_]:
        """For each fingerprint, whether it is in the table."""
        return self._main.positions(fps)[1] | self._recent.positions(fps)[1]

    def ids_of(self, fps: Int64Array) -> Int32Array:
        """Ids of fingerprints that are all in the table."""
        out = np.empty(len(fps), dtype=np.int32)
        pos, found = self._main.positions(fps)
        out[found] = self._main.ids[pos[found]]
        rest = ~found
        pos_recent = np.searchsorted(self._recent.fps, fps[rest])
        out[rest] = self._recent.ids[pos_recent]
        return out

    def add(self, fps: Int64Array, parents: Int32Array) -> range:
        """Add new, distinct fingerprints (in discovery order); returns their ids."""
        first = len(self)
        ids = np.arange(first, first + len(fps), dtype=np.int32)
        self.fps_by_id.extend(fps)
        self.parents.extend(parents)
        order = np.argsort(fps, kind="stable")
        sorted_fps = fps[order]
        pos, _ = self._recent.positions(sorted_fps)
        self._recent.insert(pos, sorted_fps, ids[order])
        if len(self._recent.fps) * _MERGE_FRACTION > len(self._main.fps):
            self._main.merge(self._recent)
            self._recent = _SortedIndex()
        return range(first, first + len(fps))

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
        """Bytes held per the layout in the module docstring."""
        return (
            self.fps_by_id.nbytes
            + self.parents.nbytes
            + self._main.fps.nbytes
            + self._main.ids.nbytes
            + self._recent.fps.nbytes
            + self._recent.ids.nbytes
        )
