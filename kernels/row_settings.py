"""One place that decides tile width and warps for kernels that keep a whole row in registers."""

from .host_math import next_power_of_2

# Widest row a row-in-registers kernel takes (the LayerNorm's; the masked softmax has its own);
# wider LayerNorm rows take the chunked kernels, forward and backward.
# 16384 filled the register file: at 16 warps the LayerNorm forward with every feature on, the one
# flag variant the compile tier built until 2026-12-08, fitted in 128 registers, and others
# spilled 16-72 B (no dropout, fp32, triton 3.8; 40 B bf16 under 3.6), as 32 warps did (24-152 B).
# A 32768-wide row spilled 472-1024 B. The compile tier builds every flag variant.
MAX_ROW_BLOCK = 8192


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
        # 8192: at 16 warps ptxas kept 64 registers a thread (two blocks an SM) and the LayerNorm
        # forward without a residual but with dropout spilled 8 B (triton 3.8, bf16, sm_90); 32
        # warps take 52-63 in every variant (and the masked softmax's 8192-wide rows): one
        # 1024-thread block an SM, as many warps an SM as two blocks of 16.
        num_warps = 32
    return block, num_warps


def forward_row_block_settings(n_cols):
    """(BLOCK_N, num_warps) for the LayerNorm forward that holds a row in registers, or None when the
    row is too wide for it (the forward then walks the row in WIDE_ROW_CHUNK chunks, twice)."""
    return row_block_settings(n_cols) if n_cols <= MAX_ROW_BLOCK else None


# The backward keeps two more row-long float32 accumulators (dweight, dbias) live across its row
# loop: at 8192 it spilled on sm_80/sm_90 at every warp count tried (8, 16, 32), and at 4096 with
# 16 warps under triton 3.6 (fp32: 128 registers + 8 B stack; 8 warps: 184-212, no stack). Wider rows go
# to the column-blocked backward, which holds one WIDE_ROW_CHUNK-wide block of a row at a time.
MAX_BACKWARD_ROW_BLOCK = 4096
WIDE_ROW_CHUNK = 1024
WIDE_ROW_CHUNK_WARPS = 4


def backward_row_block_settings(n_cols):
    """(BLOCK_N, num_warps) for the single-pass backward, or None when the row is too wide for it."""
    if n_cols > MAX_BACKWARD_ROW_BLOCK:
        return None
    return row_block_settings(n_cols)
