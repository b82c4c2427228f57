"""Config errors name the offending field; a rendered config parses back to itself."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import pytest

from pot_impl.ledger.records import LedgerParams
from pot_impl.pbft.config import ReplicaConfig
from pot_impl.runtime.config import (
    LEDGER_DEFAULTS,
    Address,
    Config,
    ConfigError,
    LedgerSettings,
    NodeSettings,
    ReplicaEntry,
    load_config,
    parse_config,
    render_config,
)
from pot_impl.runtime.crypto import KeyPair

KEYS = [KeyPair.from_seed(bytes([i]) * 32).public for i in range(4)]


def sample_config(base: Path) -> Config:
    replicas = tuple(ReplicaEntry(i, Address("127.0.0.1", 7000 + i), KEYS[i]) for i in range(4))
    node = NodeSettings(
        1,
        base / "keys/r1.key",
        base / "data/r1",
        base / "events/r1.jsonl",
        byzantine="silent",
        listen=Address("127.0.0.1", 9001),
    )
    params = LedgerParams(**{**LEDGER_DEFAULTS, "segments": 10, "sample_size": 3})
    ledger = LedgerSettings(params, (("ab" * 32, 500),))
    return Config(
        replicas, ReplicaConfig(n=4, checkpoint_interval=2, watermark_window=8), ledger=ledger, node=node
    )


def sample_document(base: Path) -> dict[str, Any]:
    return tomllib.loads(render_config(sample_config(base), base))


def test_render_then_load_round_trips(tmp_path: Path) -> None:
    path = tmp_path / "node1.toml"
    config = sample_config(tmp_path)
    path.write_text(render_config(config, tmp_path))
    assert load_config(path) == config
    assert config.f == 1


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda d: d["replicas"][2].update(address="localhost"), "replicas[2].address"),
        (lambda d: d["replicas"][1].update(public_key="00ff"), "replicas[1].public_key"),
        (lambda d: d["replicas"][3].update(id=7), "replicas[3].id"),
        (lambda d: d["replicas"][0].pop("public_key"), "replicas[0].public_key"),
        (lambda d: d["replicas"].pop(), "replicas"),
        (lambda d: d["protocol"].update(checkpoint_interval=0), "protocol.checkpoint_interval"),
        (lambda d: d["protocol"].update(watermark_window=3), "protocol"),
        (lambda d: d["protocol"].update(batch_size="many"), "protocol.batch_size"),
        (lambda d: d["protocol"].update(batch_timeout_ms=-1), "protocol.batch_timeout_ms"),
        (lambda d: d["transport"].update(max_frame_bytes=True), "transport.max_frame_bytes"),
        (lambda d: d["transport"].update(colour="red"), "transport.colour"),
        (lambda d: d["transport"].update(max_message_bytes=1024), "transport.max_message_bytes"),
        (lambda d: d["node"].update(id=9), "node.id"),
        (lambda d: d["node"].update(sync="sometimes"), "node.sync"),
        (lambda d: d["node"].update(listen="127.0.0.1:0"), "node.listen"),
        (lambda d: d["node"].update(byzantine="evil"), "node.byzantine"),
        (lambda d: d["node"].pop("key_file"), "node.key_file"),
        (lambda d: d.update(extra=1), "extra"),
        (lambda d: d["ledger"].update(sample_size=11), "ledger.sample_size"),
        (lambda d: d["ledger"]["genesis"].update(alice=-5), "ledger.genesis.alice"),
        (lambda d: d["ledger"].update(segments="ten"), "ledger.segments"),
    ],
)
def test_errors_name_the_field(tmp_path: Path, mutate: Any, field: str) -> None:
    document = sample_document(tmp_path)
    mutate(document)
    with pytest.raises(ConfigError) as error:
        parse_config(document, tmp_path)
    assert str(error.value).startswith(f"{field}:")


def test_unreadable_and_non_toml_files_are_config_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"missing\.toml"):
        load_config(tmp_path / "missing.toml")
    broken = tmp_path / "broken.toml"
    broken.write_text("[node\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(broken)
