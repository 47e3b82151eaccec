"""One place that decides tile width and warps for kernels that keep a whole row in registers."""

import triton

# Widest row a row-in-registers kernel takes. Wider rows would spill (the compile tier checks).
MAX_ROW_BLOCK = 65536


def row_block_settings(n_cols):
    """(BLOCK_N, num_warps) for one row of `n_cols` elements held by one program."""
    if n_cols < 1:
        raise ValueError(f"row length must be at least 1, got {n_cols}")
    block = triton.next_power_of_2(n_cols)
    if block > MAX_ROW_BLOCK:
        raise ValueError(f"row length {n_cols} exceeds the fused kernels' limit of {MAX_ROW_BLOCK}")
    # About 8-16 fp32 values per thread and tensor keeps registers free of spills.
    if block <= 256:
        num_warps = 1
    elif block <= 1024:
        num_warps = 2 if block <= 512 else 4
    elif block <= 4096:
        num_warps = 8
    elif block <= 16384:
        num_warps = 16
    else:
        num_warps = 32
    return block, num_warps
