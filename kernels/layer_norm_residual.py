"""LayerNorm fused with dropout and the residual add: y = LN(dropout(x) + residual).

Forward: one program per row, the row held in registers, statistics in float32. The pre-norm sum h
is rounded to the input dtype before its statistics are taken (as eager `x + r` would), and is
written out when the caller needs it (pre-LN blocks, or the backward). Rows wider than the
registers hold (kernels.row_settings) walk the row in chunks twice: the statistics (the chunks'
means and squared deviations merged as Chan et al. do), then the normalised output from h made
again (the same loads and dropout draws give the same h, bit for bit).

Backward: each program walks a contiguous range of rows, writes dh (and dx under dropout), and
keeps float32 partial sums of dweight and dbias in registers; the host sums the partials. Rows wider
than the backward's register budget (kernels.row_settings) take two kernels instead: per-row sums,
then a grid over (row group, column chunk).

Dropout: keep element (row, col) iff tl.rand(seed, row * n_cols + col) >= p, the same stream the
CUDA backend and fastattn.reference.dropout_keep_mask generate, so the backward (and other
backends) regenerate the identical mask.
"""

import os

import triton
import triton.language as tl

# Rows of the backward in flight a program (its row loop's pipeline depth). Two hold 24 KB of
# shared memory a program at the widest single-pass row (4096) with 8 warps, four programs an SM.
BACKWARD_ROW_STAGES = tl.constexpr(2)

if os.environ.get("TRITON_INTERPRET") == "1":
    @triton.jit
    def _rounded_mul(a, b):
        """a * b rounded to float32 (numpy never contracts it into an FMA)."""
        return a * b
else:
    @triton.jit
    def _rounded_mul(a, b):
        """a * b rounded to float32: PTX's mul.rn is never contracted into an FMA (a plain product
        feeding a subtraction is, and the compiler sees through tl.where), as CUDA's __fmul_rn."""
        return tl.inline_asm_elementwise("mul.rn.f32 $0, $1, $2;", "=f,f,f", [a, b],
                                         dtype=tl.float32, is_pure=True, pack=1)


@triton.jit
def _dropout(values, seed, offsets, dropout_p, dropout_scale):
    keep = tl.rand(seed, offsets) >= dropout_p
    return tl.where(keep, values * dropout_scale, 0.0)


@triton.jit
def _pre_norm(X, RESIDUAL, H_OUT, row, cols, in_row, stride_x_row, stride_res_row, stride_h_row,
              n_cols, dropout_p, dropout_scale, seed,
              HAS_RESIDUAL: tl.constexpr, HAS_DROPOUT: tl.constexpr, STORE_H: tl.constexpr):
    """h = dropout(x) + residual at (row, cols), rounded to the input dtype as eager's sum is,
    written to H_OUT under STORE_H; returned in float32."""
    h = tl.load(X + row * stride_x_row + cols, mask=in_row, other=0.0).to(tl.float32)
    if HAS_DROPOUT:
        h = _dropout(h, seed, row * n_cols + cols, dropout_p, dropout_scale)
    if HAS_RESIDUAL:
        h += tl.load(RESIDUAL + row * stride_res_row + cols, mask=in_row, other=0.0).to(tl.float32)
    h = h.to(X.dtype.element_ty)
    if STORE_H:
        tl.store(H_OUT + row * stride_h_row + cols, h, mask=in_row)
    return h.to(tl.float32)


@triton.jit
def _normalized(centered, rstd, WEIGHT, BIAS, cols, in_row):
    w = tl.load(WEIGHT + cols, mask=in_row, other=0.0).to(tl.float32)
    b = tl.load(BIAS + cols, mask=in_row, other=0.0).to(tl.float32)
    return centered * rstd * w + b


@triton.jit
def layer_norm_residual_fwd_kernel(
    X, RESIDUAL, WEIGHT, BIAS, Y, H_OUT, MEAN, RSTD,
    stride_x_row, stride_res_row, stride_y_row, stride_h_row,
    n_cols, eps, dropout_p, dropout_scale, seed,
    HAS_RESIDUAL: tl.constexpr, HAS_DROPOUT: tl.constexpr, STORE_H: tl.constexpr,
    BLOCK_N: tl.constexpr, CHUNKED: tl.constexpr,
):
    """One program per row: the whole row in one BLOCK_N block, or (CHUNKED, rows too wide for
    registers) BLOCK_N columns at a time, twice."""
    row = tl.program_id(0).to(tl.int64)
    if CHUNKED:
        seen = tl.zeros([], dtype=tl.float32)  # columns merged so far
        mean = tl.zeros([], dtype=tl.float32)
        squares = tl.zeros([], dtype=tl.float32)  # sum of squared deviations from the mean
        for start in range(0, n_cols, BLOCK_N):
            cols = start + tl.arange(0, BLOCK_N)
            in_row = cols < n_cols
            h = _pre_norm(X, RESIDUAL, H_OUT, row, cols, in_row, stride_x_row, stride_res_row,
                          stride_h_row, n_cols, dropout_p, dropout_scale, seed,
                          HAS_RESIDUAL, HAS_DROPOUT, STORE_H)
            count = tl.minimum(n_cols - start, BLOCK_N).to(tl.float32)
            chunk_mean = tl.sum(h, axis=0) / count
            deviation = tl.where(in_row, h - chunk_mean, 0.0)
            # Chan et al.'s merge of two parts' (count, mean, squares): exact in exact arithmetic,
            # and no cancellation of large sums in float32.
            total = seen + count
            delta = chunk_mean - mean
            mean += delta * (count / total)
            squares += tl.sum(deviation * deviation, axis=0) + delta * delta * (seen * count / total)
            seen = total
        rstd = 1.0 / tl.sqrt(squares / n_cols + eps)
        tl.store(MEAN + row, mean)
        tl.store(RSTD + row, rstd)
        for start in range(0, n_cols, BLOCK_N):
            cols = start + tl.arange(0, BLOCK_N)
            in_row = cols < n_cols
            # h again, bit for bit (the same loads and dropout draws); stored in the first pass.
            h = _pre_norm(X, RESIDUAL, H_OUT, row, cols, in_row, stride_x_row, stride_res_row,
                          stride_h_row, n_cols, dropout_p, dropout_scale, seed,
                          HAS_RESIDUAL, HAS_DROPOUT, False)
            centered = tl.where(in_row, h - mean, 0.0)
            y = _normalized(centered, rstd, WEIGHT, BIAS, cols, in_row)
            tl.store(Y + row * stride_y_row + cols, y.to(Y.dtype.element_ty), mask=in_row)
    else:
        cols = tl.arange(0, BLOCK_N)
        in_row = cols < n_cols
        h = _pre_norm(X, RESIDUAL, H_OUT, row, cols, in_row, stride_x_row, stride_res_row,
                      stride_h_row, n_cols, dropout_p, dropout_scale, seed,
                      HAS_RESIDUAL, HAS_DROPOUT, STORE_H)
        mean = tl.sum(h, axis=0) / n_cols
        centered = tl.where(in_row, h - mean, 0.0)
        var = tl.sum(centered * centered, axis=0) / n_cols
        rstd = 1.0 / tl.sqrt(var + eps)
        tl.store(MEAN + row, mean)
        tl.store(RSTD + row, rstd)
        y = _normalized(centered, rstd, WEIGHT, BIAS, cols, in_row)
        tl.store(Y + row * stride_y_row + cols, y.to(Y.dtype.element_ty), mask=in_row)


@triton.jit
def layer_norm_residual_bwd_kernel(
    DY, DH_OUT, H, WEIGHT, MEAN, RSTD, ROW_SUMS, DH, DX, DW_PARTIAL, DB_PARTIAL,
    stride_dy_row, stride_dh_out_row, stride_h_row, stride_dh_row, stride_dx_row,
    n_rows, n_cols, rows_per_program, dropout_p, dropout_scale, seed,
    HAS_DH_OUT: tl.constexpr, HAS_DROPOUT: tl.constexpr, ROW_SUMS_GIVEN: tl.constexpr,
    BLOCK_N: tl.constexpr,
):
    """Program (i, j) walks row group i within column block j, writing dh (and dx under dropout)
    and float32 partial sums of dweight and dbias for its columns.

    Rows that fit in one block (grid (groups, 1), ROW_SUMS_GIVEN False) take the row sums
    mean(xhat * w * dy) and mean(w * dy) in place: h and dy are read once. Wider rows get them from
    layer_norm_residual_bwd_row_sums_kernel (ROW_SUMS_GIVEN True), at the cost of a second read.
    """
    pid_rows = tl.program_id(0)
    cols = tl.program_id(1) * BLOCK_N + tl.arange(0, BLOCK_N)
    in_row = cols < n_cols
    w = tl.load(WEIGHT + cols, mask=in_row, other=0.0).to(tl.float32)
    dw_acc = tl.zeros([BLOCK_N], dtype=tl.float32)
    db_acc = tl.zeros([BLOCK_N], dtype=tl.float32)
    # int64 bounds make the loop variable int64, so row offsets cannot overflow.
    row_start = pid_rows.to(tl.int64) * rows_per_program
    row_end = tl.minimum(row_start + rows_per_program, n_rows)
    # Pipelined: the next row's h, dy, dh_out, mean and rstd are copied into shared memory
    # (cp.async) while this row computes. A plain loop waited out a memory latency every row, with
    # only one row a program in flight (the grid keeps half occupancy: each program's float32 dW/dB
    # partials are traffic too).
    for row in tl.range(row_start, row_end, num_stages=BACKWARD_ROW_STAGES):
        h = tl.load(H + row * stride_h_row + cols, mask=in_row, other=0.0).to(tl.float32)
        dy = tl.load(DY + row * stride_dy_row + cols, mask=in_row, other=0.0).to(tl.float32)
        rstd = tl.load(RSTD + row)
        xhat = tl.where(in_row, (h - tl.load(MEAN + row)) * rstd, 0.0)
        # A rounded product: contracted into fma(w, dy, -(...)) below, the unrounded w * dy would
        # no longer cancel against the row mean of rounded products. At hidden = 1 (xhat = 0,
        # rstd = 1/sqrt(eps)) that left 1.8e-5 in dh where the exact answer, and eager's, is 0
        # (H200, float32, 2026-11-26).
        wdy = _rounded_mul(w, dy)
        if ROW_SUMS_GIVEN:
            c1 = tl.load(ROW_SUMS + 2 * row)
            c2 = tl.load(ROW_SUMS + 2 * row + 1)
        else:
            c1 = tl.sum(xhat * wdy, axis=0) / n_cols
            c2 = tl.sum(wdy, axis=0) / n_cols
        dh = (wdy - (xhat * c1 + c2)) * rstd
        if HAS_DH_OUT:
            dh += tl.load(DH_OUT + row * stride_dh_out_row + cols, mask=in_row, other=0.0).to(tl.float32)
        tl.store(DH + row * stride_dh_row + cols, dh.to(DH.dtype.element_ty), mask=in_row)
        if HAS_DROPOUT:
            dx = _dropout(dh, seed, row * n_cols + cols, dropout_p, dropout_scale)
            tl.store(DX + row * stride_dx_row + cols, dx.to(DX.dtype.element_ty), mask=in_row)
        dw_acc += dy * xhat
        db_acc += dy
    tl.store(DW_PARTIAL + pid_rows * n_cols + cols, dw_acc, mask=in_row)
    tl.store(DB_PARTIAL + pid_rows * n_cols + cols, db_acc, mask=in_row)


@triton.jit
def layer_norm_residual_bwd_row_sums_kernel(
    DY, H, WEIGHT, MEAN, RSTD, ROW_SUMS, stride_dy_row, stride_h_row, n_cols,
    BLOCK_C: tl.constexpr,
):
    """Rows too wide for registers, step 1: per row, mean(xhat * w * dy) and mean(w * dy)."""
    row = tl.program_id(0).to(tl.int64)
    mean = tl.load(MEAN + row)
    rstd = tl.load(RSTD + row)
    sum_xhat_wdy = tl.zeros([BLOCK_C], dtype=tl.float32)
    sum_wdy = tl.zeros([BLOCK_C], dtype=tl.float32)
    for start in range(0, n_cols, BLOCK_C):
        cols = start + tl.arange(0, BLOCK_C)
        in_row = cols < n_cols
        h = tl.load(H + row * stride_h_row + cols, mask=in_row, other=0.0).to(tl.float32)
        dy = tl.load(DY + row * stride_dy_row + cols, mask=in_row, other=0.0).to(tl.float32)
        w = tl.load(WEIGHT + cols, mask=in_row, other=0.0).to(tl.float32)
        wdy = _rounded_mul(w, dy)  # rounded, as in the kernel above
        sum_xhat_wdy += tl.where(in_row, (h - mean) * rstd, 0.0) * wdy
        sum_wdy += wdy
    tl.store(ROW_SUMS + 2 * row, tl.sum(sum_xhat_wdy, axis=0) / n_cols)
    tl.store(ROW_SUMS + 2 * row + 1, tl.sum(sum_wdy, axis=0) / n_cols)
