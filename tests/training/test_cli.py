"""``pot training``: the user's path from a task file to a verified claim, and one-line errors."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest
import torch

from pot_impl.ledger.proofs import StepRuling
from pot_impl.training.cli import register
from pot_impl.training.datasets import synthetic_dataset
from pot_impl.training.environment import Environment
from pot_impl.training.proof_checker import TrainingProofChecker
from pot_impl.training.task import decode_order
from pot_impl.training.trainer import load_proof
from tests.training.conftest import DATASETS

SEED = "ab" * 32
KEY = "cd" * 32


def pot_training(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="pot")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["training", *argv])
    status: int = args.run(args)
    return status


def write_task(path: Path, **overrides: object) -> Path:
    generator, params = DATASETS["mlp"]
    task = {
        "architecture": "mlp",
        "arch_params": {"hidden": 16, "depth": 1},
        "dataset": {
            "generator": generator,
            "params": params,
            "sha256": synthetic_dataset(generator, params).digest.hex(),
        },
        "optimizer": {"name": "sgd", "lr": 0.1, "momentum": 0.9},
        "batch_size": 16,
        "steps": 12,
        "segment_length": 3,
        "init_seed": 1,
        "eval_examples": 40,
        **overrides,
    }
    path.write_text(json.dumps(task, indent=2))
    return path


def test_from_task_file_to_verified_claim(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    generator, params = DATASETS["mlp"]
    assert (
        pot_training(
            "hash-dataset", "--generator", generator, *[f"--param={k}={v}" for k, v in params.items()]
        )
        == 0
    )
    assert capsys.readouterr().out.strip() == synthetic_dataset(generator, params).digest.hex()
    order_file = tmp_path / "order.json"
    assert (
        pot_training(
            "order", str(write_task(tmp_path / "task.json")), "--seed", SEED, "--out", str(order_file)
        )
        == 0
    )
    assert decode_order(order_file.read_bytes()).task.segments == 4
    proof = tmp_path / "proof"
    assert pot_training("run", str(order_file), "--proof-dir", str(proof), "--device", "cpu") == 0
    claim = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert claim["claim"]["segments"] == 4
    common = ("--proof-dir", str(proof), "--key-seed", KEY, "--sample-size", "2", "--device", "cpu")
    assert pot_training("verify", str(order_file), *common) == 0
    verdict = json.loads(capsys.readouterr().out)
    assert verdict["accepted"] and verdict["tier"] == "A" and len(verdict["sample"]) == 2
    for checkpoint in (proof / "checkpoints").iterdir():
        checkpoint.unlink()
    assert pot_training("verify", str(order_file), *common) == 1
    assert "did not serve" in json.loads(capsys.readouterr().out)["reason"]


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"architecture": "resnet"}, "unknown architecture 'resnet'"),
        ({"segment_length": 5}, "segment_length 5 must divide steps 12"),
        (
            {"dataset": {"generator": "blobs", "params": DATASETS["mlp"][1], "sha256": "00" * 32}},
            "does not match",
        ),
        ({"dataset": {"file": "missing.npz", "sha256": "00" * 32}}, "no data directory"),
    ],
)
def test_bad_tasks_fail_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], overrides: dict[str, object], message: str
) -> None:
    task = write_task(tmp_path / "task.json", **overrides)
    status = pot_training("order", str(task), "--seed", SEED, "--out", str(tmp_path / "order.json"))
    error = capsys.readouterr().err
    assert status == 2 and message in error and error.count("\n") == 1 and "Traceback" not in error


def test_missing_or_malformed_inputs_fail_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "junk").write_bytes(b"not an order")
    for argv in (
        ("run", str(tmp_path / "absent.json"), "--proof-dir", str(tmp_path / "p")),
        ("run", str(tmp_path / "junk"), "--proof-dir", str(tmp_path / "p")),
        ("verify", str(tmp_path / "junk"), "--proof-dir", str(tmp_path / "absent"), "--key-seed", KEY),
        ("order", str(tmp_path / "junk"), "--seed", SEED, "--out", str(tmp_path / "o")),
        ("hash-dataset", "--generator", "blobs", "--param", "examples"),
    ):
        assert pot_training(*argv) == 2
        error = capsys.readouterr().err
        assert error.startswith("pot training ") and error.count("\n") == 1


@pytest.mark.parametrize(
    ("device", "cuda_devices", "message"),
    [
        ("nosuchdev", 0, "--device 'nosuchdev' is not a torch device; use cpu or cuda[:INDEX]"),
        ("meta", 0, "--device meta: training runs on cpu or cuda, not meta"),
        ("cuda", 0, "--device cuda: this torch"),
        ("cuda:1", 1, "--device cuda:1: this machine has CUDA devices 0..0 only"),
    ],
)
@pytest.mark.parametrize("command", ["run", "verify"])
def test_a_device_this_machine_cannot_train_on_is_refused_before_any_work(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    command: str,
    device: str,
    cuda_devices: int,
    message: str,
) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda_devices > 0)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: cuda_devices)
    order_file = tmp_path / "order.bin"
    task = write_task(tmp_path / "task.json")
    assert pot_training("order", str(task), "--seed", SEED, "--out", str(order_file)) == 0
    capsys.readouterr()
    proof = tmp_path / "proof"
    argv = [command, str(order_file), "--proof-dir", str(proof), "--device", device]
    assert pot_training(*argv, *(["--key-seed", KEY] if command == "verify" else [])) == 2
    error = capsys.readouterr().err
    assert error.startswith(f"pot training {command}: {message}") and error.count("\n") == 1
    assert not proof.exists()


def test_the_dispute_command_gives_each_party_what_the_ledger_asks(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The trainer's opening and supplied state, and the challenger's re-executed digests, are what
    the ledger's checker referees a step with."""
    order_file, proof = tmp_path / "order.bin", tmp_path / "proof"
    task = write_task(tmp_path / "task.json", step_digests=True)
    assert pot_training("order", str(task), "--seed", SEED, "--out", str(order_file)) == 0
    assert pot_training("run", str(order_file), "--proof-dir", str(proof)) == 0
    capsys.readouterr()
    state = tmp_path / "state.bin"
    dispute = ("dispute", str(order_file), "--proof-dir", str(proof))
    assert (
        pot_training(
            *dispute, "--segment", "1", "--reexecute", "--state-after", "1", "--state-out", str(state)
        )
        == 0
    )
    report = json.loads(capsys.readouterr().out)
    assert (
        report["reexecuted_digests"] == report["committed_digests"] and report["first_invalid_step"] is None
    )
    assert report["state_digest"] == report["committed_digests"][0]
    claim, _ = load_proof(proof)
    opening = bytes.fromhex(report["opening"])
    ruling = TrainingProofChecker(env=Environment("cpu", 1)).referee(
        order_file.read_bytes(), claim.commitment, 1, 1, state.read_bytes(), opening
    )
    assert ruling is StepRuling.STEP_VALID
    assert pot_training(*dispute, "--segment", "9") == 2
    assert capsys.readouterr().err.strip() == "pot training dispute: --segment must be in 0..3"


def test_the_dispute_command_refuses_an_order_without_step_digests(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    order_file, proof = tmp_path / "order.bin", tmp_path / "proof"
    assert (
        pot_training(
            "order", str(write_task(tmp_path / "task.json")), "--seed", SEED, "--out", str(order_file)
        )
        == 0
    )
    assert pot_training("run", str(order_file), "--proof-dir", str(proof)) == 0
    capsys.readouterr()
    assert pot_training("dispute", str(order_file), "--proof-dir", str(proof), "--segment", "0") == 2
    assert "needs step_digests" in capsys.readouterr().err
