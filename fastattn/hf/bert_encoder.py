"""BertEncoder that packs the batch once, runs every layer on the real tokens, unpacks once (and the
same for the encoders of the other BERT-style families: fastattn.hf.encoder_families).

Falls back to transformers' loop (each packed layer then packs and unpacks itself, or runs
transformers' path) when a layer cannot take packed tokens, when there is cross-attention, or when
hidden states are requested: transformers records them with hooks on each layer's output, which
must then be the padded [B, S, hidden] tensor.
"""

from transformers.modeling_outputs import BaseModelOutput, BaseModelOutputWithPastAndCrossAttentions
from transformers.models.bert.modeling_bert import BertEncoder as HFBertEncoder

from ..nn import adoption, structure
from ..nn.bert import PackedEncoderLayer
from ..nn.packing import PackedBatch
from . import encoder_families


class PackedEncoder:
    """A BERT-style encoder that packs the batch once for all its layers. Mixed into a subclass of
    a family's transformers encoder class (BertEncoder below, packed_encoder_class for the
    others)."""

    # What transformers' encoder of this layout returns (an encoder keeps no KV cache).
    OUTPUT = BaseModelOutputWithPastAndCrossAttentions

    @classmethod
    def adopt(cls, encoder):
        return adoption.swap_class(encoder, cls)

    def release(self):
        return adoption.restore_class(self)

    def _runs_packed(self, attention_mask, args, kwargs):
        encoder_hidden_states = args[0] if args else kwargs.get("encoder_hidden_states")
        # DistilBERT's encoder keeps no config.
        config = getattr(self, "config", None)
        hidden_states_requested = kwargs.get("output_hidden_states",
                                             getattr(config, "output_hidden_states", False))
        # A layer's own hooks (or a forward replaced on it) would see packed tokens here: such a
        # layer is called by transformers' loop instead, with the padded batch.
        return (encoder_hidden_states is None and not hidden_states_requested
                and all(isinstance(layer, PackedEncoderLayer) and structure.plain(layer)
                        and layer.can_pack(attention_mask) for layer in self.layer))

    def forward(self, hidden_states, attention_mask=None, *args, **kwargs):
        if not self._runs_packed(attention_mask, args, kwargs):
            return super().forward(hidden_states, attention_mask, *args, **kwargs)
        x, packing = PackedBatch.pack(hidden_states, attention_mask)
        for layer in self.layer:
            # Positional x: gradient checkpointing (reentrant) passes gradients through positionals.
            x = layer(x, packing=packing)
        return self.OUTPUT(last_hidden_state=packing.unpack(x))


class DistilBertEncoderLayout(PackedEncoder):
    """DistilBERT's encoder (Transformer) packing once (PackedEncoder)."""

    OUTPUT = BaseModelOutput


class BertEncoder(PackedEncoder, HFBertEncoder):
    """transformers' BertEncoder packing once (PackedEncoder)."""


# The encoder mixin of each layout in fastattn.hf.encoder_families.
_LAYOUTS = {"bert": PackedEncoder, "distilbert": DistilBertEncoderLayout}


def packed_encoder_class(family):
    """The packed subclass of the family's transformers encoder class."""
    return encoder_families.packed_class(family, encoder_families.ENCODER, _LAYOUTS, BertEncoder)


def __getattr__(name):
    # Unpickling a patched RoBERTa (say) in a new process looks its encoder's class up here.
    return encoder_families.packed_class_named(name, encoder_families.ENCODER, _LAYOUTS,
                                               BertEncoder)
