"""One place that decides tile width and warps for kernels that keep a whole row in registers."""

from .host_math import next_power_of_2

# Widest row a row-in-registers kernel takes: a 32768-wide row spilled on sm_90 at 16 and 32 warps
# (ptxas STACK 1024 and 472 bytes); 16384 fits in 128 registers at 16 warps. The compile tier checks.
MAX_ROW_BLOCK = 16384


def row_block_settings(n_cols):
    """(BLOCK_N, num_warps) for one row of `n_cols` elements held by one program."""
    if n_cols < 1:
        raise ValueError(f"row length must be at least 1, got {n_cols}")
    block = next_power_of_2(n_cols)
    if block > MAX_ROW_BLOCK:
        raise ValueError(f"row length {n_cols} exceeds the fused kernels' limit of {MAX_ROW_BLOCK}")
    # About 8-16 fp32 values per thread and tensor keeps registers free of spills.
    if block <= 256:
        num_warps = 1
    elif block <= 1024:
        num_warps = 2 if block <= 512 else 4
    elif block <= 4096:
        num_warps = 8
    else:
        num_warps = 16
    return block, num_warps


# The backward keeps two more row-long float32 accumulators (dweight, dbias) live across its row
# loop: at 8192 it spilled on sm_80/sm_90 at every warp count tried (8, 16, 32), and at 4096 with
# 16 warps under triton 3.6 (fp32: 128 registers + 8 B stack; 8 warps: 184-212, no stack). Wider rows go
# to the column-blocked backward, which holds one WIDE_ROW_CHUNK-wide block of a row at a time.
MAX_BACKWARD_ROW_BLOCK = 4096
WIDE_ROW_CHUNK = 1024
WIDE_ROW_CHUNK_WARPS = 4


def backward_row_block_settings(n_cols):
    """(BLOCK_N, num_warps) for the single-pass backward, or None when the row is too wide for it."""
    settings = row_block_settings(n_cols)
    return settings if settings[0] <= MAX_BACKWARD_ROW_BLOCK else None
