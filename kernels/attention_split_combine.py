"""The combine step of split-key (flash-decoding) attention.

Each of `n_splits` programs of kernels.attention_fwd wrote, for every query row, a float32 output
normalised over its own keys (o_s) and the log-sum-exp of its scores (lse_s, -inf when the split saw
no key of that row). The full row is o = sum_s exp(lse_s - lse) o_s with lse = log sum_s exp(lse_s).
Rows are flat: row r of OUT (a contiguous [rows, head_dim]) pairs with LSE[r].
"""

import triton
import triton.language as tl


@triton.jit
def attention_split_combine_kernel(
    OUT_PARTIAL, LSE_PARTIAL, OUT, LSE, n_rows, n_splits, head_dim,
    BLOCK_ROWS: tl.constexpr, BLOCK_D: tl.constexpr,
):
    rows = tl.program_id(0).to(tl.int64) * BLOCK_ROWS + tl.arange(0, BLOCK_ROWS)
    offs_d = tl.arange(0, BLOCK_D)
    in_rows = rows < n_rows
    tile_mask = in_rows[:, None] & (offs_d[None, :] < head_dim)
    tile = rows[:, None] * head_dim + offs_d[None, :]
    acc = tl.zeros([BLOCK_ROWS, BLOCK_D], dtype=tl.float32)
    weight_sum = tl.zeros([BLOCK_ROWS], dtype=tl.float32)
    running_max = tl.full([BLOCK_ROWS], float("-inf"), dtype=tl.float32)
    for split in range(0, n_splits):
        lse = tl.load(LSE_PARTIAL + split * n_rows + rows, mask=in_rows, other=float("-inf"))
        new_max = tl.maximum(running_max, lse)
        shift = tl.where(new_max == float("-inf"), 0.0, new_max)
        rescale = tl.exp(running_max - shift)
        weight = tl.exp(lse - shift)
        partial = tl.load(OUT_PARTIAL + split * n_rows * head_dim + tile, mask=tile_mask, other=0.0)
        acc = acc * rescale[:, None] + weight[:, None] * partial
        weight_sum = weight_sum * rescale + weight
        running_max = new_max
    seen = weight_sum > 0.0
    safe_sum = tl.where(seen, weight_sum, 1.0)
    tl.store(OUT + tile, (acc / safe_sum[:, None]).to(OUT.dtype.element_ty), mask=tile_mask)
    lse_out = tl.where(seen, tl.where(running_max == float("-inf"), 0.0, running_max) + tl.log(safe_sum),
                       float("-inf"))
    tl.store(LSE + rows, lse_out, mask=in_rows)
