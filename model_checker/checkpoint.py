"""Checkpoint and resume of a long breadth-first search, at level boundaries.

At the end of a BFS level the search is fully described by the visited table
(fingerprints and parent links), the counters (generated states, coverage,
violations found), the recorded graph and predicate bits when liveness is on,
and the next level's frontier. ``pot check --checkpoint DIR`` writes that,
atomically, to ``DIR/MODEL.checkpoint`` at the end of a level at most every
``every_s`` seconds; ``--resume DIR`` starts from it, and the run goes on as if
it had never stopped (same counts, coverage, traces and verdict: tested by
interrupting a search and resuming it).

The file is a header (a magic string with the format, and the BLAKE2b digest of
what follows) and a pickle: like the specification a user passes to ``pot
check``, it is trusted input, to be resumed only from a directory one wrote
oneself. The digest is there for files that a full disk, a copy or a bit flip
damaged: one such byte in the frontier could otherwise decode to another state
and resume a different search.
"""

from __future__ import annotations

import hashlib
import os
import pickle
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import numpy as np
import numpy.typing as npt

from model_checker.model import Model, SpecError

FORMAT = 4
"""Bumped whenever what a checkpoint holds changes; an older file is refused, not misread."""

MAGIC = b"pot-checkpoint/%d\n" % FORMAT
DIGEST_SIZE = 32


@dataclass
class Checkpoint:
    """A search between two levels."""

    run: tuple[Any, ...]
    """What must be equal to resume: model, constants, invariants, deadlock, graph, predicates."""
    depth: int
    initial_ids: list[int]
    peak_frontier: int
    seconds: float
    explorer: dict[str, Any]
    """The explorer's fields that change as it searches (visited table, counters, graph)."""
    frontier: list[tuple[bytes, npt.NDArray[np.int32]]] = field(default_factory=list)
    """The next level's encoded blocks and their ids."""


def run_key(
    model: Model[Any], invariants: list[str], deadlock: bool, graph: bool, predicates: int
) -> tuple[Any, ...]:
    """What a resumed search must share with the one that wrote the checkpoint (bounds, workers and
    the memory budget may change between the two)."""
    constants = tuple(sorted((name, repr(value)) for name, value in model.constants.items()))
    return (model.name, constants, tuple(invariants), deadlock, graph, predicates)


def path_for(directory: Path, model: Model[Any]) -> Path:
    return directory / f"{model.name}.checkpoint"


def save(directory: Path, model: Model[Any], checkpoint: Checkpoint) -> None:
    """Write ``checkpoint`` for ``model`` into ``directory``, replacing the last one atomically."""
    target = path_for(directory, model)
    partial = target.with_suffix(".partial")
    try:
        directory.mkdir(parents=True, exist_ok=True)
        with partial.open("wb") as out:
            out.write(MAGIC + bytes(DIGEST_SIZE))
            digest = _new_digest()
            pickle.dump(checkpoint, _Digesting(out, digest), protocol=pickle.HIGHEST_PROTOCOL)
            out.seek(len(MAGIC))
            out.write(digest.digest())
        os.replace(partial, target)
    except OSError as error:
        raise SpecError(f"cannot write the checkpoint {target}: {error.strerror or error}") from None


def load(directory: Path, model: Model[Any], run: tuple[Any, ...]) -> Checkpoint | None:
    """The checkpoint ``directory`` holds for ``model``, None if it holds none; a file written by
    another run (other constants, invariants or options) or another format is a SpecError."""
    source = path_for(directory, model)
    if not source.exists():
        return None
    try:
        with source.open("rb") as stream:
            if stream.read(len(MAGIC)) != MAGIC:
                raise SpecError(f"{source}: not a checkpoint of this version of the checker; start afresh")
            if stream.read(DIGEST_SIZE) != hashlib.file_digest(stream, _new_digest).digest():
                raise SpecError(f"{source}: damaged (its digest does not match its contents); start afresh")
            stream.seek(len(MAGIC) + DIGEST_SIZE)
            checkpoint = pickle.load(stream)
    except (OSError, pickle.UnpicklingError, EOFError, AttributeError, ImportError) as error:
        raise SpecError(f"{source}: not a readable checkpoint ({error})") from None
    if not isinstance(checkpoint, Checkpoint):
        raise SpecError(f"{source}: not a checkpoint of this version of the checker; start afresh")
    if checkpoint.run != run:
        raise SpecError(
            f"{source}: written by another run of {model.name} (constants, invariants, deadlock or "
            "liveness differ); resume with the same ones, or start afresh"
        )
    return checkpoint


class _Digesting:
    """A binary file that digests what is written through it (what ``pickle.dump`` needs)."""

    def __init__(self, out: IO[bytes], digest: hashlib.blake2b) -> None:
        self._out = out
        self._digest = digest

    def write(self, data: bytes) -> int:
        self._digest.update(data)
        return self._out.write(data)


def _new_digest() -> hashlib.blake2b:
    return hashlib.blake2b(digest_size=DIGEST_SIZE)
