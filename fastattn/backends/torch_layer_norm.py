"""LayerNorm + residual with stock PyTorch ops: the fallback that runs anywhere.

Dropout here draws its mask from a torch.Generator seeded with the op's seed, so the backward
regenerates the same mask; the mask differs from the Philox stream of the triton and cuda backends.
"""

import torch

from .._rng import dropout_scale


def _keep_mask(seed, dropout_p, shape, device):
    generator = torch.Generator(device=device)
    generator.manual_seed(seed)
    return torch.rand(shape, generator=generator, device=device) >= dropout_p


def layer_norm_residual_fwd(x, residual, weight, bias, eps, dropout_p, seed, store_h):
    h = x
    if seed is not None:
        h = h * _keep_mask(seed, dropout_p, x.shape, x.device).to(x.dtype) * dropout_scale(dropout_p)
    if residual is not None:
        h = h + residual
    y, mean, rstd = torch.native_layer_norm(h, [x.shape[-1]], weight, bias, eps)
    h_out = h if store_h else x.new_empty(0)
    return y, h_out, mean.float().reshape(-1), rstd.float().reshape(-1)


def layer_norm_residual_bwd(dy, dh_out, h, weight, mean, rstd, dropout_p, seed):
    xhat = (h.float() - mean[:, None]) * rstd[:, None]
    dy32 = dy.float()
    wdy = dy32 * weight.float()
    dh = (wdy - xhat * (wdy * xhat).mean(-1, keepdim=True) - wdy.mean(-1, keepdim=True)) * rstd[:, None]
    if dh_out is not None:
        dh = dh + dh_out.float()
    if seed is not None:
        dx = dh * _keep_mask(seed, dropout_p, dh.shape, dh.device) * dropout_scale(dropout_p)
        dx = dx.to(h.dtype)
    else:
        dx = h.new_empty(0)
    dweight = (dy32 * xhat).sum(0).to(weight.dtype)
    dbias = dy32.sum(0).to(weight.dtype)
    return dh.to(h.dtype), dx, dweight, dbias
