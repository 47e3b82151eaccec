"""Scaled masked softmax over the last dimension of attention scores [B, H, Sq, Sk], seen as
B * H * Sq rows of Sk elements: row r is query r % Sq of batch r // (H * Sq).

Key j is visible to a row when key_padding_mask[b, j] is True (no mask: every key) and, under
causal, j <= query + Sk - Sq (bottom-right aligned; derived from the row index, never read). A row
with no visible key is all zeros, and so is its gradient. Statistics are float32; logits are kept in
the log2 domain (scale * log2(e) * x) so that exp2 does the exponentials. Hidden keys are not read.

Forward and backward, each in two shapes: rows up to MAX_ROW_BLOCK held in registers by one program
(one read, one write), longer rows walked in LONG_ROW_CHUNK chunks (an online max/sum pass, then a
pass that re-reads and writes). Backward: dx = scale * y * (dy - sum(dy * y)), from y and dy alone.

The cuda backend's attention path fuses its dropout into its softmax kernel (attention's keep
mask, csrc/softmax_rows.cuh); this op has no dropout.
"""

import triton
import triton.language as tl

from .row_settings import row_block_settings

LOG2E = 1.4426950408889634
# Rows this long or shorter are held in registers; the compile tier checks they do not spill.
MAX_ROW_BLOCK = 8192
LONG_ROW_CHUNK = 2048
LONG_ROW_WARPS = 8


def launch_settings(n_cols):
    """(BLOCK_N, num_warps, long_row) for rows of n_cols elements, forward and backward alike."""
    if n_cols > MAX_ROW_BLOCK:
        return LONG_ROW_CHUNK, LONG_ROW_WARPS, True
    block, num_warps = row_block_settings(n_cols)
    return block, num_warps, False


@triton.jit
def _safe_shift(row_max):
    """The shift subtracted before exp2: the max, or 0 where nothing is visible (exp2(-inf) = 0
    then, instead of exp2(-inf - -inf) = NaN)."""
    return tl.where(row_max == float("-inf"), 0.0, row_max)


@triton.jit
def _safe_reciprocal(total):
    """1 / total, or 0 for a row with nothing visible (its output is zeros); never divides by 0."""
    visible = total > 0.0
    return tl.where(visible, 1.0 / tl.where(visible, total, 1.0), 0.0)


@triton.jit
def _log2_logits(X, MASK, row, cols, n_cols, stride_x_row, stride_mask_row, rows_per_batch,
                 queries, scale_log2, HAS_MASK: tl.constexpr, CAUSAL: tl.constexpr):
    """scale * log2(e) * x at the visible keys of `cols`, -inf elsewhere."""
    visible = cols < n_cols
    if CAUSAL:
        visible &= cols <= row % queries + n_cols - queries
    if HAS_MASK:
        batch = row // rows_per_batch
        visible &= tl.load(MASK + batch * stride_mask_row + cols, mask=visible, other=0) != 0
    x = tl.load(X + row * stride_x_row + cols, mask=visible, other=0.0).to(tl.float32)
    return tl.where(visible, x * scale_log2, float("-inf"))


@triton.jit
def masked_softmax_fwd_kernel(
    X, MASK, Y, stride_x_row, stride_mask_row, stride_y_row,
    n_cols, rows_per_batch, queries, scale_log2,
    HAS_MASK: tl.constexpr, CAUSAL: tl.constexpr, BLOCK_N: tl.constexpr,
):
    """One row per program, held in registers (n_cols <= BLOCK_N)."""
    row = tl.program_id(0).to(tl.int64)
    cols = tl.arange(0, BLOCK_N)
    logits = _log2_logits(X, MASK, row, cols, n_cols, stride_x_row, stride_mask_row,
                          rows_per_batch, queries, scale_log2, HAS_MASK, CAUSAL)
    weights = tl.exp2(logits - _safe_shift(tl.max(logits, axis=0)))
    y = weights * _safe_reciprocal(tl.sum(weights, axis=0))
    tl.store(Y + row * stride_y_row + cols, y.to(Y.dtype.element_ty), mask=cols < n_cols)


@triton.jit
def masked_softmax_fwd_long_row_kernel(
    X, MASK, Y, stride_x_row, stride_mask_row, stride_y_row,
    n_cols, rows_per_batch, queries, scale_log2,
    HAS_MASK: tl.constexpr, CAUSAL: tl.constexpr, BLOCK_N: tl.constexpr,
):
    """One row per program, walked in BLOCK_N chunks: per-lane running max and sum, then a pass
    that re-reads the row and writes it."""
    row = tl.program_id(0).to(tl.int64)
    lane_max = tl.full([BLOCK_N], float("-inf"), tl.float32)
    lane_sum = tl.zeros([BLOCK_N], dtype=tl.float32)
    for start in range(0, n_cols, BLOCK_N):
        logits = _log2_logits(X, MASK, row, start + tl.arange(0, BLOCK_N), n_cols, stride_x_row,
                              stride_mask_row, rows_per_batch, queries, scale_log2, HAS_MASK, CAUSAL)
        new_max = tl.maximum(lane_max, logits)
        shift = _safe_shift(new_max)
        lane_sum = lane_sum * tl.exp2(lane_max - shift) + tl.exp2(logits - shift)
        lane_max = new_max
    shift = _safe_shift(tl.max(lane_max, axis=0))
    inv_sum = _safe_reciprocal(tl.sum(lane_sum * tl.exp2(lane_max - shift), axis=0))
    for start in range(0, n_cols, BLOCK_N):
        cols = start + tl.arange(0, BLOCK_N)
        logits = _log2_logits(X, MASK, row, cols, n_cols, stride_x_row, stride_mask_row,
                              rows_per_batch, queries, scale_log2, HAS_MASK, CAUSAL)
        y = tl.exp2(logits - shift) * inv_sum
        tl.store(Y + row * stride_y_row + cols, y.to(Y.dtype.element_ty), mask=cols < n_cols)


@triton.jit
def _load_row(PTR, row, stride_row, cols, n_cols):
    return tl.load(PTR + row * stride_row + cols, mask=cols < n_cols, other=0.0).to(tl.float32)


@triton.jit
def masked_softmax_bwd_kernel(
    DY, Y, DX, stride_dy_row, stride_y_row, stride_dx_row, n_cols, scale,
    BLOCK_N: tl.constexpr,
):
    """One row per program, held in registers (n_cols <= BLOCK_N)."""
    row = tl.program_id(0).to(tl.int64)
    cols = tl.arange(0, BLOCK_N)
    y = _load_row(Y, row, stride_y_row, cols, n_cols)
    dy = _load_row(DY, row, stride_dy_row, cols, n_cols)
    dx = scale * y * (dy - tl.sum(y * dy, axis=0))
    tl.store(DX + row * stride_dx_row + cols, dx.to(DX.dtype.element_ty), mask=cols < n_cols)


@triton.jit
def masked_softmax_bwd_long_row_kernel(
    DY, Y, DX, stride_dy_row, stride_y_row, stride_dx_row, n_cols, scale,
    BLOCK_N: tl.constexpr,
):
    """One row per program in BLOCK_N chunks: sum(y * dy), then a pass that writes dx."""
    row = tl.program_id(0).to(tl.int64)
    lane_dot = tl.zeros([BLOCK_N], dtype=tl.float32)
    for start in range(0, n_cols, BLOCK_N):
        cols = start + tl.arange(0, BLOCK_N)
        y = _load_row(Y, row, stride_y_row, cols, n_cols)
        lane_dot += y * _load_row(DY, row, stride_dy_row, cols, n_cols)
    dot = tl.sum(lane_dot, axis=0)
    for start in range(0, n_cols, BLOCK_N):
        cols = start + tl.arange(0, BLOCK_N)
        y = _load_row(Y, row, stride_y_row, cols, n_cols)
        dx = scale * y * (_load_row(DY, row, stride_dy_row, cols, n_cols) - dot)
        tl.store(DX + row * stride_dx_row + cols, dx.to(DX.dtype.element_ty), mask=cols < n_cols)
