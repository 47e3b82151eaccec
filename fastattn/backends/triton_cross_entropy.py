"""Host side of the Triton cross-entropy kernels (kernels/cross_entropy.py): one program per row."""

import torch

from .. import _alloc
from ..kernels.cross_entropy import (
    BLOCK,
    NUM_WARPS,
    cross_entropy_bwd_kernel,
    cross_entropy_fwd_kernel,
)
from ._device import on_inputs_device


@on_inputs_device
def cross_entropy_fwd(logits, target, ignore_index):
    """(losses, lse): float32 [rows] each; logits [rows, n_cols] with unit column stride."""
    rows, n_cols = logits.shape
    losses = _alloc.empty((rows,), logits, torch.float32)
    lse = _alloc.empty((rows,), logits, torch.float32)
    if rows:
        cross_entropy_fwd_kernel[(rows,)](logits, target, losses, lse, logits.stride(0), n_cols,
                                          ignore_index, BLOCK=BLOCK, num_warps=NUM_WARPS)
    return losses, lse


@on_inputs_device
def cross_entropy_bwd(logits, target, lse, grad_losses, ignore_index):
    """dlogits [rows, n_cols] (contiguous, in the logits' dtype) for grad_losses, the gradient of
    each row's loss."""
    rows, n_cols = logits.shape
    grad_logits = _alloc.empty((rows, n_cols), logits)
    if rows:
        cross_entropy_bwd_kernel[(rows,)](logits, target, lse, grad_losses.contiguous(),
                                          grad_logits, logits.stride(0), grad_logits.stride(0),
                                          n_cols, ignore_index, BLOCK=BLOCK, num_warps=NUM_WARPS)
    return grad_logits
