"""LayerNorm + residual with stock PyTorch ops: the fallback that runs anywhere.

Dropout here draws its mask from a torch.Generator seeded with the op's seed, so the backward
regenerates the same mask; the mask differs from the Philox stream of the triton and cuda backends.
"""

import functools

import torch
import torch.nn.functional as F

from .._rng import dropout_scale
from ._precision import compute_dtype


def _keep_mask(seed, dropout_p, shape, device):
    generator = torch.Generator(device=device)
    generator.manual_seed(seed)
    return torch.rand(shape, generator=generator, device=device) >= dropout_p


def layer_norm_residual_inference(x, residual, weight, bias, eps):
    """(LN(h), h), h = x + residual (x itself without one), x of any shape: the forward of a call
    that keeps nothing for a backward and has no dropout, as the stock ops compute it (the op front
    takes it in plain eager mode, where the fused op's row views, statistics and placeholders,
    ~70 us of a 100 us call on our CPU machine, buy nothing)."""
    h = x if residual is None else x + residual
    return F.layer_norm(h, (x.shape[-1],), weight, bias, eps), h


def layer_norm_residual_fwd(x, residual, weight, bias, eps, dropout_p, seed, store_h):
    h = x
    if seed is not None:
        h = h * _keep_mask(seed, dropout_p, x.shape, x.device).to(x.dtype) * dropout_scale(dropout_p)
    if residual is not None:
        h = h + residual
    y, mean, rstd = torch.native_layer_norm(h, [x.shape[-1]], weight, bias, eps)
    h_out = h if store_h else x.new_empty(0)
    stats = compute_dtype(x.dtype)
    return y, h_out, mean.to(stats).reshape(-1), rstd.to(stats).reshape(-1)


@functools.lru_cache(maxsize=None)
def _statistics_dtype(device_type, dtype):
    """The dtype of the mean/rstd that torch's native LayerNorm keeps for `dtype` on `device_type`
    (float32 on CUDA; the input dtype on CPU): its backward expects them back in that dtype."""
    probe = torch.zeros(1, 1, dtype=dtype, device=device_type)
    return torch.native_layer_norm(probe, [1], None, None, 1e-5)[1].dtype


def layer_norm_residual_bwd(dy, dh_out, h, weight, mean, rstd, dropout_p, seed):
    stats_dtype = _statistics_dtype(h.device.type, h.dtype)
    dh, dweight, dbias = torch.ops.aten.native_layer_norm_backward(
        dy, h, [h.shape[-1]], mean.to(stats_dtype)[:, None], rstd.to(stats_dtype)[:, None],
        weight, torch.zeros_like(weight), [True, True, True])
    if dh_out is not None:
        dh = dh + dh_out
    if seed is not None:
        dx = dh * _keep_mask(seed, dropout_p, dh.shape, dh.device).to(dh.dtype) * dropout_scale(dropout_p)
    else:
        dx = h.new_empty(0)
    return dh, dx, dweight, dbias
