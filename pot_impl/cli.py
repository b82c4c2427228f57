"""Subcommands of `pot` provided by `pot_impl`: keys, node, cluster, submit, status, training.

User mistakes (bad config, key, argument or transaction) end with one line
naming what to fix and exit status 2; an unreachable cluster exits 1.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import faulthandler
import json
import logging
import signal
import sys
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

from pot_impl import codec
from pot_impl.runtime.client import ClientSession, SubmitTimeout, cluster_status
from pot_impl.runtime.cluster import LocalCluster, stop_cluster_directory
from pot_impl.runtime.config import BYZANTINE_BEHAVIOURS, ConfigError, load_config
from pot_impl.runtime.crypto import KeyFileError, KeyPair, client_id, read_key_pair, write_key_pair
from pot_impl.runtime.store import StoreError
from pot_impl.runtime.txjson import result_to_json, transaction_from_json
from pot_impl.training import cli as training_cli

USAGE_ERROR = 2
UNAVAILABLE = 1
USER_ERRORS = (ConfigError, KeyFileError, StoreError, ValueError, FileExistsError, FileNotFoundError)


STATUS_SCHEMA = "pot-status/1"
"""The ``schema`` of ``pot status --json`` (pot/schemas/status.schema.json)."""


def _fail(command: str, message: object, status: int = USAGE_ERROR) -> int:
    print(f"pot {command}: {message}", file=sys.stderr)
    return status


def _guarded(command: str, body: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """Turn user errors raised by ``body`` into one line and exit status 2."""

    def run(args: argparse.Namespace) -> int:
        try:
            return body(args)
        except USER_ERRORS as exc:
            if command == "status" and args.json:
                print(json.dumps({"schema": STATUS_SCHEMA, "verdict": "error", "error": str(exc)}))
            return _fail(command, exc)

    return run


def _run_async(coroutine: Coroutine[Any, Any, int]) -> int:
    return asyncio.run(coroutine)


# ------------------------------------------------------------ pot keys


def _keys(args: argparse.Namespace) -> int:
    path = Path(args.out)
    if not path.parent.is_dir():
        return _fail("keys", f"{path.parent} is not a directory; create it first")
    pair = KeyPair.generate()
    try:
        public_path = write_key_pair(path, pair)
    except FileExistsError:
        return _fail("keys", f"{path} exists; refusing to overwrite a secret key")
    except OSError as error:
        return _fail("keys", f"cannot write {path}: {error.strerror}")
    print(f"secret key: {path}\npublic key: {public_path} ({pair.public.hex()})")
    print(f"client id:  {client_id(pair.public)}")
    return 0


# ------------------------------------------------------------ pot node run


def _node_run(args: argparse.Namespace) -> int:
    from pot_impl.runtime.node import Node  # the core is only needed to run a replica

    config = load_config(Path(args.config))
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    node = Node(config)
    if sys.__stderr__ is not None:  # `kill -USR1 <pid>` prints every thread's stack to the log
        with contextlib.suppress(ValueError, OSError):  # stderr without a file descriptor: no dumps
            faulthandler.register(signal.SIGUSR1, file=sys.__stderr__, all_threads=True)
    listen = config.listen_address()
    print(f"replica {node.id} of {config.n} listening on {listen}", flush=True)
    try:
        asyncio.run(node.run_until_stopped())
    except OSError as exc:
        return _fail("node run", f"cannot listen on {listen}: {exc.strerror}", UNAVAILABLE)
    return 0


# ------------------------------------------------------------ pot cluster


def _parse_byzantine(items: list[str], nodes: int, allow_over_f: bool = False) -> dict[int, str]:
    """Replica to behaviour; more than f = (n - 1) // 3 of them only when the operator says so."""
    behaviours: dict[int, str] = {}
    for item in items:
        replica, sep, behaviour = item.partition(":")
        if not sep or not replica.isdigit() or behaviour not in BYZANTINE_BEHAVIOURS:
            choices = ", ".join(BYZANTINE_BEHAVIOURS)
            raise ValueError(f"--byzantine: expected REPLICA:BEHAVIOUR, BEHAVIOUR in {choices}; got {item!r}")
        if int(replica) >= nodes:
            raise ValueError(f"--byzantine: replica {replica} is not in 0..{nodes - 1}")
        behaviours[int(replica)] = behaviour
    faulty = (nodes - 1) // 3
    if len(behaviours) > faulty:
        excess = f"{len(behaviours)} Byzantine replicas exceed f = {faulty} of n = {nodes}"
        if not allow_over_f:
            raise ValueError(
                f"--byzantine: {excess}, so PBFT guarantees nothing; add --allow-over-f to run it anyway"
            )
        print(f"warning: {excess}: PBFT guarantees nothing", file=sys.stderr)
    return behaviours


def _cluster_up(args: argparse.Namespace) -> int:
    if args.nodes < 4:
        return _fail("cluster up", f"--nodes: PBFT needs at least 4 replicas (n = 3f+1), got {args.nodes}")
    cluster = LocalCluster(
        Path(args.dir),
        args.nodes,
        byzantine=_parse_byzantine(args.byzantine, args.nodes, args.allow_over_f),
        sync=args.sync,
    )
    cluster.create()
    try:
        cluster.start()
    except (RuntimeError, TimeoutError) as exc:
        cluster.stop()
        return _fail("cluster up", exc, UNAVAILABLE)
    directory = cluster.directory
    print(f"cluster of {args.nodes} replicas running from {directory}")
    for replica, process in sorted(cluster.processes.items()):
        address = cluster.listen[replica]
        print(f"  replica {replica}: {address} pid {process.pid}  events {cluster.event_log_path(replica)}")
    public = read_key_pair(cluster.client_key_path).public.hex()
    example = json.dumps({"type": "Register", "role": 1, "public_key": public, "stake": 100})
    config_path = directory / "cluster.toml"
    print(f"submit:  pot submit --config {config_path} --key {cluster.client_key_path} --tx '{example}'")
    print(f"status:  pot status --config {config_path}")
    print("stop:    pot cluster down --dir", directory)
    return 0


def _cluster_down(args: argparse.Namespace) -> int:
    stopped = stop_cluster_directory(Path(args.dir))
    print(f"stopped {len(stopped)} replica processes")
    return 0


# ------------------------------------------------------------ pot submit / status


def _submit(args: argparse.Namespace) -> int:
    config = load_config(Path(args.config))
    pair = read_key_pair(Path(args.key))
    if args.tx is not None:
        operation = codec.encode(transaction_from_json(args.tx))
    else:
        try:
            operation = bytes.fromhex(args.operation_hex)
        except ValueError:
            raise ValueError("--operation-hex: not hexadecimal") from None

    async def submit() -> int:
        session = ClientSession(config, pair, retry_s=args.retry)
        request = session.request(operation)
        await session.connect()
        if len(session.connected) < config.f + 1:
            await session.close()
            reachable = len(session.connected)
            return _fail("submit", f"only {reachable} of {config.n} replicas reachable", UNAVAILABLE)
        try:
            outcome = await session.submit_request(request, timeout_s=args.timeout)
        except SubmitTimeout as exc:
            return _fail("submit", exc, UNAVAILABLE)
        finally:
            await session.close()
        print(
            json.dumps(
                {
                    "client": outcome.client,
                    "timestamp": outcome.timestamp,
                    "view": outcome.view,
                    "replicas": list(outcome.replicas),
                    "latency_ms": round(outcome.latency_s * 1000, 2),
                    **result_to_json(outcome.result),
                }
            )
        )
        return 0

    return _run_async(submit())


def _status(args: argparse.Namespace) -> int:
    config = load_config(Path(args.config))

    async def status() -> int:
        reports = await cluster_status(config)
        if args.json:
            replicas = {
                str(replica): report if isinstance(report, dict) else {"error": report}
                for replica, report in reports.items()
            }
            print(json.dumps({"schema": STATUS_SCHEMA, "replicas": replicas}, indent=2, sort_keys=True))
        else:
            _print_status_table(reports)
        return 0 if any(isinstance(r, dict) for r in reports.values()) else UNAVAILABLE

    return _run_async(status())


def _print_status_table(reports: dict[int, dict[str, Any] | str]) -> None:
    columns = ("replica", 7), ("view", 5), ("primary", 7), ("executed", 8), ("stable", 6), ("pending", 7)
    print(" ".join(f"{name:>{width}}" for name, width in columns) + "  ledger digest")
    for replica, report in sorted(reports.items()):
        if isinstance(report, str):
            print(f"{replica:>7}  {report}")
            continue
        active = "" if report["view_active"] else "*"
        print(
            f"{replica:>7} {str(report['view']) + active:>5} {report['primary']:>7} "
            f"{report['last_executed']:>8} {report['stable_checkpoint']:>6} {report['pending_requests']:>7}  "
            f"{report['ledger']['state_digest'][:16]}"
        )
    print("(* = view change in progress)")


# ------------------------------------------------------------ registration


def register(sub: argparse._SubParsersAction[Any]) -> None:
    """Add this package's subcommands to `pot`."""
    keys = sub.add_parser("keys", help="generate an Ed25519 key pair (secret file + .pub)")
    keys.add_argument("--out", required=True, help="path of the secret key file to create")
    keys.set_defaults(run=_keys)

    node = sub.add_parser("node", help="run a replica")
    node_sub = node.add_subparsers(dest="node_command", required=True, metavar="ACTION")
    run = node_sub.add_parser("run", help="run one replica in the foreground until SIGTERM/SIGINT")
    run.add_argument("--config", required=True, help="node config file (TOML with a [node] table)")
    run.set_defaults(run=_guarded("node run", _node_run))

    cluster = sub.add_parser("cluster", help="a local multi-process cluster on 127.0.0.1")
    cluster_sub = cluster.add_subparsers(dest="cluster_command", required=True, metavar="ACTION")
    up = cluster_sub.add_parser("up", help="generate keys and configs, start the replicas in the background")
    up.add_argument("--nodes", type=int, default=4, help="number of replicas n (>= 4)")
    up.add_argument("--dir", default="pot-cluster", help="directory for configs, keys, data and logs")
    up.add_argument(
        "--byzantine",
        action="append",
        default=[],
        metavar="REPLICA:BEHAVIOUR",
        help=f"make a replica Byzantine ({', '.join(BYZANTINE_BEHAVIOURS)}); repeatable",
    )
    up.add_argument(
        "--allow-over-f",
        action="store_true",
        help="run more than f = (n-1)//3 Byzantine replicas (an experiment: PBFT then guarantees nothing)",
    )
    up.add_argument("--sync", choices=("full", "normal"), default="full", help="SQLite synchronous mode")
    up.set_defaults(run=_guarded("cluster up", _cluster_up))
    down = cluster_sub.add_parser("down", help="stop the replicas of a cluster directory")
    down.add_argument("--dir", default="pot-cluster")
    down.set_defaults(run=_guarded("cluster down", _cluster_down))

    submit = sub.add_parser("submit", help="submit a ledger transaction and wait for f+1 matching replies")
    submit.add_argument("--config", required=True, help="cluster config (cluster.toml)")
    submit.add_argument("--key", required=True, help="the client's secret key file (pot keys)")
    what = submit.add_mutually_exclusive_group(required=True)
    what.add_argument("--tx", help='transaction as JSON, e.g. {"type": "Finalize", "order_id": 1}')
    what.add_argument("--operation-hex", help="raw operation bytes in hex")
    submit.add_argument("--timeout", type=float, default=10.0, help="seconds to wait for f+1 replies")
    submit.add_argument("--retry", type=float, default=1.0, help="seconds before re-sending to all replicas")
    submit.set_defaults(run=_guarded("submit", _submit))

    status = sub.add_parser("status", help="views, sequence numbers, checkpoints and ledger of each replica")
    status.add_argument("--config", required=True, help="cluster config (cluster.toml)")
    status.add_argument("--json", action="store_true", help="print the full reports as JSON")
    status.set_defaults(run=_guarded("status", _status))

    training_cli.register(sub)
