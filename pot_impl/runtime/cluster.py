"""A local multi-process cluster on loopback: generated keys and configs, one OS process per replica.

``LocalCluster`` is used by ``pot cluster up``, by the fault-injection tests
and by the benchmark. Its directory is self-contained and can be inspected
after a run::

    cluster.toml            the group (what clients and ``pot status`` read)
    node<i>.toml            replica i's config ([node] + the group)
    keys/replica<i>.key     secret keys (+ .pub), keys/client.key
    data/replica<i>/        SQLite store
    events/replica<i>.jsonl protocol event log
    logs/replica<i>.log     process stdout/stderr
    pids                    "replica pid" lines, for ``pot cluster down``

With ``proxied=True`` each replica listens on a private port and its
published address belongs to a fault proxy (``faults.FaultNetwork``), so the
harness can cut, delay, drop, duplicate and reorder traffic per link.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Coroutine
from dataclasses import replace
from pathlib import Path
from typing import Any

from pot_impl.runtime.config import (
    Address,
    Config,
    LedgerSettings,
    NodeSettings,
    ReplicaEntry,
    SyncMode,
    TransportSettings,
    protocol_config,
    render_config,
)
from pot_impl.runtime.crypto import KeyPair, client_id, read_key_pair, write_key_pair
from pot_impl.runtime.faults import FaultNetwork
from pot_impl.runtime.load import LoadResult, load_keys, register_operation, run_load

LOOPBACK = "127.0.0.1"
GENESIS_BALANCE = 1_000_000
"""What the generated client key, and each account derived from it for load generation, owns at
genesis, so it can register, stake and post orders."""


def free_ports(count: int) -> list[int]:
    """Ports the kernel reports free on loopback (all held open together, so they are distinct)."""
    sockets = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind((LOOPBACK, 0))
            sockets.append(sock)
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def port_open(address: Address, timeout_s: float = 0.2) -> bool:
    with contextlib.suppress(OSError), socket.create_connection((address.host, address.port), timeout_s):
        return True
    return False


class LocalCluster:
    """Creates, starts, kills and restarts the replica processes of one cluster directory."""

    def __init__(
        self,
        directory: Path,
        n: int,
        *,
        byzantine: dict[int, str] | None = None,
        protocol: dict[str, int] | None = None,
        transport: TransportSettings | None = None,
        sync: SyncMode = "full",
        proxied: bool = False,
        fault_seed: int = 0,
        ledger: LedgerSettings | None = None,
        load_accounts: int = 1024,
    ) -> None:
        self.directory = directory.resolve()
        self.n = n
        self.byzantine = byzantine or {}
        self.transport = transport or TransportSettings()
        self.protocol = protocol_config(n, protocol or {}, self.transport.max_frame_bytes)
        self.sync = sync
        self.proxied = proxied
        self.fault_seed = fault_seed
        self.ledger = ledger or LedgerSettings()
        """Ledger parameters and genesis accounts; the generated client key is funded on top."""
        self.load_accounts = load_accounts
        """Accounts derived from the client key (``load.load_keys``) funded at genesis: the most
        logical clients a load generator holding that key can run."""
        self.network: FaultNetwork | None = None
        self.processes: dict[int, subprocess.Popen[bytes]] = {}
        self.config: Config | None = None
        self.listen: dict[int, Address] = {}

    # ------------------------------------------------------------ files

    @property
    def cluster_config_path(self) -> Path:
        return self.directory / "cluster.toml"

    @property
    def client_key_path(self) -> Path:
        return self.directory / "keys" / "client.key"

    def client_identity(self) -> KeyPair:
        """The generated client's key pair (funded, and the root of the load accounts)."""
        return read_key_pair(self.client_key_path)

    def load(self, clients: int, **options: Any) -> Coroutine[Any, Any, LoadResult]:
        """``load.run_load`` of registrations against this cluster from ``clients`` of its funded
        load accounts (``options``: ``requests`` or ``duration_s``, and the rest of ``run_load``'s)."""
        assert self.config is not None, "create() first"
        identity = self.client_identity()
        return run_load(self.config, register_operation, identity=identity, clients=clients, **options)

    def node_config_path(self, replica: int) -> Path:
        return self.directory / f"node{replica}.toml"

    def event_log_path(self, replica: int) -> Path:
        return self.directory / "events" / f"replica{replica}.jsonl"

    def create(self) -> Config:
        """Generate keys and configs; refuses a directory that already holds a cluster."""
        if self.cluster_config_path.exists():
            raise FileExistsError(f"{self.directory} already holds a cluster (cluster.toml exists)")
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            reason = exc.strerror
            raise ValueError(f"{self.directory}: cannot create the cluster directory ({reason})") from None
        pairs = [KeyPair.generate() for _ in range(self.n)]
        for replica, pair in enumerate(pairs):
            write_key_pair(self.directory / "keys" / f"replica{replica}.key", pair)
        client = KeyPair.generate()
        write_key_pair(self.client_key_path, client)
        ports = free_ports(2 * self.n if self.proxied else self.n)
        published = [Address(LOOPBACK, port) for port in ports[: self.n]]
        self.listen = {
            replica: Address(LOOPBACK, ports[self.n + replica]) if self.proxied else published[replica]
            for replica in range(self.n)
        }
        replicas = tuple(ReplicaEntry(i, published[i], pairs[i].public) for i in range(self.n))
        funded = [client, *load_keys(client, self.load_accounts)]
        genesis = tuple((client_id(pair.public), GENESIS_BALANCE) for pair in funded)
        ledger = replace(self.ledger, genesis=(*genesis, *self.ledger.genesis))
        config = Config(replicas, self.protocol, self.transport, ledger)
        self.cluster_config_path.write_text(render_config(config, self.directory))
        for replica in range(self.n):
            node = NodeSettings(
                id=replica,
                key_file=self.directory / "keys" / f"replica{replica}.key",
                data_dir=self.directory / "data" / f"replica{replica}",
                event_log=self.event_log_path(replica),
                sync=self.sync,
                byzantine=self.byzantine.get(replica),
                listen=self.listen[replica] if self.proxied else None,
            )
            node_config = render_config(replace(config, node=node), self.directory)
            self.node_config_path(replica).write_text(node_config)
        (self.directory / "logs").mkdir(exist_ok=True)
        self.config = config
        return config

    # ------------------------------------------------------------ processes

    def start(self, timeout_s: float = 20.0) -> None:
        """Start every replica (and, when proxied, the fault network in front of them)."""
        if self.proxied and self.network is None:
            assert self.config is not None, "create() first"
            routes = {r.id: (r.address, self.listen[r.id]) for r in self.config.replicas}
            self.network = FaultNetwork(routes, seed=self.fault_seed)
            self.network.start()
        for replica in range(self.n):
            self.start_node(replica)
        self.wait_listening(range(self.n), timeout_s)

    def start_node(self, replica: int) -> None:
        if replica in self.processes and self.processes[replica].poll() is None:
            raise RuntimeError(f"replica {replica} is already running")
        log_file = (self.directory / "logs" / f"replica{replica}.log").open("ab")
        config_path = str(self.node_config_path(replica))
        command = [sys.executable, "-m", "pot", "node", "run", "--config", config_path]
        environment = {**os.environ, "PYTHONUNBUFFERED": "1"}
        self.processes[replica] = subprocess.Popen(
            command, stdout=log_file, stderr=subprocess.STDOUT, start_new_session=True, env=environment
        )
        log_file.close()
        self._write_pids()

    def wait_listening(self, replicas: range | list[int], timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        waiting = set(replicas)
        while waiting:
            for replica in list(waiting):
                process = self.processes[replica]
                if process.poll() is not None:
                    raise RuntimeError(
                        f"replica {replica} exited with status {process.returncode}; "
                        f"see {self.directory / 'logs' / f'replica{replica}.log'}"
                    )
                if port_open(self.listen[replica]):
                    waiting.discard(replica)
            if waiting and time.monotonic() > deadline:
                raise TimeoutError(f"replicas {sorted(waiting)} did not start listening in {timeout_s} s")
            time.sleep(0.05)

    def kill(self, replica: int, signum: int = signal.SIGKILL) -> None:
        """Send ``signum`` (default SIGKILL: no cleanup at all) and reap the process."""
        process = self.processes[replica]
        if process.poll() is None:
            process.send_signal(signum)
            process.wait(timeout=30)

    def restart(self, replica: int, timeout_s: float = 20.0) -> None:
        self.start_node(replica)
        self.wait_listening([replica], timeout_s)

    def running(self, replica: int) -> bool:
        return replica in self.processes and self.processes[replica].poll() is None

    def stop(self, timeout_s: float = 10.0) -> None:
        """SIGTERM every replica (a clean shutdown), SIGKILL what does not exit in time."""
        for process in self.processes.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout_s
        for process in self.processes.values():
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if self.network is not None:
            self.network.close()
            self.network = None

    def _write_pids(self) -> None:
        lines = [f"{replica} {process.pid}" for replica, process in sorted(self.processes.items())]
        (self.directory / "pids").write_text("\n".join(lines) + "\n")


def stop_cluster_directory(directory: Path, timeout_s: float = 10.0) -> list[int]:
    """SIGTERM the replicas recorded in ``directory/pids`` (for ``pot cluster down``); returns the pids
    that were still running. Only processes whose command line names this directory are signalled, so
    a recycled pid is never hit."""
    pids_file = directory / "pids"
    if not pids_file.exists():
        raise FileNotFoundError(f"{pids_file} not found: not a running cluster directory")
    signalled = []
    for line in pids_file.read_text().split("\n"):
        if not line.strip():
            continue
        pid = int(line.split()[1])
        try:
            command_line = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if str(directory.resolve()).encode() in command_line:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
                signalled.append(pid)
    deadline = time.monotonic() + timeout_s
    for pid in signalled:
        while time.monotonic() < deadline and Path(f"/proc/{pid}").exists():
            time.sleep(0.05)
    return signalled
