"""BertLayer: transformers' BertLayer running on packed real tokens with fused kernels; the same
for the layers of the other BERT-style families (fastattn.hf.encoder_families: RoBERTa, ...,
DistilBERT's TransformerBlock through DistilBertLayout).

An encoder layer (not a decoder: no KV cache, no cross-attention) computes, on packed tokens
[T, hidden]:
    h   = LN(dropout(dense(varlen_attention(fused_qkv(x)))) + x)       attention block
    out = LN(dropout(ffn(h)) + h)                                       feed-forward block (fastattn.ffn)
with the parameters of the original submodules, so state_dict keys do not change. Decoder layers,
4D masks, and layers whose skipped submodules are hooked or replaced (nn.structure), run
transformers' own forward (with the `fastattn` attention implementation inside).
`chunk_size_feed_forward` is ignored on the fused path: chunking changes peak memory, not the
result.
"""

import torch
from torch import nn
from transformers.models.bert.modeling_bert import BertLayer as HFBertLayer

from .. import _tracing
from ..hf import encoder_families
from ..hf.attention import register
from . import adoption, structure
from .attention import attention_on_packed_qkv
from .ffn import gelu_ffn, module_gelu_approximation
from .layer_norm_residual import LayerNormResidual, can_adopt
from .packing import PackedBatch
from .projections import fusable

# A patched model unpickled in a new process (torch.load of the whole model, multiprocessing)
# imports this module for its blocks' class, and its config names attn_implementation="fastattn":
# without the registration transformers refuses the name, or, for BERT, builds no mask and padding
# is silently attended to.
register()

BACKEND, GELU = "_fastattn_backend", "_fastattn_gelu"
RECORD = "_fastattn_structure"


class PackedEncoderLayer:
    """A BERT-style encoder layer that takes padded [B, S, hidden] (packing and unpacking itself)
    or, with `packing=`, packed [T, hidden] tokens: the patched encoder packs once and hands packed
    tokens to every layer. Mixed into a subclass of a family's transformers layer class (BertLayer
    below, packed_layer_class for the others). The parts it reads are found by the methods and
    paths below, BERT's module names; DistilBertLayout gives DistilBERT's."""

    # What the packed path skips (the container modules, dropouts) or calls with the residual (the
    # LayerNorms): as patch() found them and unhooked (nn.structure). The projections it calls on
    # packed tokens (a LoRA subclass there is fine, it works token by token): unhooked.
    PACKED_PATH_SKIPS = ("attention", "attention.self", "attention.self.dropout",
                         "attention.output", "attention.output.dropout",
                         "attention.output.LayerNorm", "intermediate", "output", "output.dropout",
                         "output.LayerNorm")
    PACKED_PATH_PROJECTIONS = ("attention.self.query", "attention.self.key",
                               "attention.self.value", "attention.output.dense",
                               "intermediate.dense", "output.dense")
    ACTIVATION_PATH = "intermediate.intermediate_act_fn"

    def _self_attention(self):
        """The module holding the attention's scaling and dropout."""
        return self.attention.self

    def _heads(self):
        return self.attention.self.num_attention_heads

    def _qkv_projections(self):
        attention = self.attention.self
        return attention.query, attention.key, attention.value

    def _attention_output(self):
        """(the projection after attention, the dropout module after it or None, the LayerNorm
        after that)."""
        out = self.attention.output
        return out.dense, out.dropout, out.LayerNorm

    def _feed_forward_parts(self):
        """(fc1, the activation, fc2, the dropout module after it, the LayerNorm after that)."""
        return (self.intermediate.dense, self.intermediate.intermediate_act_fn, self.output.dense,
                self.output.dropout, self.output.LayerNorm)

    def _dropouts(self):
        """The dropout modules the packed path fuses (a None: no dropout there)."""
        return (self._self_attention().dropout, self._attention_output()[1],
                self._feed_forward_parts()[3])

    def _configured_activation(self):
        return self.attention.self.config.hidden_act

    def _is_decoder(self):
        return self.is_decoder

    def _norms(self):
        return self.attention.output.LayerNorm, self.output.LayerNorm

    @classmethod
    def adopt(cls, layer, *, backend=None):
        """Turn an existing transformers layer into this class in place. A layer whose norms
        are not plain LayerNorms stays as it is (it still runs the `fastattn` attention)."""
        if not all(can_adopt(norm) for norm in cls._norms(layer)):
            return layer
        activation = cls._feed_forward_parts(layer)[1]
        # The fused GELU only for the module transformers builds for the configured activation;
        # another (swapped in by hand, or a non-GELU config) runs as a module on packed tokens.
        approximate = module_gelu_approximation(activation, cls._configured_activation(layer))
        adoption.swap_class(layer, cls, **{BACKEND: backend, GELU: approximate})
        for norm in layer._norms():
            LayerNormResidual.adopt(norm, backend=backend)
        # transformers' path (decoder layers, 4D masks) reaches fastattn through the attention
        # interface, which reads the backend from the attention module.
        setattr(layer._self_attention(), BACKEND, backend)
        exact = cls.PACKED_PATH_SKIPS + ((cls.ACTIVATION_PATH,)
                                         if isinstance(activation, nn.Module) else ())
        try:  # after the norms' adoption: they are recorded as LayerNormResidual
            record = structure.record(layer, exact, cls.PACKED_PATH_PROJECTIONS)
            # A dropout replaced by a module the packed path cannot stand for: transformers' path.
            if any(m is not None and structure.dropout_p(m) is None for m in layer._dropouts()):
                record = None
        except AttributeError:  # a submodule removed or renamed: transformers' forward runs
            record = None
        setattr(layer, RECORD, record)
        return layer

    def release(self):
        for norm in self._norms():
            norm.release()
        self._self_attention().__dict__.pop(BACKEND, None)
        return adoption.restore_class(self, BACKEND, GELU, RECORD)

    def can_pack(self, attention_mask):
        """The fused path is exact for an encoder layer given no mask or a key padding mask (2D
        bool, what fastattn's mask hook makes), while the submodules it skips or calls on packed
        tokens are as patch() found them, unhooked (nn.structure); else transformers' path."""
        return (not self._is_decoder()
                and (attention_mask is None or (attention_mask.dim() == 2
                                                and attention_mask.dtype == torch.bool))
                and structure.intact(self, getattr(self, RECORD, None)))

    def forward(self, hidden_states, attention_mask=None, *args, packing=None, **kwargs):
        if packing is not None:
            return self.forward_packed(hidden_states, packing)
        if self.can_pack(attention_mask):
            x, packing = PackedBatch.pack(hidden_states, attention_mask)
            return packing.unpack(self.forward_packed(x, packing))
        return super().forward(hidden_states, attention_mask, *args, **kwargs)

    def forward_packed(self, x, packing):
        """x [T, hidden] packed real tokens -> [T, hidden]."""
        backend, attention = getattr(self, BACKEND), self._self_attention()
        context = attention_on_packed_qkv(
            self._qkv(x), self._heads(), packing, scale=attention.scaling,
            dropout_p=structure.dropout_p(attention.dropout) if self.training else 0.0,
            backend=backend)
        projection, dropout, norm = self._attention_output()
        h = norm(projection(context), x,
                 dropout_p=0.0 if dropout is None else structure.dropout_p(dropout))
        fc1, activation, fc2, dropout, norm = self._feed_forward_parts()
        return norm(self._feed_forward(h, fc1, activation, fc2), h,
                    dropout_p=structure.dropout_p(dropout))

    def _qkv(self, x):
        """[T, 3 * hidden]: q, k and v of the packed tokens, by one GEMM over the concatenated
        weights, or, if a projection is wrapped or hooked (PEFT's LoRA on query and value, say:
        nn.projections), by calling the three modules."""
        projections = self._qkv_projections()
        if not all(fusable(p, nn.Linear) for p in projections):
            return torch.cat([p(x) for p in projections], dim=-1)
        if x.device.type == "cpu" and _tracing.size_at_most(x.shape[0], x.shape[1] - 1,
                                                            unknown=False):
            # On the CPU, with fewer tokens than hidden units, concatenating the three outputs
            # moves fewer bytes than concatenating the weights (BERT-base, 16 tokens: 1.2 ms a
            # layer against 3.1); on GPUs one GEMM saves launches, which cost more than the copy.
            return torch.cat([nn.functional.linear(x, p.weight, p.bias) for p in projections],
                             dim=-1)
        return nn.functional.linear(x, *self._fused_qkv())

    def _fused_qkv(self):
        """(weight, bias) of one GEMM for q, k and v: the three projections concatenated on every
        call, so the original parameters (and their state_dict keys) stay and gradients reach them.
        Not kept between inference calls: a write through `.data` (EMA updates, hand-written SGD,
        weight-loading code) leaves a parameter's version counter and storage as they were, so
        no stamp could tell a kept copy is stale. The copy is 3 * hidden^2 elements a layer
        (3.5 MB at BERT-base in 16-bit: 2-3 us on an H100)."""
        projections = self._qkv_projections()
        return (torch.cat([p.weight for p in projections]),
                torch.cat([p.bias for p in projections]))

    def _feed_forward(self, h, fc1, activation, fc2):
        """fc2(activation(fc1(h))), without the dropout (fused into the LayerNorm after it)."""
        approximate = getattr(self, GELU)
        if approximate is None or not (fusable(fc1, nn.Linear) and fusable(fc2, nn.Linear)):
            return fc2(activation(fc1(h)))
        return gelu_ffn(h, fc1.weight, fc1.bias, fc2.weight, fc2.bias, approximate=approximate,
                        backend=getattr(self, BACKEND))


class DistilBertLayout(PackedEncoderLayer):
    """DistilBERT's layer (TransformerBlock) on packed tokens: BERT's computation (no dropout
    between the attention's output projection and its LayerNorm) from DistilBERT's modules."""

    PACKED_PATH_SKIPS = ("attention", "attention.dropout", "ffn", "ffn.dropout", "sa_layer_norm",
                         "output_layer_norm")
    PACKED_PATH_PROJECTIONS = ("attention.q_lin", "attention.k_lin", "attention.v_lin",
                               "attention.out_lin", "ffn.lin1", "ffn.lin2")
    ACTIVATION_PATH = "ffn.activation"

    def _self_attention(self):
        return self.attention

    def _heads(self):
        return self.attention.n_heads

    def _qkv_projections(self):
        return self.attention.q_lin, self.attention.k_lin, self.attention.v_lin

    def _attention_output(self):
        return self.attention.out_lin, None, self.sa_layer_norm

    def _feed_forward_parts(self):
        ffn = self.ffn
        return ffn.lin1, ffn.activation, ffn.lin2, ffn.dropout, self.output_layer_norm

    def _configured_activation(self):
        return self.attention.config.activation

    def _is_decoder(self):
        return False

    def _norms(self):
        return self.sa_layer_norm, self.output_layer_norm


class BertLayer(PackedEncoderLayer, HFBertLayer):
    """transformers' BertLayer on packed tokens (PackedEncoderLayer)."""


# The layer mixin of each layout in fastattn.hf.encoder_families.
_LAYOUTS = {"bert": PackedEncoderLayer, "distilbert": DistilBertLayout}


def packed_layer_class(family):
    """The packed subclass of the family's transformers layer class."""
    return encoder_families.packed_class(family, encoder_families.LAYER, _LAYOUTS, BertLayer)


def __getattr__(name):
    # Unpickling a patched RoBERTa (say) in a new process looks its layers' class up here.
    return encoder_families.packed_class_named(name, encoder_families.LAYER, _LAYOUTS, BertLayer)
