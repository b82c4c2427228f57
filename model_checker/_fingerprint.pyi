from collections.abc import Callable
from typing import Any

def fingerprint(value: Any, /) -> int: ...
def set_helpers(
    record_layout: Callable[[type], tuple[int, tuple[str, ...]] | None],
    big_int_bytes: Callable[[int], bytes],
    /,
) -> None: ...
