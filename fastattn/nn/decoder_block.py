"""FusedDecoderBlock: GPT-2's pre-LN decoder block with fused LayerNorm+residual and the fused FFN,
as a mixin over a transformers block class whose block computes exactly that.

    h, x = LN_2(attn(LN_1(x)) + x)        (LayerNorm fused with the residual add)
    out  = x + ffn(h)                     (c_proj(gelu(c_fc(h))) and its dropout in fastattn.ffn)

Attention runs through the block's own transformers attention module (its KV-cache handling
untouched) with the `fastattn` attention implementation, so decoding with a cache reaches
fastattn.attention with Sq < Sk. Cross-attention (encoder hidden states) and non-GELU activations
run transformers' own forward, and so does a block whose ln_2, MLP activation or MLP dropout is
hooked or replaced (nn.structure). A block whose norms are not plain LayerNorms (an RMSNorm swapped
in) is not adopted at all.

The families differ in little: the classes of the MLP and its projections (GPT-2's Conv1D stores
its weight [in, out], GPTBigCode's nn.Linear [out, in]), the forward's argument order and how the
attention module is called. Each concrete block (fastattn.nn.gpt2, fastattn.nn.gpt_bigcode) gives
those; the rest lives here once.
"""

import inspect

from . import adoption, structure
from .ffn import gelu_ffn, module_gelu_approximation
from .layer_norm_residual import LayerNormResidual, can_adopt
from .projections import fusable

BACKEND, GELU = "_fastattn_backend", "_fastattn_gelu"
# The submodules the fused path skips (the MLP's activation and dropout) or calls with the
# residual (ln_2): as patch() found them and unhooked, or the block runs transformers' forward.
FUSED_PATH_MODULES, RECORD = ("ln_2", "mlp.act", "mlp.dropout"), "_fastattn_structure"


def cache_argument(forward):
    """The name under which a transformers block's or attention's `forward` takes the KV cache:
    renamed inside transformers 5.x (GPT-2's past_key_values -> cache; GPTBigCode's layer_past in
    5.4 to 5.25)."""
    parameters = inspect.signature(forward).parameters
    return next(name for name in ("layer_past", "cache", "past_key_values") if name in parameters)


class FusedDecoderBlock:
    """GPT-2's pre-LN block on fastattn's fused LayerNorm+residual and FFN (see
    fastattn.nn.decoder_block)."""

    # Set by each concrete block: transformers' MLP class and its projections' class.
    MLP_CLASS = PROJECTION_CLASS = None
    # Whether the projections store their weight [in, out] (Conv1D): the FFN takes them transposed,
    # as views.
    WEIGHT_IN_OUT = False

    @classmethod
    def adopt(cls, block, *, backend=None):
        """Turn an existing transformers block into this class in place. A block whose norms are
        not plain LayerNorms stays as it is (it still runs the `fastattn` attention)."""
        if not all(can_adopt(norm) for norm in cls._norms(block)):
            return block
        adoption.swap_class(block, cls, **{BACKEND: backend, GELU: None, RECORD: None})
        for norm in block._norms():
            LayerNormResidual.adopt(norm, backend=backend)
        for attention in block._attentions():
            setattr(attention, BACKEND, backend)
        # The fused path only for the GELU transformers builds for the configured activation
        # (not a module swapped in by hand). Recorded after the norms' adoption: ln_2 is kept as
        # a LayerNormResidual.
        approximate = module_gelu_approximation(getattr(block.mlp, "act", None),
                                                block.attn.config.activation_function)
        if (approximate is not None
                and structure.dropout_p(getattr(block.mlp, "dropout", None)) is not None):
            setattr(block, GELU, approximate)
            setattr(block, RECORD, structure.record(block, FUSED_PATH_MODULES))
        return block

    def release(self):
        for norm in self._norms():
            norm.release()
        for attention in self._attentions():
            attention.__dict__.pop(BACKEND, None)
        return adoption.restore_class(self, BACKEND, GELU, RECORD)

    def _norms(self):
        cross = [self.ln_cross_attn] if hasattr(self, "ln_cross_attn") else []
        return [self.ln_1, self.ln_2] + cross

    def _attentions(self):
        return [self.attn] + ([self.crossattention] if hasattr(self, "crossattention") else [])

    def _takes_fused_path(self, encoder_hidden_states):
        return (encoder_hidden_states is None and getattr(self, GELU) is not None
                and structure.intact(self, getattr(self, RECORD)))

    def _fused_forward(self, hidden_states, attention_output):
        """The block from attention's output on: ln_2 fused with the residual add, then the FFN
        with its output dropout fused, and the second residual add."""
        # The attention module already applied its residual dropout.
        h, residual = self.ln_2(attention_output, hidden_states, return_residual=True)
        mlp = self.mlp
        projection = self.PROJECTION_CLASS
        if not (fusable(mlp, self.MLP_CLASS) and fusable(mlp.c_fc, projection)
                and fusable(mlp.c_proj, projection)):
            return residual + mlp(h)  # a wrapped or hooked projection (nn.projections)
        w1, w2 = mlp.c_fc.weight, mlp.c_proj.weight
        if self.WEIGHT_IN_OUT:
            w1, w2 = w1.t(), w2.t()
        feed_forward = gelu_ffn(h, w1, mlp.c_fc.bias, w2, mlp.c_proj.bias,
                                approximate=getattr(self, GELU),
                                dropout_p=(structure.dropout_p(mlp.dropout) if self.training
                                           else 0.0),
                                backend=getattr(self, BACKEND))
        return residual + feed_forward
