"""GPTBigCodeBlock: transformers' GPTBigCodeBlock (SantaCoder, StarCoder-style models) on fastattn's
fused LayerNorm+residual and FFN. Its block computes GPT-2's (fastattn.nn.decoder_block) with
nn.Linear projections; its attention has one key/value head when `multi_query` (the default),
which fastattn.attention takes as it is (multi-query attention: no copies of K and V per head).
"""

from torch import nn
from transformers.models.gpt_bigcode import modeling_gpt_bigcode as hf_gpt_bigcode

from ..hf.attention import register
from .decoder_block import FusedDecoderBlock, cache_argument

register()  # for a patched model unpickled in a new process: see fastattn/nn/bert.py

BLOCK_CACHE_ARG = cache_argument(hf_gpt_bigcode.GPTBigCodeBlock.forward)
ATTENTION_CACHE_ARG = cache_argument(hf_gpt_bigcode.GPTBigCodeAttention.forward)


class GPTBigCodeBlock(FusedDecoderBlock, hf_gpt_bigcode.GPTBigCodeBlock):
    """transformers' GPTBigCodeBlock with fused LayerNorm+residual and the fused FFN."""

    MLP_CLASS, PROJECTION_CLASS, WEIGHT_IN_OUT = hf_gpt_bigcode.GPTBigCodeMLP, nn.Linear, False

    def forward(self, hidden_states, encoder_hidden_states=None, *args, **kwargs):
        if not self._takes_fused_path(encoder_hidden_states):
            return super().forward(hidden_states, encoder_hidden_states, *args, **kwargs)
        # transformers passes everything after the encoder states by keyword (its own argument
        # order is layer_past, attention_mask, encoder_attention_mask, use_cache,
        # output_attentions); the encoder's mask is unused without encoder states.
        names = (BLOCK_CACHE_ARG, "attention_mask", "encoder_attention_mask", "use_cache",
                 "output_attentions")
        kwargs.update(zip(names, args))
        kwargs.pop("encoder_attention_mask", None)
        kwargs[ATTENTION_CACHE_ARG] = kwargs.pop(BLOCK_CACHE_ARG, None)
        attention_output, _ = self.attn(self.ln_1(hidden_states), **kwargs)
        return self._fused_forward(hidden_states, attention_output)
