"""Host side of the Triton masked softmax kernels: row views, output buffers, kernel choice."""

from .. import _alloc
from .._checks import rows_view
from ..kernels.masked_softmax import (
    LOG2E,
    launch_settings,
    masked_softmax_bwd_kernel,
    masked_softmax_bwd_long_row_kernel,
    masked_softmax_fwd_kernel,
    masked_softmax_fwd_long_row_kernel,
)


def masked_softmax_fwd(scores, key_padding_mask, causal, scale):
    _, heads, queries, n_cols = scores.shape
    out = _alloc.empty_like(scores)
    if out.numel() == 0:
        return out
    x, y = rows_view(scores), out.view(-1, n_cols)
    block, num_warps, long_row = launch_settings(n_cols)
    kernel = masked_softmax_fwd_long_row_kernel if long_row else masked_softmax_fwd_kernel
    has_mask = key_padding_mask is not None
    mask = key_padding_mask.contiguous() if has_mask else x  # any pointer when unused
    kernel[(x.shape[0],)](
        x, mask, y, x.stride(0), mask.stride(0), y.stride(0),
        n_cols, heads * queries, queries, scale * LOG2E,
        HAS_MASK=has_mask, CAUSAL=causal, BLOCK_N=block, num_warps=num_warps,
    )
    return out


def masked_softmax_bwd(grad_out, out, scale):
    n_cols = out.shape[-1]
    grad_in = _alloc.empty_like(out)
    if grad_in.numel() == 0:
        return grad_in
    dy, y, dx = rows_view(grad_out), rows_view(out), grad_in.view(-1, n_cols)
    block, num_warps, long_row = launch_settings(n_cols)
    kernel = masked_softmax_bwd_long_row_kernel if long_row else masked_softmax_bwd_kernel
    kernel[(y.shape[0],)](dy, y, dx, dy.stride(0), y.stride(0), dx.stride(0), n_cols, scale,
                          BLOCK_N=block, num_warps=num_warps)
    return grad_in
