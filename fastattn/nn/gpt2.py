"""GPT2Block: transformers' GPT2Block on fastattn's fused LayerNorm+residual and FFN (the block's
computation: fastattn.nn.decoder_block).

GPT-2's Conv1D weights are stored [in, out]; the FFN uses them transposed (views, no copies).
"""

from transformers.models.gpt2.modeling_gpt2 import GPT2MLP
from transformers.models.gpt2.modeling_gpt2 import GPT2Block as HFGPT2Block
from transformers.pytorch_utils import Conv1D

from ..hf.attention import register
from .decoder_block import FusedDecoderBlock, cache_argument

register()  # for a patched model unpickled in a new process: see fastattn/nn/bert.py

# The KV cache argument was renamed inside transformers 5.x (past_key_values -> cache); the
# argument order stayed: hidden_states, cache, attention_mask, encoder_hidden_states,
# encoder_attention_mask, use_cache.
CACHE_ARG = cache_argument(HFGPT2Block.forward)


class GPT2Block(FusedDecoderBlock, HFGPT2Block):
    """transformers' GPT2Block with fused LayerNorm+residual and the fused FFN."""

    MLP_CLASS, PROJECTION_CLASS, WEIGHT_IN_OUT = GPT2MLP, Conv1D, True

    def forward(self, hidden_states, cache=None, attention_mask=None, encoder_hidden_states=None,
                encoder_attention_mask=None, use_cache=False, **kwargs):
        cache = kwargs.pop(CACHE_ARG, cache)
        if not self._takes_fused_path(encoder_hidden_states):
            return super().forward(hidden_states, cache, attention_mask, encoder_hidden_states,
                                   encoder_attention_mask, use_cache, **kwargs)
        attention_output, _ = self.attn(self.ln_1(hidden_states), attention_mask=attention_mask,
                                        use_cache=use_cache, **{CACHE_ARG: cache}, **kwargs)
        return self._fused_forward(hidden_states, attention_output)
