"""Driving the PBFT bridge through a scripted spec behaviour (printed labels), for scenario tests."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from conformance.bridge_pbft import PbftBridge
from model_checker.model import Model
from tests.model_checker.helpers import successors


def driven(model: Model[Any], labels: Sequence[str]) -> tuple[PbftBridge, Any]:
    """A bridge driven through ``labels``, checked against the spec at every step, and the spec
    state reached."""
    bridge = PbftBridge(model)
    state = next(iter(model.init()))
    bridge.start(state, ())
    for text in labels:
        label, successor = next((lab, s) for lab, s in successors(model, state) if str(lab) == text)
        bridge.stimulate(label, state)
        state = successor
        assert bridge.abstract() == state, text
    return bridge, state
