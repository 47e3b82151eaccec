"""Bias + GELU with stock PyTorch ops, in float32 (float64 for float64): the fallback that runs
anywhere."""

import torch
import torch.nn.functional as F

from ._precision import compute_dtype


def bias_gelu_fwd(x, bias, approximate):
    dtype = compute_dtype(x.dtype)
    return F.gelu(x.to(dtype) + bias.to(dtype), approximate=approximate).to(x.dtype)


def bias_gelu_bwd(grad_out, x, bias, approximate):
    dtype = compute_dtype(x.dtype)
    dx = torch.ops.aten.gelu_backward(grad_out.to(dtype), x.to(dtype) + bias.to(dtype),
                                      approximate=approximate)
    return dx.to(x.dtype), dx.sum(dim=0).to(bias.dtype)
