"""Cross-entropy of 16-bit logits computed in float32 without a float32 copy of the logits.

The loss patched causal LMs use (fastattn.hf.loss). With CUDA tensors and Triton the logits are
streamed by kernels/cross_entropy.py; elsewhere (CPU, the torch or cuda backend asked for: there is
no CUDA C++ kernel for it, or inside torch.compile, which fuses the eager form itself) it is
torch's own cross-entropy of the float32 logits, the same numbers as Hugging Face's loss.
"""

import functools

import torch
import torch.nn.functional as F

from .. import _tracing
from .._dispatch import why_backend_cannot_run
from ..backends._precision import compute_dtype
from ..ops._fused_op import first_order_only


class _TritonCrossEntropy(torch.autograd.Function):
    @staticmethod
    def forward(ctx, logits, target, ignore_index):
        from ..backends import triton_cross_entropy

        losses, lse = triton_cross_entropy.cross_entropy_fwd(logits, target, ignore_index)
        ctx.save_for_backward(logits, target, lse)
        ctx.ignore_index = ignore_index
        return losses

    @staticmethod
    @functools.partial(first_order_only, name="fastattn's cross-entropy loss")
    def backward(ctx, grad_losses):
        from ..backends import triton_cross_entropy

        logits, target, lse = ctx.saved_tensors
        grad_logits = triton_cross_entropy.cross_entropy_bwd(logits, target, lse, grad_losses,
                                                             ctx.ignore_index)
        return grad_logits, None, None


def _streams_with_triton(logits, backend):
    """backend None: CUDA tensors; "triton" also CPU tensors under TRITON_INTERPRET=1 (tests)."""
    # A trace would not record the Triton launch; torch.func needs the autograd.Function form
    # fastattn.ops._fused_op gives the fused ops. torch's cross-entropy serves both.
    if backend not in (None, "triton") or _tracing.shapes_only() or logits.dtype == torch.float64:
        return False
    if backend is None and not logits.is_cuda:
        return False
    return why_backend_cannot_run("triton", logits.device) is None


def per_token_cross_entropy(logits, target, ignore_index=-100, backend=None):
    """float32 [rows] (float64 for float64 logits): -log softmax(logits)[target] of each row of
    logits [rows, n_cols], computed in that dtype, and 0 where target == ignore_index. A target outside
    [0, n_cols) gives NaN on the Triton path (torch's raises)."""
    if logits.dim() != 2 or target.shape != logits.shape[:1]:
        raise ValueError(f"per_token_cross_entropy: logits must be [rows, n_cols] and target "
                         f"[rows], got {list(logits.shape)} and {list(target.shape)}")
    if logits.shape[1] == 0:
        raise ValueError("per_token_cross_entropy: logits have no columns")
    if _streams_with_triton(logits, backend):
        logits = logits if logits.stride(1) == 1 else logits.contiguous()
        return _TritonCrossEntropy.apply(logits, target.to(torch.int64).contiguous(), ignore_index)
    return F.cross_entropy(logits.to(compute_dtype(logits.dtype)), target, ignore_index=ignore_index,
                           reduction="none")
