"""The GEMM of the fused feed-forward network, C = A @ B, with the FFN's epilogues.

One kernel serves all six GEMMs of fastattn.ffn (forward: up and down projection; backward: dA, dW2,
dW1, dX). A and B are read through their strides, so nn.Linear weights [out, in] and the transposed
operands of the weight gradients are used in place, never copied. Epilogues, chosen by constexpr
flags, act on the float32 accumulator tile before its only write:

- up projection   (HAS_BIAS, APPLY_GELU): H = gelu(acc + b1) from the float32 sum; with STORE_PRE
  also PRE = acc + b1 rounded to the output dtype (the GELU's input, what the backward needs).
- down projection (HAS_BIAS, HAS_DROPOUT): Y = dropout(acc + b2).
- dA              (GELU_GRAD): dA = acc * gelu'(PRE), where acc = dY' @ W2, plus each program's
  float32 column sums of dA (the b1 gradient) into DBIAS_PARTIAL[pid_m, :] for the host to add up:
  deterministic, no atomics.

Dropout: output element (row, col) of the [M, N] result is kept iff tl.rand(seed, row * N + col) >= p,
the stream of fastattn.reference.dropout_keep_mask. The backward recomputes it (kernels/ffn_dropout.py).

Tiles: programs are ordered in groups of GROUP_M row blocks so that neighbouring programs share B
tiles in L2 (Triton tutorial 03). The inner loop masks a dimension only when it does not fill its
blocks (EVEN_M/N/K false). Masks, not wrapped (modulo) indices as in the tutorial: a modulo hides
the contiguity of a transposed operand (dY'^T, dA^T in the weight gradients) and the loads go scalar.
"""

import triton
import triton.language as tl

from .bias_gelu import _gelu, _gelu_grad
from .layer_norm_residual import _dropout


@triton.jit
def grouped_tile(tile, M, N, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, GROUP_M: tl.constexpr):
    """(row block, column block) of output tile number `tile`, GROUP_M row blocks at a time."""
    blocks_m = tl.cdiv(M, BLOCK_M)
    blocks_n = tl.cdiv(N, BLOCK_N)
    tiles_per_group = GROUP_M * blocks_n
    group = tile // tiles_per_group
    first_m = group * GROUP_M
    group_rows = tl.minimum(blocks_m - first_m, GROUP_M)
    pid_m = first_m + (tile % tiles_per_group) % group_rows
    pid_n = (tile % tiles_per_group) // group_rows
    return pid_m, pid_n


@triton.jit
def store_with_epilogue(acc, pid_m, pid_n, M, N, BIAS, PRE, C, DBIAS_PARTIAL, stride_pre_m,
                        stride_cm, dropout_p, dropout_scale, seed,
                        HAS_BIAS: tl.constexpr, APPLY_GELU: tl.constexpr, STORE_PRE: tl.constexpr,
                        GELU_GRAD: tl.constexpr, TANH: tl.constexpr, HAS_DROPOUT: tl.constexpr,
                        BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr):
    """The FFN's epilogue on the float32 tile acc of output block (pid_m, pid_n), and its write."""
    rows = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)
    cols = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
    in_cols = cols < N
    in_tile = (rows < M)[:, None] & in_cols[None, :]
    if HAS_BIAS:
        acc += tl.load(BIAS + cols, mask=in_cols, other=0.0).to(tl.float32)[None, :]
    pre_ptrs = PRE + rows[:, None] * stride_pre_m + cols[None, :]
    if APPLY_GELU:
        if STORE_PRE:
            tl.store(pre_ptrs, acc.to(PRE.dtype.element_ty), mask=in_tile)
        out = _gelu(acc, TANH, C.dtype.element_ty == tl.float32)
    elif GELU_GRAD:
        pre = tl.load(pre_ptrs, mask=in_tile, other=0.0).to(tl.float32)
        out = acc * _gelu_grad(pre, TANH, C.dtype.element_ty == tl.float32)
        # Rows and columns past the edge (zero here) stay out of the sums all the same.
        column_sums = tl.sum(tl.where(in_tile, out, 0.0), axis=0)
        tl.store(DBIAS_PARTIAL + pid_m * N + cols, column_sums, mask=in_cols)
    else:
        out = acc
    if HAS_DROPOUT:
        out = _dropout(out, seed, rows[:, None] * N + cols[None, :], dropout_p, dropout_scale)
    tl.store(C + rows[:, None] * stride_cm + cols[None, :], out.to(C.dtype.element_ty), mask=in_tile)


@triton.jit
def ffn_matmul_kernel(
    A, B, BIAS, PRE, C, DBIAS_PARTIAL,
    M, N, K,
    stride_am, stride_ak, stride_bk, stride_bn, stride_pre_m, stride_cm,
    dropout_p, dropout_scale, seed,
    HAS_BIAS: tl.constexpr, APPLY_GELU: tl.constexpr, STORE_PRE: tl.constexpr,
    GELU_GRAD: tl.constexpr, TANH: tl.constexpr, HAS_DROPOUT: tl.constexpr,
    DOT_PRECISION: tl.constexpr, EVEN_M: tl.constexpr, EVEN_N: tl.constexpr, EVEN_K: tl.constexpr,
    BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr, GROUP_M: tl.constexpr,
):
    pid_m, pid_n = grouped_tile(tl.program_id(0), M, N, BLOCK_M, BLOCK_N, GROUP_M)
    rows = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)
    cols = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
    ks = tl.arange(0, BLOCK_K)
    # int32 offsets (int64 tiles of offsets cost registers the pipeline needs): the launcher sends
    # tensors of 2**31 elements or more elsewhere.
    a_ptrs = A + rows[:, None] * stride_am + ks[None, :] * stride_ak
    b_ptrs = B + ks[:, None] * stride_bk + cols[None, :] * stride_bn
    acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
    for k in range(0, tl.cdiv(K, BLOCK_K)):
        # Masks only where a dimension does not fill its blocks: on BERT/GPT2 shapes the loads are
        # unmasked, and masks that are constant along 16-element runs keep them vectorised.
        if EVEN_M and EVEN_K:
            a = tl.load(a_ptrs)
        else:
            a = tl.load(a_ptrs, mask=(rows < M)[:, None] & (ks[None, :] < K - k * BLOCK_K), other=0.0)
        if EVEN_N and EVEN_K:
            b = tl.load(b_ptrs)
        else:
            b = tl.load(b_ptrs, mask=(ks[:, None] < K - k * BLOCK_K) & (cols < N)[None, :], other=0.0)
        acc = tl.dot(a, b, acc, input_precision=DOT_PRECISION)
        a_ptrs += BLOCK_K * stride_ak
        b_ptrs += BLOCK_K * stride_bk

    store_with_epilogue(acc, pid_m, pid_n, M, N, BIAS, PRE, C, DBIAS_PARTIAL, stride_pre_m,
                        stride_cm, dropout_p, dropout_scale, seed, HAS_BIAS, APPLY_GELU, STORE_PRE,
                        GELU_GRAD, TANH, HAS_DROPOUT, BLOCK_M, BLOCK_N)
