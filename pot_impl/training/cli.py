"""``pot training ...``: hash a dataset, build an order, train with proofs, verify a claim.

Only the parser lives here: the handlers (``commands``) import torch, which
would otherwise slow down every ``pot`` command by seconds.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any


def _lazy(command: str) -> Callable[[argparse.Namespace], int]:
    """A handler that imports the training machinery only when the command runs."""

    def run(args: argparse.Namespace) -> int:
        from pot_impl.training.commands import dispatch

        return dispatch(command, args)

    return run


def _add_environment_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--threads", type=int, default=1, help="pinned CPU thread count (default 1)")
    parser.add_argument("--device", help="torch device (default: cuda when available, else cpu)")
    parser.add_argument("--data-dir", help="directory holding the order's dataset files")


def register(sub: argparse._SubParsersAction[Any]) -> None:
    """Add ``pot training`` and its actions."""
    training = sub.add_parser("training", help="proof-of-training: datasets, orders, training, verification")
    actions = training.add_subparsers(dest="training_command", required=True, metavar="ACTION")

    hash_dataset = actions.add_parser("hash-dataset", help="print a dataset's content hash")
    source = hash_dataset.add_mutually_exclusive_group(required=True)
    source.add_argument("--file", help=".npz or .safetensors file with arrays 'inputs' and 'targets'")
    source.add_argument("--generator", help="built-in generator: blobs, images or tokens")
    hash_dataset.add_argument(
        "--param", action="append", default=[], metavar="NAME=INT", help="generator parameter"
    )
    hash_dataset.set_defaults(run=_lazy("hash-dataset"))

    order = actions.add_parser("order", help="validate a task (JSON) and write the canonical order bytes")
    order.add_argument("task", help="task JSON (architecture, dataset, optimizer, steps, ...)")
    order.add_argument("--seed", required=True, help="the ledger's data_order_seed, 64 hex digits")
    order.add_argument("--out", required=True, help="file to write the canonical order to")
    order.add_argument("--data-dir", help="directory holding the task's dataset files")
    order.set_defaults(run=_lazy("order"))

    run = actions.add_parser("run", help="train an order with proofs; writes claim, leaves and checkpoints")
    run.add_argument("order", help="canonical order file")
    run.add_argument("--proof-dir", required=True, help="directory for the claim, leaves and checkpoints")
    _add_environment_options(run)
    run.set_defaults(run=_lazy("run"))

    verify = actions.add_parser(
        "verify", help="validate a claim by sampled re-execution (exit 1 if rejected)"
    )
    verify.add_argument("order", help="canonical order file")
    verify.add_argument("--proof-dir", required=True, help="the trainer's proof directory")
    verify.add_argument("--key-seed", required=True, help="validator's Ed25519 seed, 64 hex digits")
    verify.add_argument("--sample-size", type=int, default=29, help="segments to re-execute (default 29)")
    verify.add_argument("--evidence-out", help="where to write fraud evidence when the claim is rejected")
    _add_environment_options(verify)
    verify.set_defaults(run=_lazy("verify"))

    dispute = actions.add_parser(
        "dispute", help="one segment's committed step digests and opening, for the ledger's dispute game"
    )
    dispute.add_argument("order", help="canonical order file")
    dispute.add_argument("--proof-dir", required=True, help="the trainer's proof directory")
    dispute.add_argument("--segment", type=int, required=True, help="the disputed segment")
    dispute.add_argument(
        "--reexecute", action="store_true", help="also re-execute the segment: a challenger's digests"
    )
    dispute.add_argument("--state-after", type=int, help="write the state after this step (0..k-1)")
    dispute.add_argument("--state-out", help="file for --state-after's encoded checkpoint")
    _add_environment_options(dispute)
    dispute.set_defaults(run=_lazy("dispute"))
