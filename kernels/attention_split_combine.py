"""The combine step of split-key (flash-decoding) attention.

Each of `n_splits` programs of kernels.attention_fwd wrote, for every query row, a float32 output
normalised over its own keys (o_s) and the log-sum-exp of its scores (lse_s, -inf when the split saw
no key of that row). The full row is o = sum_s exp(lse_s - lse) o_s with lse = log sum_s exp(lse_s).
Rows are flat: row r of OUT (a contiguous [rows, HEAD_DIM]) pairs with LSE[r].

A program loads every split of its rows at once (a [BLOCK_SPLITS, BLOCK_ROWS, BLOCK_D] tile), so
the loads are all in flight together: the step waits out one memory latency, not one per split.
Combining runs where few rows exist (KV-cache generation at small batch), so a loop over the splits
with its loads one after another made it a chain of n_splits latencies in a handful of programs.
"""

import triton
import triton.language as tl


@triton.jit
def attention_split_combine_kernel(
    OUT_PARTIAL, LSE_PARTIAL, OUT, LSE, n_rows, n_splits,
    HEAD_DIM: tl.constexpr, BLOCK_SPLITS: tl.constexpr, BLOCK_ROWS: tl.constexpr,
    BLOCK_D: tl.constexpr,
):
    rows = tl.program_id(0).to(tl.int64) * BLOCK_ROWS + tl.arange(0, BLOCK_ROWS)
    splits = tl.arange(0, BLOCK_SPLITS).to(tl.int64)
    offs_d = tl.arange(0, BLOCK_D)
    in_rows = rows < n_rows
    in_splits = splits < n_splits

    lse = tl.load(LSE_PARTIAL + splits[:, None] * n_rows + rows[None, :],
                  mask=in_splits[:, None] & in_rows[None, :], other=float("-inf"))
    row_max = tl.max(lse, axis=0)
    shift = tl.where(row_max == float("-inf"), 0.0, row_max)
    weight = tl.exp(lse - shift[None, :])  # 0 for a split that saw no key of the row
    weight_sum = tl.sum(weight, axis=0)

    partial_rows = splits[:, None] * n_rows + rows[None, :]
    in_columns = offs_d < HEAD_DIM
    partial_mask = (in_splits[:, None] & in_rows[None, :])[:, :, None] & in_columns[None, None, :]
    partial = tl.load(OUT_PARTIAL + partial_rows[:, :, None] * HEAD_DIM + offs_d[None, None, :],
                      mask=partial_mask, other=0.0)
    acc = tl.sum(weight[:, :, None] * partial, axis=0)

    seen = weight_sum > 0.0
    safe_sum = tl.where(seen, weight_sum, 1.0)
    out_mask = in_rows[:, None] & in_columns[None, :]
    tl.store(OUT + rows[:, None] * HEAD_DIM + offs_d[None, :],
             (acc / safe_sum[:, None]).to(OUT.dtype.element_ty), mask=out_mask)
    tl.store(LSE + rows, tl.where(seen, shift + tl.log(safe_sum), float("-inf")), mask=in_rows)
