"""Host side of the Triton LayerNorm + residual kernels: grids, output buffers, the dW/dB sum."""

import torch

from .. import _alloc
from .._rng import dropout_scale
from ..kernels.layer_norm_residual import (
    layer_norm_residual_bwd_kernel,
    layer_norm_residual_bwd_row_sums_kernel,
    layer_norm_residual_fwd_kernel,
)
from ..kernels.row_settings import (
    WIDE_ROW_CHUNK,
    WIDE_ROW_CHUNK_WARPS,
    backward_row_block_settings,
    forward_row_block_settings,
)
from ._device import backward_program_count


def layer_norm_residual_fwd(x, residual, weight, bias, eps, dropout_p, seed, store_h):
    n_rows, n_cols = x.shape
    y = _alloc.empty_like(x)
    h = _alloc.empty_like(x) if store_h else x.new_empty(0)
    mean = _alloc.empty((n_rows,), x, torch.float32)
    rstd = _alloc.empty_like(mean)
    if n_rows == 0:
        return y, h, mean, rstd
    res = residual if residual is not None else x
    h_arg = h if store_h else y
    settings = forward_row_block_settings(n_cols)
    chunked = settings is None  # too wide for registers: two passes over chunks of the row
    block, num_warps = (WIDE_ROW_CHUNK, WIDE_ROW_CHUNK_WARPS) if chunked else settings
    layer_norm_residual_fwd_kernel[(n_rows,)](
        x, res, weight, bias, y, h_arg, mean, rstd,
        x.stride(0), res.stride(0), y.stride(0), h_arg.stride(0),
        n_cols, eps, dropout_p, dropout_scale(dropout_p), seed if seed is not None else 0,
        HAS_RESIDUAL=residual is not None, HAS_DROPOUT=seed is not None, STORE_H=store_h,
        BLOCK_N=block, CHUNKED=chunked, num_warps=num_warps,
    )
    return y, h, mean, rstd


def layer_norm_residual_bwd(dy, dh_out, h, weight, mean, rstd, dropout_p, seed):
    n_rows, n_cols = h.shape
    dh = _alloc.empty_like(h)
    dx = _alloc.empty_like(h) if seed is not None else h.new_empty(0)
    if n_rows == 0:
        return dh, dx, torch.zeros_like(weight), torch.zeros_like(weight)
    dh_out_arg = dh_out if dh_out is not None else dy
    dx_arg = dx if seed is not None else dh
    settings = backward_row_block_settings(n_cols)
    if settings is not None:
        block, num_warps = settings
        row_sums = None
    else:
        # Too wide for one block: the row sums first, then column blocks of WIDE_ROW_CHUNK.
        block, num_warps = WIDE_ROW_CHUNK, WIDE_ROW_CHUNK_WARPS
        row_sums = _alloc.empty((n_rows, 2), h, torch.float32)
        layer_norm_residual_bwd_row_sums_kernel[(n_rows,)](
            dy, h, weight, mean, rstd, row_sums, dy.stride(0), h.stride(0), n_cols,
            BLOCK_C=block, num_warps=num_warps,
        )
    column_blocks = -(-n_cols // block)
    row_groups = max(1, backward_program_count(h.device, n_rows, num_warps) // column_blocks)
    # dW and dB partial sums in one buffer: one reduction and one cast for both (fewer launches).
    partials = _alloc.empty((2, row_groups, n_cols), h, torch.float32)
    dw_partial, db_partial = partials[0], partials[1]
    layer_norm_residual_bwd_kernel[(row_groups, column_blocks)](
        dy, dh_out_arg, h, weight, mean, rstd, row_sums if row_sums is not None else mean,
        dh, dx_arg, dw_partial, db_partial,
        dy.stride(0), dh_out_arg.stride(0), h.stride(0), dh.stride(0), dx_arg.stride(0),
        n_rows, n_cols, -(-n_rows // row_groups),
        dropout_p, dropout_scale(dropout_p), seed if seed is not None else 0,
        HAS_DH_OUT=dh_out is not None, HAS_DROPOUT=seed is not None,
        ROW_SUMS_GIVEN=row_sums is not None, BLOCK_N=block, num_warps=num_warps,
    )
    dweight, dbias = partials.sum(1).to(weight.dtype)
    return dh, dx, dweight, dbias
