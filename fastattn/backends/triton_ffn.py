"""Host side of the Triton FFN: the six launches of kernels/ffn_matmul.py (up and down projection;
dA, dW2, dW1, dX) and the dropout backward, with their tiles and output buffers.

Every operand is passed as a strided view ([M, K] A and [K, N] B): W^T and the transposed
activations of the weight gradients are never copied. Tiles that ask for it (ffn_settings.Tiles.tma)
run the persistent TMA kernel on sm_90 and newer, the operands described to the copy engine through
their contiguous dimension; launches TMA cannot take keep the pointer kernel.
"""

import torch

from .. import _alloc
from .._rng import dropout_scale
from ..kernels import ffn_dropout
from ..kernels import ffn_settings as settings
from ..kernels.ffn_dropout import ffn_dropout_bwd_kernel
from ..kernels.ffn_matmul import ffn_matmul_kernel
from ..kernels.ffn_matmul_tma import ffn_matmul_tma_kernel
from ..kernels.host_math import ceil_div
from ._attention_layout import dot_precision
from ._device import multiprocessor_count, tile_arch
from ._weight_layout import weight_grad

# Programs of the persistent TMA kernel under the interpreter (CPU tensors): a few, so that each
# walks several tiles.
INTERPRETER_PROGRAMS = 3


def _matmul(a, b, out, *, bias=None, pre=None, dbias_partial=None, apply_gelu=False,
            gelu_grad=False, approximate="none", dropout_p=0.0, seed=None):
    """out = epilogue(a @ b), a [M, K], b [K, N], out [M, N] contiguous (see kernels/ffn_matmul.py)."""
    (m, k), n = a.shape, b.shape[1]
    if m == 0 or n == 0:
        return out
    arch = tile_arch(a.device)
    tiles = settings.matmul_tiles(arch, a.dtype == torch.float32, gelu_grad,
                                  dropout=seed is not None)
    pre_arg = pre if pre is not None else out
    buffers = (bias if bias is not None else out, pre_arg, out,
               dbias_partial if dbias_partial is not None else out)
    epilogue = dict(HAS_BIAS=bias is not None, APPLY_GELU=apply_gelu,
                    STORE_PRE=apply_gelu and pre is not None, GELU_GRAD=gelu_grad,
                    TANH=approximate == "tanh", HAS_DROPOUT=seed is not None)
    dropout = (dropout_p, dropout_scale(dropout_p), 0 if seed is None else seed)
    descriptors = _tma_operands(a, b, tiles, arch)
    if descriptors is not None:
        (a_desc, a_km), (b_desc, b_nk) = descriptors
        programs = min(_programs(a.device), ceil_div(m, tiles.block_m) * ceil_div(n, tiles.block_n))
        ffn_matmul_tma_kernel[(programs,)](
            a_desc, b_desc, *buffers, m, n, k, pre_arg.stride(0), out.stride(0), programs,
            *dropout, **epilogue, A_KM=a_km, B_NK=b_nk, BLOCK_M=tiles.block_m,
            BLOCK_N=tiles.block_n, BLOCK_K=tiles.block_k, GROUP_M=tiles.group_m, FLATTEN=True,
            num_warps=tiles.num_warps, num_stages=tiles.num_stages,
        )
        return out
    grid = (ceil_div(m, tiles.block_m) * ceil_div(n, tiles.block_n),)
    ffn_matmul_kernel[grid](
        a, b, *buffers,
        m, n, k, a.stride(0), a.stride(1), b.stride(0), b.stride(1), pre_arg.stride(0), out.stride(0),
        *dropout, **epilogue,
        DOT_PRECISION=dot_precision(a.dtype), EVEN_M=m % tiles.block_m == 0,
        EVEN_N=n % tiles.block_n == 0, EVEN_K=k % tiles.block_k == 0,
        BLOCK_M=tiles.block_m, BLOCK_N=tiles.block_n, BLOCK_K=tiles.block_k, GROUP_M=tiles.group_m,
        num_warps=tiles.num_warps, num_stages=tiles.num_stages,
    )
    return out


def _programs(device):
    if device.type != "cuda":
        return INTERPRETER_PROGRAMS
    return multiprocessor_count(device)


def _tma_operands(a, b, tiles, arch):
    """((A descriptor, A_KM), (B descriptor, B_NK)) for the TMA kernel, or None when this launch
    keeps the pointer kernel: tiles without tma, an arch before sm_90, float32, an empty K, or an
    operand TMA cannot describe."""
    if not tiles.tma or arch < 90 or a.dtype == torch.float32 or a.shape[1] == 0:
        return None
    a_desc = _descriptor(a, tiles.block_m, tiles.block_k)
    b_desc = _descriptor(b, tiles.block_k, tiles.block_n)
    if a_desc is None or b_desc is None:
        return None
    return a_desc, b_desc


def _descriptor(t, block_rows, block_cols):
    """(TMA descriptor of [block_rows, block_cols] tiles of the matrix t, False) over t as it is
    when its rows are contiguous, (descriptor over its storage t^T, True) when its columns are;
    None when neither is, or the row pitch or base is not a multiple of 16 bytes (TMA's rule)."""
    from triton.tools.tensor_descriptor import TensorDescriptor

    if t.stride(1) == 1:
        view, block, transposed = t, [block_rows, block_cols], False
    elif t.stride(0) == 1:
        view, block, transposed = t.t(), [block_cols, block_rows], True
    else:
        return None
    if view.data_ptr() % 16 or (view.stride(0) * view.element_size()) % 16:
        return None
    return TensorDescriptor(view, list(view.shape), list(view.stride()), block), transposed


def ffn_up(x, w1, b1, approximate, store_pre):
    """(h, pre): h = gelu(x @ W1^T + b1), and pre = x @ W1^T + b1 when store_pre (else empty)."""
    rows, hidden = x.shape[0], w1.shape[0]
    h = _alloc.empty((rows, hidden), x)
    pre = _alloc.empty((rows, hidden), x) if store_pre else None
    _matmul(x, w1.t(), h, bias=b1, pre=pre, apply_gelu=True, approximate=approximate)
    return h, (pre if store_pre else x.new_empty(0))


def ffn_fwd(x, w1, b1, w2, b2, approximate, dropout_p, seed, store_pre):
    h, pre = ffn_up(x, w1, b1, approximate, store_pre)
    out = _matmul(h, w2.t(), _alloc.empty((x.shape[0], w2.shape[0]), x), bias=b2,
                  dropout_p=dropout_p, seed=seed)
    return out, h, pre


def _dropout_bwd(dy, dropout_p, seed):
    rows, cols = dy.shape
    dropped = _alloc.empty_like(dy)
    if dy.numel():
        grid = (ceil_div(rows, ffn_dropout.BLOCK_M), ceil_div(cols, ffn_dropout.BLOCK_N))
        ffn_dropout_bwd_kernel[grid](
            dy, dropped, rows, cols, dy.stride(0), dropped.stride(0), dropout_p,
            dropout_scale(dropout_p), seed, BLOCK_M=ffn_dropout.BLOCK_M, BLOCK_N=ffn_dropout.BLOCK_N,
            num_warps=ffn_dropout.NUM_WARPS)
    return dropped


def ffn_bwd(dy, x, w1, w2, h, pre, approximate, dropout_p, seed):
    (rows, width), hidden = x.shape, w1.shape[0]
    if seed is not None:
        dy = _dropout_bwd(dy, dropout_p, seed)
    tiles = settings.matmul_tiles(tile_arch(x.device), x.dtype == torch.float32, gelu_grad=True)
    # One float32 row of b1-gradient column sums per row block of dA, added up here in order.
    partial = _alloc.empty((ceil_div(rows, tiles.block_m), hidden), x, torch.float32)
    da = _matmul(dy, w2, _alloc.empty((rows, hidden), x), pre=pre, dbias_partial=partial,
                 gelu_grad=True, approximate=approximate)
    db1 = partial.sum(0).to(x.dtype)
    db2 = dy.sum(0, dtype=torch.float32).to(x.dtype)
    # K = rows may be 0 here: the kernels then write zero weight gradients.
    def product(a, b):
        return _matmul(a, b, _alloc.empty((a.shape[0], b.shape[1]), x))

    dw2 = weight_grad(w2, dy, h, product)
    dw1 = weight_grad(w1, da, x, product)
    dx = _matmul(da, w1, _alloc.empty((rows, width), x))
    return dx, dw1, db1, dw2, db2
