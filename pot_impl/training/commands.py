"""Handlers of ``pot training ...``; imported only when a training command runs (they need torch).

User mistakes (bad task, unknown architecture, dataset hash mismatch, missing
file, malformed proof directory) end with one line naming what to fix and exit
status 2; a rejected claim exits 1.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path

from nacl.signing import SigningKey

from pot_impl.training.architectures import ArchitectureError, resolve_arch_params
from pot_impl.training.canonical import EncodingError
from pot_impl.training.checkpoint import (
    CheckpointError,
    checkpoint_digest,
    decode_checkpoint,
    encode_checkpoint,
)
from pot_impl.training.datasets import DatasetCatalog, DatasetError, load_dataset_file, synthetic_dataset
from pot_impl.training.dispute import first_disagreement, trajectory
from pot_impl.training.environment import Environment, check_device, default_environment
from pot_impl.training.evidence import committed_segment
from pot_impl.training.reexecution import Reexecutor
from pot_impl.training.reproducible import RoundingLog
from pot_impl.training.segments import ProofFormatError, SegmentLeaf
from pot_impl.training.task import TaskError, TrainingOrder, decode_order, prepare_task, task_from_json
from pot_impl.training.trainer import load_proof, proof_store, save_proof, train
from pot_impl.training.validator import Validator

USAGE_ERROR = 2
REJECTED = 1
USER_ERRORS = (
    TaskError,
    DatasetError,
    ArchitectureError,
    EncodingError,
    ProofFormatError,
    CheckpointError,
    OSError,
    ValueError,
)


def _guarded(command: str, body: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """Turn user errors raised by ``body`` into one line on stderr and exit status 2."""

    def run(args: argparse.Namespace) -> int:
        try:
            return body(args)
        except USER_ERRORS as exc:
            print(f"pot training {command}: {exc}", file=sys.stderr)
            return USAGE_ERROR

    return run


def _environment(args: argparse.Namespace) -> Environment:
    """The run's device and threads, refused before any work when this machine lacks them."""
    if args.threads < 1:
        raise ValueError("--threads must be at least 1")
    if args.device is None:
        return Environment(default_environment().device, args.threads)
    try:
        return Environment(check_device(args.device), args.threads)
    except ValueError as error:
        raise ValueError(f"--device {error}") from None


def _parse_params(items: list[str]) -> dict[str, int]:
    params: dict[str, int] = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep:
            raise ValueError(f"--param: expected NAME=INTEGER, got {item!r}")
        try:
            params[name] = int(value)
        except ValueError:
            raise ValueError(f"--param {name}: {value!r} is not an integer") from None
    return params


def _hash_dataset(args: argparse.Namespace) -> int:
    if args.file:
        dataset = load_dataset_file(Path(args.file))
    else:
        dataset = synthetic_dataset(args.generator, _parse_params(args.param))
    print(dataset.digest.hex())
    return 0


def _order(args: argparse.Namespace) -> int:
    try:
        task_json = json.loads(Path(args.task).read_text())
    except json.JSONDecodeError as exc:
        raise ValueError(f"{args.task} is not JSON: {exc}") from None
    if not isinstance(task_json, dict):
        raise ValueError(f"{args.task}: expected a JSON object")
    task_json.setdefault("schedule", {"name": "constant", "warmup_steps": 0})
    arch_params = task_json.get("arch_params", {})
    if not isinstance(arch_params, dict):
        raise ValueError(f"{args.task}: arch_params must be an object")
    task_json["arch_params"] = resolve_arch_params(str(task_json.get("architecture")), arch_params)
    try:
        seed = bytes.fromhex(args.seed)
    except ValueError:
        raise ValueError("--seed must be hexadecimal") from None
    order = TrainingOrder(task_from_json(task_json), seed)
    encoded = order.encode()
    decode_order(encoded)  # full hyperparameter validation
    prepare_task(order.task, DatasetCatalog(Path(args.data_dir) if args.data_dir else None))
    Path(args.out).write_bytes(encoded)
    print(f"order {order.digest.hex()} ({order.task.segments} segments) written to {args.out}")
    return 0


def _run(args: argparse.Namespace) -> int:
    environment = _environment(args)
    order = decode_order(Path(args.order).read_bytes())
    prepared = prepare_task(order.task, DatasetCatalog(Path(args.data_dir) if args.data_dir else None))
    directory = Path(args.proof_dir)
    run = train(order, prepared, proof_store(directory), environment)
    save_proof(run, directory)
    print(json.dumps({"proof_root": run.claim.commitment.hex(), "claim": json.loads(run.claim.encode())}))
    return 0


def _verify(args: argparse.Namespace) -> int:
    environment = _environment(args)
    order_bytes = Path(args.order).read_bytes()
    decode_order(order_bytes)  # a malformed order is the user's mistake, not the trainer's
    claim, server = load_proof(Path(args.proof_dir))
    try:
        key = SigningKey(bytes.fromhex(args.key_seed))
    except ValueError:
        raise ValueError("--key-seed must be 64 hex digits (a 32-byte Ed25519 seed)") from None
    validator = Validator(
        key,
        args.sample_size,
        DatasetCatalog(Path(args.data_dir) if args.data_dir else None),
        environment,
    )
    verdict = validator.validate(order_bytes, claim, server)
    print(
        json.dumps(
            {
                "accepted": verdict.accepted,
                "reason": verdict.reason,
                "tier": verdict.tier,
                "sample": list(verdict.sample),
                "seed_signature": verdict.seed_signature.hex(),
                "score": verdict.score,
                "evidence_segment": verdict.evidence_segment,
                "evidence_bytes": len(verdict.evidence or b""),
            }
        )
    )
    if verdict.evidence is not None and args.evidence_out:
        Path(args.evidence_out).write_bytes(verdict.evidence)
    return 0 if verdict.accepted else REJECTED


def _dispute(args: argparse.Namespace) -> int:
    """What each party of a dispute over one segment needs: the trainer's opening (``Reveal``,
    ``Supply``) and committed digests; with ``--reexecute`` the digests honest re-execution gives
    (a challenger agrees with a revealed digest exactly when they match) and the first step where
    they part; with ``--state-after`` the state an honest trainer supplies."""
    order = decode_order(Path(args.order).read_bytes())
    claim, server = load_proof(Path(args.proof_dir))
    segment, steps = args.segment, order.task.segment_length
    if not 0 <= segment < claim.segments:
        raise ValueError(f"--segment must be in 0..{claim.segments - 1}")
    if args.state_after is not None and (not 0 <= args.state_after < steps or not args.state_out):
        raise ValueError(f"--state-after must be in 0..{steps - 1}, with --state-out")
    leaf = SegmentLeaf.decode(server.leaves[segment])
    if len(leaf.steps) != steps - 1:
        raise ValueError("the order's leaves commit no per-step digests (its task needs step_digests)")
    committed = [*leaf.steps, leaf.checkpoint_digest]
    report: dict[str, object] = {
        "segment": segment,
        "opening": committed_segment(claim, server, segment, checkpoints=False).hex(),
        "committed_digests": [digest.hex() for digest in committed],
    }
    if args.reexecute or args.state_after is not None:
        catalog = DatasetCatalog(Path(args.data_dir) if args.data_dir else None)
        reexecutor = Reexecutor(order, prepare_task(order.task, catalog), _environment(args))
        start = reexecutor.initial
        if segment:
            previous = SegmentLeaf.decode(server.leaves[segment - 1]).checkpoint_digest
            start = decode_checkpoint(server.fetch(previous), previous)
        log, first = RoundingLog.decode(leaf.rounding), segment * steps
        if args.reexecute:
            honest = trajectory(reexecutor, start, first, steps, log)
            parted = first_disagreement(committed, honest)
            report["reexecuted_digests"] = [digest.hex() for digest in honest]
            report["first_invalid_step"] = None if parted is None else parted + 1
        if args.state_after is not None:
            trajectory(reexecutor, start, first, args.state_after, log)
            state = reexecutor.session.checkpoint()
            Path(args.state_out).write_bytes(encode_checkpoint(state))
            report["state_digest"] = checkpoint_digest(state).hex()
    print(json.dumps(report))
    return 0


HANDLERS: dict[str, Callable[[argparse.Namespace], int]] = {
    "hash-dataset": _hash_dataset,
    "order": _order,
    "run": _run,
    "verify": _verify,
    "dispute": _dispute,
}


def dispatch(command: str, args: argparse.Namespace) -> int:
    """Run one ``pot training`` action with user errors turned into one line."""
    return _guarded(command, HANDLERS[command])(args)
