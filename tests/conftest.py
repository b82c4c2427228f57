"""Checks that hold for every test of the suite."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from typing import Any

import pytest

from model_checker import trace
from tests.itf_reader import assert_valid_itf


@pytest.fixture(autouse=True, scope="session")
def every_itf_document_is_read_by_itf_py() -> Iterator[None]:
    """Each ITF document a test makes through ``to_itf`` must also pass itf-py, an independent reader.

    ``to_itf`` is replaced in every module that imported it by name, and in
    ``model_checker.trace`` for the modules imported later.
    """
    original = trace.to_itf

    def checked(model: Any, counterexample: Any) -> dict[str, Any]:
        document = original(model, counterexample)
        assert_valid_itf(document)
        return document

    with pytest.MonkeyPatch.context() as patch:
        for module in list(sys.modules.values()):
            if getattr(module, "__dict__", {}).get("to_itf") is original:
                patch.setattr(module, "to_itf", checked)
        yield
