def round_in_place(
    values: memoryview,
    zone_bits: int,
    margin_bits: int,
    follow_positions: memoryview,
    follow_bits: memoryview,
    /,
) -> tuple[bytes, bytes, int]: ...
def quantize_in_place(
    values: memoryview,
    gradient_bits: int,
    zone_bits: int,
    margin_bits: int,
    follow_positions: memoryview,
    follow_directions: memoryview,
    /,
) -> tuple[bytes, bytes, int]: ...
