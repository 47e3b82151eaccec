"""The backward of the FFN's output dropout: dY' = dY * keep * scale on an [M, N] gradient.

The forward applies the mask in the down projection's epilogue (kernels/ffn_matmul.py); here the
same mask is regenerated from the seed: element (row, col) kept iff tl.rand(seed, row * N + col) >= p.
"""

import triton
import triton.language as tl

from .layer_norm_residual import _dropout

BLOCK_M = 16
BLOCK_N = 256
NUM_WARPS = 4


@triton.jit
def ffn_dropout_bwd_kernel(
    DY, DY_DROPPED, M, N, stride_dy_m, stride_out_m, dropout_p, dropout_scale, seed,
    BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr,
):
    rows = tl.program_id(0).to(tl.int64) * BLOCK_M + tl.arange(0, BLOCK_M)
    cols = tl.program_id(1) * BLOCK_N + tl.arange(0, BLOCK_N)
    in_tile = (rows < M)[:, None] & (cols < N)[None, :]
    dy = tl.load(DY + rows[:, None] * stride_dy_m + cols[None, :], mask=in_tile, other=0.0)
    dy = _dropout(dy.to(tl.float32), seed, rows[:, None] * N + cols[None, :], dropout_p, dropout_scale)
    tl.store(DY_DROPPED + rows[:, None] * stride_out_m + cols[None, :],
             dy.to(DY_DROPPED.dtype.element_ty), mask=in_tile)
