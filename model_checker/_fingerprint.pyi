from collections.abc import Callable, Iterable
from typing import Any

def fingerprint(value: Any, /) -> int: ...
def fingerprints(values: Iterable[Any], count: int, /) -> bytearray: ...
def set_helpers(
    record_layout: Callable[[type], tuple[int, tuple[str, ...]] | None],
    big_int_bytes: Callable[[int], bytes],
    /,
) -> None: ...
