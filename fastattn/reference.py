"""The oracle: naive eager math that every backend is tested against.

Not a backend: nothing here is fast. Each function takes `upcast`: True computes in float64 (the
"ref" of the numerics rule), False in the inputs' own dtype (the "eager" baseline whose error sets
the tolerance). Autograd through these functions gives the reference gradients.
"""

import torch
import torch.nn.functional as F

_MASK32 = 0xFFFFFFFF
_PHILOX_ROUND_A, _PHILOX_ROUND_B = 0xD2511F53, 0xCD9E8D57
_PHILOX_KEY_A, _PHILOX_KEY_B = 0x9E3779B9, 0xBB67AE85
_UINT_TO_UNIFORM = 4.6566127342e-10  # Triton's scale: largest with INT32_MAX * scale < 1 in float32


def _mul_hi_lo(a, constant):
    """(high, low) 32-bit halves of a * constant for uint32 values held in int64, without overflow."""
    low_product = a * (constant & 0xFFFF)
    high_product = a * (constant >> 16)
    low = (low_product + ((high_product & 0xFFFF) << 16)) & _MASK32
    high = (high_product + (low_product >> 16)) >> 16
    return high, low


def philox_uniform(seed, offsets):
    """Triton's `tl.rand(seed, offsets)`: Philox-4x32-10 keyed by the 64-bit seed, counter
    (offset low, offset high, 0, 0), first word mapped to a float32 in [0, 1)."""
    offsets = offsets.to(torch.int64)
    c0, c1 = offsets & _MASK32, (offsets >> 32) & _MASK32
    c2, c3 = torch.zeros_like(c0), torch.zeros_like(c0)
    k0, k1 = seed & _MASK32, (seed >> 32) & _MASK32
    for _ in range(10):
        high_b, low_b = _mul_hi_lo(c2, _PHILOX_ROUND_B)
        high_a, low_a = _mul_hi_lo(c0, _PHILOX_ROUND_A)
        c0, c1, c2, c3 = high_b ^ c1 ^ k0, low_b, high_a ^ c3 ^ k1, low_a
        k0, k1 = (k0 + _PHILOX_KEY_A) & _MASK32, (k1 + _PHILOX_KEY_B) & _MASK32
    as_int32 = torch.where(c0 >= 2**31, c0 - 2**32, c0)
    non_negative = torch.where(as_int32 < 0, -as_int32 - 1, as_int32)
    return non_negative.to(torch.float32) * torch.tensor(_UINT_TO_UNIFORM, dtype=torch.float32)


def dropout_keep_mask(seed, shape, dropout_p, device="cpu"):
    """The keep mask the triton and cuda backends draw for a row-major tensor of `shape`."""
    numel = 1
    for size in shape:
        numel *= size
    uniform = philox_uniform(int(seed), torch.arange(numel, dtype=torch.int64))
    keep = uniform >= torch.tensor(dropout_p, dtype=torch.float32)
    return keep.reshape(shape).to(device)


def _compute_dtype(tensor, upcast):
    return torch.float64 if upcast else tensor.dtype


def layer_norm_residual(x, residual, weight, bias, eps=1e-5, *, keep_mask=None, dropout_p=0.0,
                        upcast=True):
    """(LN(h), h) with h = dropout(x) + residual; dropout applies `keep_mask` scaled by 1/(1-p)."""
    dtype = _compute_dtype(x, upcast)
    h = x.to(dtype)
    if keep_mask is not None:
        scale = 0.0 if dropout_p >= 1.0 else 1.0 / (1.0 - dropout_p)
        h = h * keep_mask.to(dtype) * scale
    if residual is not None:
        h = h + residual.to(dtype)
    y = F.layer_norm(h, (x.shape[-1],), weight.to(dtype), bias.to(dtype), eps)
    return y, h
