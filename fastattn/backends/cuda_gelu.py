"""Host side of the CUDA bias + GELU kernels (csrc/bias_gelu.cu via fastattn._C).

Outputs and the float32 bias-gradient partials are allocated here (through fastattn._alloc); the
kernel writes one partial row per chunk of rows and the chunks are summed here, in a fixed order.
"""

import torch

from .. import _alloc, _extension
from ._device import backward_program_count

# Columns one CUDA block covers (32 lanes x 8 elements of 16-bit types): sets how many chunks of
# rows fill the GPU in the backward.
BLOCK_COLUMNS = 256
BLOCK_WARPS = 8


def bias_gelu_fwd(x, bias, approximate):
    out = _alloc.empty_like(x)
    if out.numel() > 0:
        _extension.require().bias_gelu_fwd(x, bias, out, approximate == "tanh")
    return out


def bias_gelu_bwd(grad_out, x, bias, approximate):
    n_rows, n_cols = x.shape
    grad_in = _alloc.empty_like(x)
    if grad_in.numel() == 0:
        return grad_in, torch.zeros_like(bias)
    col_tiles = -(-n_cols // BLOCK_COLUMNS)
    chunks = max(1, backward_program_count(x.device, n_rows, BLOCK_WARPS) // col_tiles)
    partial = _alloc.empty((chunks, n_cols), x, torch.float32)
    _extension.require().bias_gelu_bwd(grad_out, x, bias, grad_in, partial, approximate == "tanh")
    return grad_in, partial.sum(dim=0).to(bias.dtype)
