"""gelu(x + bias) over the last dimension, and its backward, on [rows, n_cols] matrices.

"none" is the exact erf GELU (BERT), "tanh" GPT2's gelu_new. Math is float32 and x + bias is not
rounded before the activation. Both kernels work on BLOCK_M x BLOCK_N tiles with the bias chunk
loaded once per program. The backward recomputes the activation's slope from x and bias (the inputs
are saved, not the output); each program walks a range of rows of one column tile and writes its
float32 column sums of dx as one row of partials, which the host sums: a deterministic bias gradient.
"""

import triton
import triton.language as tl
from .host_math import next_power_of_2

# About this many elements per tile: 16 float32 per thread at 8 warps. (At 4 warps the backward
# spilled on sm_80/sm_90: erf and the float32 column sums keep several values per element live.)
TILE_ELEMENTS = 4096
MAX_BLOCK_N = 1024
MIN_BLOCK_N = 16
NUM_WARPS = 8


def tile_settings(n_cols):
    """(BLOCK_M, BLOCK_N, num_warps) for rows of n_cols elements."""
    block_n = min(max(next_power_of_2(n_cols), MIN_BLOCK_N), MAX_BLOCK_N)
    return TILE_ELEMENTS // block_n, block_n, NUM_WARPS


# The constants are literals inside the jit helpers: a plain global is rejected by the compiler,
# and a tl.constexpr global times a tensor breaks the interpreter (it returns a constexpr).


@triton.jit
def _normal_cdf(z):
    """Phi(z) = 0.5 (1 + erf(z / sqrt 2))."""
    return 0.5 * (1.0 + tl.erf(z * 0.7071067811865476))


@triton.jit
def _normal_pdf(z):
    """phi(z) = exp(-z^2 / 2) / sqrt(2 pi)."""
    return 0.3989422804014327 * tl.exp(-0.5 * z * z)


@triton.jit
def _gauss(z):
    """exp(-z^2 / 2), through exp2 (-0.5 log2 e folded into one constant)."""
    return tl.exp2(z * (z * -0.7213475204444817))


@triton.jit
def _normal_cdf_from_gauss(z, g):
    """Phi(z) given g = exp(-z^2 / 2), for 16-bit outputs: csrc/gelu_math.cuh's erfc form
    (Abramowitz and Stegun 7.1.26, within 1.5e-7 of erf; the constant 0.2316... is its p / sqrt 2),
    about 10 instructions where tl.erf's two polynomial ranges take about 25, and its exponential
    is the normal density's too. Phi(-|z|) directly, so the negative tail does not cancel."""
    t = 1.0 / (1.0 + 0.23164188826636045 * tl.abs(z))
    poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027
                                                                           + t * 1.061405429))))
    lower_tail = 0.5 * poly * g
    return tl.where(z < 0.0, lower_tail, 1.0 - lower_tail)


@triton.jit
def _tanh_form(z):
    """(tanh(u), du/dz) for GPT2's u = sqrt(2 / pi) (z + 0.044715 z^3), tanh from exp(-2|u|):
    no overflow at any u (Triton 3.6 has no tanh)."""
    u = 0.7978845608028654 * (z + 0.044715 * z * z * z)
    e = tl.exp(-2.0 * tl.abs(u))
    t = (1.0 - e) / (1.0 + e)
    return tl.where(u < 0.0, -t, t), 0.7978845608028654 * (1.0 + 0.134145 * z * z)


# EXACT_ERF: tl.erf for float32 outputs (the accuracy path), the erfc form for 16-bit ones (whose
# rounding, 2^-11 or 2^-8 relative, is far above its error). Callers pass
# `OUT.dtype.element_ty == tl.float32` of the tensor they write.
@triton.jit
def _gelu(z, TANH: tl.constexpr, EXACT_ERF: tl.constexpr):
    if TANH:
        t, _ = _tanh_form(z)
        return 0.5 * z * (1.0 + t)
    elif EXACT_ERF:
        return z * _normal_cdf(z)
    else:
        return z * _normal_cdf_from_gauss(z, _gauss(z))


@triton.jit
def _gelu_grad(z, TANH: tl.constexpr, EXACT_ERF: tl.constexpr):
    if TANH:
        t, du_dz = _tanh_form(z)
        return 0.5 * (1.0 + t) + 0.5 * z * (1.0 - t * t) * du_dz
    elif EXACT_ERF:
        return _normal_cdf(z) + z * _normal_pdf(z)
    else:
        g = _gauss(z)
        return _normal_cdf_from_gauss(z, g) + 0.3989422804014327 * z * g


@triton.jit
def bias_gelu_fwd_kernel(
    X, BIAS, OUT, stride_x_row, stride_out_row, n_rows, n_cols,
    TANH: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr,
):
    """Program (i, j) writes the tile of rows block i, columns block j."""
    rows = tl.program_id(0).to(tl.int64) * BLOCK_M + tl.arange(0, BLOCK_M)
    cols = tl.program_id(1) * BLOCK_N + tl.arange(0, BLOCK_N)
    in_cols = cols < n_cols
    in_tile = (rows < n_rows)[:, None] & in_cols[None, :]
    bias = tl.load(BIAS + cols, mask=in_cols, other=0.0).to(tl.float32)
    x = tl.load(X + rows[:, None] * stride_x_row + cols[None, :], mask=in_tile, other=0.0)
    out = _gelu(x.to(tl.float32) + bias[None, :], TANH, OUT.dtype.element_ty == tl.float32)
    tl.store(OUT + rows[:, None] * stride_out_row + cols[None, :], out.to(OUT.dtype.element_ty),
             mask=in_tile)


@triton.jit
def bias_gelu_bwd_kernel(
    DY, X, BIAS, DX, DBIAS_PARTIAL, stride_dy_row, stride_x_row, stride_dx_row,
    n_rows, n_cols, rows_per_program,
    TANH: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr,
):
    """Program (g, j) walks row group g (rows_per_program rows, a multiple of BLOCK_M) in column
    block j, writes dx there and its column sums into DBIAS_PARTIAL[g, columns of j]."""
    group = tl.program_id(0)
    cols = tl.program_id(1) * BLOCK_N + tl.arange(0, BLOCK_N)
    in_cols = cols < n_cols
    bias = tl.load(BIAS + cols, mask=in_cols, other=0.0).to(tl.float32)
    sums = tl.zeros([BLOCK_M, BLOCK_N], dtype=tl.float32)
    # int64 bounds make the loop variable int64, so row offsets cannot overflow.
    row_start = group.to(tl.int64) * rows_per_program
    row_end = tl.minimum(row_start + rows_per_program, n_rows)
    # Pipelined (cp.async): the next row block's dy and x load while this one computes. Register
    # pressure allows two programs an SM (8 warps each): one block in flight each was ~32 KB an SM.
    for start in tl.range(row_start, row_end, BLOCK_M, num_stages=2):
        rows = start + tl.arange(0, BLOCK_M)
        in_tile = (rows < row_end)[:, None] & in_cols[None, :]
        dy = tl.load(DY + rows[:, None] * stride_dy_row + cols[None, :], mask=in_tile, other=0.0)
        x = tl.load(X + rows[:, None] * stride_x_row + cols[None, :], mask=in_tile, other=0.0)
        # tl.erf here in every dtype: with the erfc form ptxas capped this loop at 80 registers (3
        # blocks an SM) and spilled a column sum on sm_80 (128x32, 64x64, 32x128 and 4x1024 tiles,
        # triton 3.6 and 3.8). The FFN's GELU-gradient epilogue compiles spill-free with it.
        dx = dy.to(tl.float32) * _gelu_grad(x.to(tl.float32) + bias[None, :], TANH, True)
        tl.store(DX + rows[:, None] * stride_dx_row + cols[None, :], dx.to(DX.dtype.element_ty),
                 mask=in_tile)
        sums += dx  # zero outside the tile: dy loaded as 0 there
    tl.store(DBIAS_PARTIAL + group * n_cols + cols, tl.sum(sums, axis=0), mask=in_cols)
