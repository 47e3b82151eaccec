"""Host side of the Triton bias + GELU kernels: grids, output buffers, the bias-gradient sum."""

import torch

from .. import _alloc
from ..kernels.bias_gelu import bias_gelu_bwd_kernel, bias_gelu_fwd_kernel, tile_settings
from ..kernels.host_math import ceil_div
from ._device import backward_program_count


def bias_gelu_fwd(x, bias, approximate):
    n_rows, n_cols = x.shape
    out = _alloc.empty_like(x)
    if out.numel() == 0:
        return out
    block_m, block_n, num_warps = tile_settings(n_cols)
    grid = (ceil_div(n_rows, block_m), ceil_div(n_cols, block_n))
    bias_gelu_fwd_kernel[grid](x, bias, out, x.stride(0), out.stride(0), n_rows, n_cols,
                               TANH=approximate == "tanh", BLOCK_M=block_m, BLOCK_N=block_n,
                               num_warps=num_warps)
    return out


def bias_gelu_bwd(grad_out, x, bias, approximate):
    n_rows, n_cols = x.shape
    grad_in = _alloc.empty_like(x)
    if grad_in.numel() == 0:
        return grad_in, torch.zeros_like(bias)
    block_m, block_n, num_warps = tile_settings(n_cols)
    col_tiles = ceil_div(n_cols, block_n)
    groups = max(1, backward_program_count(x.device, n_rows, num_warps) // col_tiles)
    rows_per_program = ceil_div(ceil_div(n_rows, groups), block_m) * block_m
    groups = ceil_div(n_rows, rows_per_program)
    partial = _alloc.empty((groups, n_cols), x, torch.float32)
    bias_gelu_bwd_kernel[(groups, col_tiles)](
        grad_out, x, bias, grad_in, partial, grad_out.stride(0), x.stride(0), grad_in.stride(0),
        n_rows, n_cols, rows_per_program,
        TANH=approximate == "tanh", BLOCK_M=block_m, BLOCK_N=block_n, num_warps=num_warps,
    )
    return grad_in, partial.sum(dim=0).to(bias.dtype)
