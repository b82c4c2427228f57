"""One spelling of a model constant, printed by headers and `pot models` and read back by ``--const``.

TLC users copy a constant from a report into a ``.cfg``; here a constant
printed anywhere is text ``--const NAME=TEXT`` accepts and gives back the same
value: ints and bools as Python literals, strings as bare words (quoted only
when a bare word would read as something else), enum members by lower-case
name, sets as ``{0, 1}`` (``set()`` when empty) and tuples as ``(1, 2)``.
JSON reports (and run configuration files) carry the same values as plain
JSON: enum names as strings, sets and tuples as arrays. ``coerce_constant``
turns what the command line or a file can express back into the type of the
model's default, so ``bug=commit_at_f_plus_1`` becomes the enum member.
"""

from __future__ import annotations

import ast
import enum
import json
from collections.abc import Iterable
from typing import Any

_SEQUENCES = (tuple, list)
_SETS = (set, frozenset)


def format_constant(value: Any) -> str:
    """``value`` as ``--const`` text: ``3``, ``True``, ``none``, ``{0, 1}``, ``(1, 2)``."""
    if isinstance(value, enum.Enum):
        return enum_name(value)
    if isinstance(value, str) and _is_bare_word(value):
        return value
    return _literal(value)


def parse_constant(text: str) -> Any:
    """The value of ``--const`` text: a Python literal, else JSON (``[true]``), else a bare word (a string).

    JSON is read so that a constant copied from a JSON report is ``--const``
    text too. Raises ``ValueError`` for text that is none of these (``(1,``, ``a b``).
    """
    text = text.strip()
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        pass
    try:
        return json.loads(text, parse_constant=_no_json_float_word)
    except (ValueError, RecursionError):
        if not text.replace("-", "_").isidentifier():
            raise ValueError(
                f"{text!r} is neither a literal (e.g. 3, True, {{0, 1}}, (1, 2)) nor a bare word"
            ) from None
        return text


def _no_json_float_word(word: str) -> Any:
    """JSON's ``NaN`` and ``Infinity`` stay bare words: no constant is a float of that kind."""
    raise ValueError(word)


def constant_json(value: Any) -> Any:
    """``value`` as plain JSON: enum members by name, sets (sorted) and tuples as arrays."""
    if isinstance(value, enum.Enum):
        return enum_name(value)
    if isinstance(value, _SETS):
        return [constant_json(item) for item in _sorted(value)]
    if isinstance(value, _SEQUENCES):
        return [constant_json(item) for item in value]
    if isinstance(value, (bool, int, float, str)) or value is None:
        return value
    return format_constant(value)


def enum_name(member: enum.Enum) -> str:
    """How a constant's enum member is spelled: its lower-case name."""
    return member.name.lower()


def choices(default: Any) -> tuple[str, ...]:
    """The spellings an enumerated constant accepts (its enum's members), or ``()`` if not an enum."""
    if isinstance(default, enum.Enum):
        return tuple(enum_name(member) for member in type(default))
    return ()


def coerce_constant(default: Any, value: Any) -> Any:
    """``value`` in the type of ``default``, or ``ValueError`` saying what is expected.

    Enum members come from their names (any case, ``-`` for ``_``), sets and
    tuples from any list, tuple or set (a set also from ``{}``, which Python
    reads as a dict), their elements coerced like the default's.
    """
    if isinstance(default, enum.Enum):
        return _coerce_enum(type(default), value)
    if isinstance(default, (bool, int, float, str)):
        if not _same_scalar_kind(default, value):
            raise ValueError(f"expects {_expected(default)}, got {value!r}")
        return float(value) if isinstance(default, float) else value
    if isinstance(default, _SETS):
        if value == {}:
            return type(default)()
        if not isinstance(value, (*_SETS, *_SEQUENCES)):
            raise ValueError(f"expects {_expected(default)}, got {value!r}")
        return type(default)(_coerce_items(default, value))
    if isinstance(default, tuple):
        if not isinstance(value, _SEQUENCES):
            raise ValueError(f"expects {_expected(default)}, got {value!r}")
        return tuple(_coerce_items(default, value))
    return value


def _coerce_enum(kind: type[enum.Enum], value: Any) -> enum.Enum:
    if isinstance(value, kind):
        return value
    if isinstance(value, str):
        wanted = value.strip().replace("-", "_").lower()
        for member in kind:
            if enum_name(member) == wanted:
                return member
    raise ValueError(f"expects one of {' | '.join(enum_name(m) for m in kind)}, got {value!r}")


def _same_scalar_kind(default: bool | int | float | str, value: Any) -> bool:
    """Bools only for bools, ints (not bools) for ints, ints or floats for floats, strings for strings."""
    if isinstance(default, bool) or isinstance(value, bool):
        return type(value) is type(default)
    if isinstance(default, float):
        return isinstance(value, (int, float))
    return isinstance(value, type(default))


def _coerce_items(default: Iterable[Any], values: Iterable[Any]) -> list[Any]:
    """Each element coerced like the default's element at its position, else like their common type."""
    samples, items = list(default), list(values)
    if isinstance(default, tuple) and len(samples) == len(items):
        prototypes = samples
    elif samples and all(type(sample) is type(samples[0]) for sample in samples):
        prototypes = [samples[0]] * len(items)
    else:
        return items
    try:
        return [coerce_constant(prototype, item) for prototype, item in zip(prototypes, items, strict=True)]
    except ValueError:
        raise ValueError(f"expects {_expected(default)}, got {values!r}") from None


def _expected(default: Any) -> str:
    if isinstance(default, bool):
        return "a bool (True or False)"
    if isinstance(default, _SETS):
        return f"a set such as {format_constant(default)}" if default else "a set such as {0, 1}"
    if isinstance(default, tuple):
        return f"a tuple such as {format_constant(default)}" if default else "a tuple such as (1, 2)"
    return f"{type(default).__name__} (default {format_constant(default)})"


def _literal(value: Any) -> str:
    """Text ``ast.literal_eval`` reads back as ``value`` (enum members as their quoted names)."""
    if isinstance(value, enum.Enum):
        return repr(enum_name(value))
    if isinstance(value, _SETS):
        return "{" + ", ".join(_literal(item) for item in _sorted(value)) + "}" if value else "set()"
    if isinstance(value, tuple):
        items = [_literal(item) for item in value]
        return f"({items[0]},)" if len(items) == 1 else f"({', '.join(items)})"
    if isinstance(value, list):
        return f"[{', '.join(_literal(item) for item in value)}]"
    return repr(value)


def _is_bare_word(text: str) -> bool:
    """Whether ``parse_constant`` reads ``text`` back, unquoted, as this very string."""
    try:
        return bool(parse_constant(text) == text)
    except ValueError:
        return False


def _sorted(items: Iterable[Any]) -> list[Any]:
    """Set elements in a stable order: by value when comparable, else by their text."""
    try:
        return sorted(items)
    except TypeError:
        return sorted(items, key=format_constant)
