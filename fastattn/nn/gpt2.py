"""GPT2Block: transformers' GPT2Block with fused LayerNorm+residual and the fused FFN.

    h, x = LN_2(attn(LN_1(x)) + x)        (LayerNorm fused with the residual add)
    out  = x + ffn(h)                     (c_proj(gelu(c_fc(h))) and its dropout in fastattn.ffn)
Attention runs through transformers' GPT2Attention (its KV-cache handling untouched) with the
`fastattn` attention implementation, so decoding with a cache reaches fastattn.attention with
Sq < Sk. Conv1D weights are stored [in, out]; the FFN uses them transposed (views, no copies).
Cross-attention (encoder_hidden_states) and non-GELU activations run transformers' own forward.
"""

import inspect

from transformers.models.gpt2.modeling_gpt2 import GPT2MLP
from transformers.models.gpt2.modeling_gpt2 import GPT2Block as HFGPT2Block
from transformers.pytorch_utils import Conv1D

from . import adoption
from .ffn import gelu_approximation, gelu_ffn
from .layer_norm_residual import LayerNormResidual
from .projections import fusable

BACKEND, GELU = "_fastattn_backend", "_fastattn_gelu"

# The KV cache argument was renamed inside transformers 5.x (past_key_values -> cache); the
# argument order stayed: hidden_states, cache, attention_mask, encoder_hidden_states,
# encoder_attention_mask, use_cache.
CACHE_ARG = "cache" if "cache" in inspect.signature(HFGPT2Block.forward).parameters else "past_key_values"


class GPT2Block(HFGPT2Block):

    @classmethod
    def adopt(cls, block, *, backend=None):
        """Turn an existing transformers GPT2Block into this class in place."""
        adoption.swap_class(block, cls, **{BACKEND: backend,
                                           GELU: gelu_approximation(block.attn.config.activation_function)})
        for norm in block._norms():
            LayerNormResidual.adopt(norm, backend=backend)
        for attention in block._attentions():
            setattr(attention, BACKEND, backend)
        return block

    def release(self):
        for norm in self._norms():
            norm.release()
        for attention in self._attentions():
            attention.__dict__.pop(BACKEND, None)
        return adoption.restore_class(self, BACKEND, GELU)

    def _norms(self):
        return [self.ln_1, self.ln_2] + ([self.ln_cross_attn] if hasattr(self, "ln_cross_attn") else [])

    def _attentions(self):
        return [self.attn] + ([self.crossattention] if hasattr(self, "crossattention") else [])

    def forward(self, hidden_states, cache=None, attention_mask=None, encoder_hidden_states=None,
                encoder_attention_mask=None, use_cache=False, **kwargs):
        cache = kwargs.pop(CACHE_ARG, cache)
        if encoder_hidden_states is not None or getattr(self, GELU) is None:
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
                                dropout_p=mlp.dropout.p if self.training else 0.0,
                                backend=getattr(self, BACKEND))
        return residual + feed_forward
