"""LayerNormResidual: an nn.LayerNorm whose forward also takes the residual (and its dropout).

It subclasses nn.LayerNorm with the same parameters, so it can stand in for one anywhere,
including by adopting an existing nn.LayerNorm in place (the blocks do that with their norms).
"""

from torch import nn

from ..ops.layer_norm_residual import layer_norm_residual
from . import adoption

_ATTRIBUTES = ("dropout_p", "backend")


class LayerNormResidual(nn.LayerNorm):
    """LN(dropout(x) + residual) over the last dimension; plain LN(x) when called like nn.LayerNorm.

    dropout_p applies to x, and only in training mode. backend: a fastattn backend name or None.
    """

    def __init__(self, normalized_shape, eps=1e-5, *, dropout_p=0.0, backend=None, device=None,
                 dtype=None):
        super().__init__(normalized_shape, eps, elementwise_affine=True, bias=True, device=device,
                         dtype=dtype)
        _check_supported(self)
        self.dropout_p, self.backend = float(dropout_p), backend

    def forward(self, x, residual=None, *, dropout_p=None, return_residual=False):
        """dropout_p overrides the module's own for this call (blocks pass their dropout's p)."""
        p = self.dropout_p if dropout_p is None else float(dropout_p)
        return layer_norm_residual(x, residual, self.weight, self.bias, self.eps,
                                   dropout_p=p if self.training else 0.0,
                                   return_residual=return_residual, backend=self.backend)

    @classmethod
    def adopt(cls, layer_norm, *, backend=None):
        """Turn an existing nn.LayerNorm into a LayerNormResidual in place (no dropout of its own,
        so code that calls it as an nn.LayerNorm gets the same result as before)."""
        _check_supported(layer_norm)
        return adoption.swap_class(layer_norm, cls, dropout_p=0.0, backend=backend)

    def release(self):
        """Back to the nn.LayerNorm it was before adopt()."""
        return adoption.restore_class(self, *_ATTRIBUTES)

    def extra_repr(self):
        return f"{super().extra_repr()}, dropout_p={self.dropout_p}, backend={self.backend}"


def can_adopt(layer_norm):
    """Whether LayerNormResidual.adopt takes this module: an nn.LayerNorm (or one adopted already)
    over the last dimension with weight and bias. Not an RMSNorm, a LayerNorm without bias or
    affine parameters, or a subclass with a forward of its own."""
    return type(layer_norm) in (nn.LayerNorm, LayerNormResidual) and _supported(layer_norm)


def _supported(layer_norm):
    """Over one (the last) dimension, with weight and bias: what the fused op computes."""
    return (len(layer_norm.normalized_shape) == 1
            and layer_norm.weight is not None and layer_norm.bias is not None)


def _check_supported(layer_norm):
    if not _supported(layer_norm):
        raise ValueError("fastattn.nn.LayerNormResidual: needs a LayerNorm over one (the last) "
                         "dimension with weight and bias, got "
                         f"normalized_shape={tuple(layer_norm.normalized_shape)}, "
                         f"weight={'yes' if layer_norm.weight is not None else 'no'}, "
                         f"bias={'yes' if layer_norm.bias is not None else 'no'}")
