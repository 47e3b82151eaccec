"""Host side of the CUDA LayerNorm + residual kernels (csrc/layer_norm_residual.cu via fastattn._C).

The extension allocates the outputs and sums the dW/dB partials itself; this module only supplies
what is decided once in Python: the dropout multiplier and the extension handle.
"""

from .. import _extension
from .._rng import dropout_scale


def _module():
    module, error = _extension.load()
    if module is None:
        raise RuntimeError(f"the cuda backend cannot run: {error}")
    return module


def layer_norm_residual_fwd(x, residual, weight, bias, eps, dropout_p, seed, store_h):
    return tuple(_module().layer_norm_residual_fwd(
        x, residual, weight, bias, eps, dropout_p, dropout_scale(dropout_p), seed, store_h))


def layer_norm_residual_bwd(dy, dh_out, h, weight, mean, rstd, dropout_p, seed):
    return tuple(_module().layer_norm_residual_bwd(
        dy, dh_out, h, weight, mean, rstd, dropout_p, dropout_scale(dropout_p), seed))
