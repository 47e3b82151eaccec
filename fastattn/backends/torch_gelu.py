"""Bias + GELU with stock PyTorch ops, in float32: the fallback that runs anywhere."""

import torch
import torch.nn.functional as F


def bias_gelu_fwd(x, bias, approximate):
    return F.gelu(x.float() + bias.float(), approximate=approximate).to(x.dtype)


def bias_gelu_bwd(grad_out, x, bias, approximate):
    dx = torch.ops.aten.gelu_backward(grad_out.float(), x.float() + bias.float(),
                                      approximate=approximate)
    return dx.to(x.dtype), dx.sum(dim=0).to(bias.dtype)
