"""A constant printed anywhere (header, `pot models`, JSON) is read back by `--const` as the same value."""

from __future__ import annotations

import json
import re
from enum import Enum, IntEnum
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from model_checker.cli import parse_constants, resolve_model
from model_checker.constants import choices, coerce_constant, constant_json, format_constant, parse_constant
from model_checker.model import ConstantError
from pot.cli import main
from pot.registry import all_models

REGISTRY = all_models()


class Colour(IntEnum):
    RED = 0
    DARK_BLUE = 1


class Mode(Enum):
    FAST = "fast"
    SAFE = "safe"


scalars = st.one_of(
    st.integers(),
    st.booleans(),
    st.text(),
    st.sampled_from(Colour),
    st.sampled_from(Mode),
)
flat = st.one_of(
    scalars,
    st.frozensets(st.integers()),
    st.frozensets(st.text()),
    st.lists(st.integers()).map(tuple),
    st.lists(st.text()).map(tuple),
    st.lists(st.sampled_from(Colour)).map(tuple),
)
nested = st.recursive(flat, lambda inner: st.lists(inner, max_size=3).map(tuple), max_leaves=8)


@given(nested)
def test_the_text_of_any_constant_reads_back_as_that_constant(value: Any) -> None:
    again = coerce_constant(value, parse_constant(format_constant(value)))
    assert again == value and type(again) is type(value)


@given(nested)
def test_the_json_of_any_constant_reads_back_from_json_and_from_its_json_text(value: Any) -> None:
    document = json.dumps(constant_json(value), ensure_ascii=False)
    assert coerce_constant(value, json.loads(document)) == value
    assert coerce_constant(value, parse_constant(document)) == value


def test_the_spelling_of_common_constants() -> None:
    assert [format_constant(v) for v in (3, True, "none", "a b", "True", "3", Colour.DARK_BLUE)] == [
        "3",
        "True",
        "none",
        "'a b'",
        "'True'",
        "'3'",
        "dark_blue",
    ]
    assert format_constant(frozenset({10, 2})) == "{2, 10}" and format_constant(frozenset()) == "set()"
    assert format_constant((1,)) == "(1,)" and format_constant(("Tick", "Finalize")) == "('Tick', 'Finalize')"
    assert constant_json((frozenset({1, 0}), Colour.RED)) == [[0, 1], "red"]
    assert choices(Colour.RED) == ("red", "dark_blue") and choices(3) == ()


@pytest.mark.parametrize(
    ("default", "value", "expected"),
    [
        (3, "three", "expects int (default 3), got 'three'"),
        (3, True, "expects int (default 3), got True"),
        (True, 1, "expects a bool (True or False), got 1"),
        (frozenset({0}), 5, "expects a set such as {0}, got 5"),
        (frozenset({0}), ["a"], "expects a set such as {0}, got ['a']"),
        ((1, 2), {1, 2}, "expects a tuple such as (1, 2), got {1, 2}"),
        (Colour.RED, "green", "expects one of red | dark_blue, got 'green'"),
    ],
)
def test_a_value_of_the_wrong_kind_names_what_is_expected(default: Any, value: Any, expected: str) -> None:
    with pytest.raises(ValueError, match="^" + re.escape(expected)):
        coerce_constant(default, value)


def test_lenient_spellings_of_enumerated_and_set_constants() -> None:
    assert coerce_constant(Colour.RED, "Dark-Blue") is Colour.DARK_BLUE
    assert coerce_constant(frozenset({0}), {}) == frozenset()
    assert coerce_constant(frozenset({0}), [2, 1]) == frozenset({1, 2})
    assert coerce_constant(2.5, 2) == 2.0


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_every_constant_a_model_prints_is_accepted_back_by_const(name: str) -> None:
    model = REGISTRY[name].instantiate()
    assert set(model.constants) == set(REGISTRY[name].defaults)
    for constant, value in model.constants.items():
        for text in (format_constant(value), json.dumps(constant_json(value))):
            again = resolve_model(name, parse_constants([f"{constant}={text}"]), lambda: REGISTRY)
            assert again.constants == model.constants, (constant, text)


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_every_choice_of_an_enumerated_constant_is_accepted(name: str) -> None:
    spec = REGISTRY[name]
    model = spec.instantiate()
    for constant, default in spec.defaults.items():
        for choice in choices(default):
            try:
                chosen = spec.instantiate(parse_constants([f"{constant}={choice}"]))
            except ConstantError as error:  # a combination the model refuses, said in one line
                assert "\n" not in str(error)
                continue
            assert format_constant(chosen.constants[constant]) == choice
            assert {k: v for k, v in chosen.constants.items() if k != constant} == {
                k: v for k, v in model.constants.items() if k != constant
            }


def test_pot_models_prints_defaults_as_const_text_and_lists_choices(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    assert "byzantine={0} " in out and " bug=none " in out and "commit_needs_all_prepared=True" in out
    assert "bug: a planted protocol bug (spec.pbft.PbftBug), or none (the protocol); one of none | " in out
    assert "enter: fairness of Enter; one of strong | weak | none" in out
    assert main(["models", "--json"]) == 0
    listing = {entry["name"]: entry for entry in json.loads(capsys.readouterr().out)["models"]}
    assert listing["pbft"]["constants"]["byzantine"] == [0] and listing["pbft"]["constants"]["bug"] == "none"
    assert listing["pbft"]["choices"]["bug"][:2] == ["none", "commit_at_f_plus_1"]


def test_a_model_that_warns_about_its_constants_is_checked_and_says_so(
    capsys: pytest.CaptureFixture[str],
) -> None:
    argv = ["check", "pbft-tiny", "--const", "replicas=3", "--const", "faulty=2", "--max-states", "20"]
    assert main(argv) == 0
    header = capsys.readouterr().out.splitlines()[:3]
    assert header[0].startswith("Model pbft-tiny (replicas=3, faulty=2, byzantine={0}, ")
    assert header[1].startswith("Warning: replicas=3 < 3*faulty+1=7: PBFT assumes n >= 3f + 1")
    assert main([*argv, "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["verdict"] == "incomplete" and len(report["warnings"]) == 1
    assert main(["check", "pbft-tiny", "--max-states", "20", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["warnings"] == []
