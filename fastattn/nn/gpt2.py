"""GPT2Block: transformers' GPT2Block with fused LayerNorm+residual and the fused FFN.

    h, x = LN_2(attn(LN_1(x)) + x)        (LayerNorm fused with the residual add)
    out  = x + ffn(h)                     (c_proj(gelu(c_fc(h))) and its dropout in fastattn.ffn)
Attention runs through transformers' GPT2Attention (its KV-cache handling untouched) with the
`fastattn` attention implementation, so decoding with a cache reaches fastattn.attention with
Sq < Sk. Conv1D weights are stored [in, out]; the FFN uses them transposed (views, no copies).
Cross-attention (encoder_hidden_states) and non-GELU activations run transformers' own forward,
and so does a block whose ln_2, MLP activation or MLP dropout is hooked or replaced (nn.structure).
A block whose norms are not plain LayerNorms (an RMSNorm swapped in) is not adopted at all.
"""

import inspect

from transformers.models.gpt2.modeling_gpt2 import GPT2MLP
from transformers.models.gpt2.modeling_gpt2 import GPT2Block as HFGPT2Block
from transformers.pytorch_utils import Conv1D

from ..hf.attention import register
from . import adoption, structure
from .ffn import gelu_ffn, module_gelu_approximation
from .layer_norm_residual import LayerNormResidual, can_adopt
from .projections import fusable

register()  # for a patched model unpickled in a new process: see fastattn/nn/bert.py

BACKEND, GELU = "_fastattn_backend", "_fastattn_gelu"
# The submodules the fused path skips (the MLP's activation and dropout) or calls with the
# residual (ln_2): as patch() found them and unhooked, or the block runs transformers' forward.
FUSED_PATH_MODULES, RECORD = ("ln_2", "mlp.act", "mlp.dropout"), "_fastattn_structure"

# The KV cache argument was renamed inside transformers 5.x (past_key_values -> cache); the
# argument order stayed: hidden_states, cache, attention_mask, encoder_hidden_states,
# encoder_attention_mask, use_cache.
CACHE_ARG = "cache" if "cache" in inspect.signature(HFGPT2Block.forward).parameters else "past_key_values"


class GPT2Block(HFGPT2Block):

    @classmethod
    def adopt(cls, block, *, backend=None):
        """Turn an existing transformers GPT2Block into this class in place. A block whose norms
        are not plain LayerNorms stays as it is (it still runs the `fastattn` attention)."""
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
        return [self.ln_1, self.ln_2] + ([self.ln_cross_attn] if hasattr(self, "ln_cross_attn") else [])

    def _attentions(self):
        return [self.attn] + ([self.crossattention] if hasattr(self, "crossattention") else [])

    def forward(self, hidden_states, cache=None, attention_mask=None, encoder_hidden_states=None,
                encoder_attention_mask=None, use_cache=False, **kwargs):
        cache = kwargs.pop(CACHE_ARG, cache)
        if (encoder_hidden_states is not None or getattr(self, GELU) is None
                or not structure.intact(self, getattr(self, RECORD))):
            return super().forward(hidden_states, cache, attention_mask, encoder_hidden_states,
                                   encoder_attention_mask, use_cache, **kwargs)
        attn_output, _ = self.attn(self.ln_1(hidden_states), attention_mask=attention_mask,
                                   use_cache=use_cache, **{CACHE_ARG: cache}, **kwargs)
        # GPT2Attention already applied its residual dropout.
        h, residual = self.ln_2(attn_output, hidden_states, return_residual=True)
        mlp = self.mlp
        if not (fusable(mlp, GPT2MLP) and fusable(mlp.c_fc, Conv1D)
                and fusable(mlp.c_proj, Conv1D)):
            return residual + mlp(h)  # a wrapped or hooked projection (nn.projections)
        # The MLP's output dropout runs inside the fused op.
        feed_forward = gelu_ffn(h, mlp.c_fc.weight.t(), mlp.c_fc.bias, mlp.c_proj.weight.t(),
                                mlp.c_proj.bias, approximate=getattr(self, GELU),
                                dropout_p=(structure.dropout_p(mlp.dropout) if self.training
                                           else 0.0),
                                backend=getattr(self, BACKEND))
        return residual + feed_forward
