"""``pot check --config run.toml``: a run's settings kept in a file beside the spec, as TLC users keep a .cfg.

::

    model = "pbft"
    invariants = ["Agreement"]
    properties = []
    max_states = 200000
    deadlock = false

    [constants]
    bug = "commit_at_f_plus_1"
    byzantine = [0]

Each key stands for the ``pot check`` option of the same name (``deadlock =
false`` for ``--no-deadlock``, ``continue = true`` for ``--continue``); an
option given on the command line wins over the file, and ``--const`` over
``[constants]`` name by name. Constants are plain TOML values, coerced to each
constant's type as ``--const`` values are (``model_checker.constants``).
``trace_out`` is relative to the file's folder.
"""

from __future__ import annotations

import argparse
import json
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any


class RunConfigError(Exception):
    """A run configuration that cannot be used: one line, naming the file and what to fix."""


_KINDS: Mapping[type, str] = {
    int: "an integer",
    float: "a number",
    bool: "true or false",
    str: "a string",
    list: "a list of strings",
    dict: "a table",
}

KEYS: Mapping[str, type] = {
    "model": str,
    "constants": dict,
    "invariants": list,
    "properties": list,
    "max_depth": int,
    "max_states": int,
    "workers": int,
    "ray": str,
    "memory": float,
    "checkpoint": str,
    "resume": str,
    "deadlock": bool,
    "liveness": bool,
    "simulate": int,
    "depth": int,
    "seed": int,
    "trace_out": str,
    "continue": bool,
}
"""Every key a run configuration may hold, with the TOML type its value must have."""

_RENAMED: Mapping[str, str] = {"invariants": "invariant", "properties": "property", "continue": "keep_going"}
"""Keys whose option attribute has another name (argparse's ``dest``)."""

_NEGATED: Mapping[str, str] = {"deadlock": "no_deadlock", "liveness": "no_liveness"}
"""Keys that say what the ``--no-...`` flags say the opposite of."""


def load_run_config(path: Path) -> dict[str, Any]:
    """The file's settings, every key known and every value of its type."""
    try:
        text = path.read_bytes().decode("utf-8")
    except FileNotFoundError:
        raise RunConfigError(f"{path}: no such file") from None
    except UnicodeDecodeError as error:
        raise RunConfigError(f"{path}: not UTF-8 text (byte {error.start})") from None
    except OSError as error:
        raise RunConfigError(f"{path}: cannot read ({error.strerror})") from None
    try:
        settings = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise RunConfigError(f"{path}: not valid TOML: {error}") from None
    for key, value in settings.items():
        if key not in KEYS:
            raise RunConfigError(f"{path}: unknown key {key!r} (known: {', '.join(KEYS)})")
        if not _is_kind(value, KEYS[key]):
            shown = json.dumps(value, default=str)
            raise RunConfigError(f"{path}: {key} must be {_KINDS[KEYS[key]]}, got {shown}")
    return settings


def apply_run_config(args: argparse.Namespace, path: Path) -> dict[str, Any]:
    """Set each option the command line left unset (None) from the file at ``path``; returns its constants."""
    settings = load_run_config(path)
    for key, value in settings.items():
        if key == "constants":
            continue
        if key in _NEGATED:
            attribute, value = _NEGATED[key], not value
        else:
            attribute = _RENAMED.get(key, key)
        if key in ("trace_out", "checkpoint", "resume"):
            value = str(path.parent / value)
        if getattr(args, attribute) is None:
            setattr(args, attribute, value)
    return dict(settings.get("constants", {}))


def _is_kind(value: Any, kind: type) -> bool:
    if kind is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if kind is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if kind is list:
        return isinstance(value, list) and all(isinstance(item, str) for item in value)
    return isinstance(value, kind)
