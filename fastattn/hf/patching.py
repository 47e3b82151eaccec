"""fastattn.patch / fastattn.unpatch for Hugging Face BERT-style encoders (BERT and the families
built from its code: fastattn.hf.encoder_families) and GPT-2-style decoders (GPT-2, GPTBigCode:
fastattn.hf.decoder_families).

patch() works in place and keeps every parameter where it was: it registers the `fastattn`
attention implementation (attention function and mask function), switches the model to it, and
turns the existing blocks into fastattn's subclasses (see fastattn.nn.adoption), as well as an
output projection onto a vocabulary of unaligned size (GPT2's LM head, BERT's MLM decoder) into
one that runs on padded rows (fastattn.nn.vocab_projection); a causal LM computes its loss
without a float32 copy of the logits (fastattn.hf.loss). So state_dict keys, isinstance checks,
hooks, output_hidden_states and gradient checkpointing behave as before, and a model saved after
patching loads in plain transformers, and the reverse.
"""

import functools
import weakref

from .._dispatch import BACKENDS
from ..nn import adoption, vocab_projection
from . import decoder_families, encoder_families, loss

NAME = "fastattn"
ORIGINAL_ATTN = "_fastattn_original_attn_implementation"
SUPPORTED = ("BertModel and its task heads (BertFor...), the models and heads of the other "
             "BERT-style encoder families (RoBERTa, XLM-RoBERTa, CamemBERT, ELECTRA, ERNIE, "
             "DistilBERT), GPT2Model and its heads (GPT2LMHeadModel, GPT2For...), "
             "GPTBigCodeModel and its heads (GPTBigCodeForCausalLM, ...)")


def _family(model):
    """The adopt function for the model's architecture, or None for anything else."""
    try:
        # Whether transformers is there at all (the families are found without imports).
        from transformers.models.bert.modeling_bert import BertPreTrainedModel  # noqa: F401
    except ImportError as error:  # an optional dependency: the ops work without it
        raise ImportError("fastattn.patch needs Hugging Face transformers>=5.4,<6 (pip install "
                          f"'fastattn[hf]'); importing it failed: {error}") from error

    family = encoder_families.family_of(model)
    if family is not None:
        return functools.partial(_adopt_encoder, family)
    family = decoder_families.family_of(model)
    if family is not None:
        return functools.partial(_adopt_decoder, family)
    return None


def _unsupported(model):
    return TypeError(f"fastattn.patch: unsupported model {type(model).__module__}."
                     f"{type(model).__name__}, which contains no BERT-style or GPT-2-style model "
                     "either; "
                     f"fastattn.patch supports Hugging Face {SUPPORTED}, and modules that hold "
                     "them (an EncoderDecoderModel, a wrapper of your own)")


def supported_parts(module):
    """The outermost BERT-style and GPT-2-style models inside `module` (a container such as an
    EncoderDecoderModel or a user's wrapper), in the order of named_modules."""
    parts, found = [], ()
    for name, sub in module.named_modules():
        if found and any(name.startswith(prefix) for prefix in found):
            continue  # inside a model already found: its blocks are that model's to patch
        if _family(sub) is not None:
            parts.append(sub)
            found += (name + ".",)
    return parts


def _check_head_dim(model, backend):
    """A head dim the triton kernels are not built for runs on the cuda or torch backend under the
    automatic choice; a model patched onto triton by name is refused up front rather than in the
    middle of a forward."""
    from ..ops.attention import TRITON_HEAD_DIMS, triton_head_dim_reason

    config = model.config
    if config.hidden_size % config.num_attention_heads:
        raise ValueError(f"fastattn.patch: {type(model).__name__}'s hidden_size "
                         f"{config.hidden_size} is not a multiple of its "
                         f"{config.num_attention_heads} heads")
    head_dim = config.hidden_size // config.num_attention_heads
    if backend == "triton" and head_dim not in TRITON_HEAD_DIMS:
        raise ValueError(f"fastattn.patch: backend 'triton' cannot run {type(model).__name__}'s "
                         f"attention: {triton_head_dim_reason(head_dim)}")


def _adopt_encoder(family, model, backend):
    from ..nn.bert import packed_layer_class
    from .bert_encoder import packed_encoder_class

    layer_class = encoder_families.transformers_class(family, encoder_families.LAYER)
    encoder_class = encoder_families.transformers_class(family, encoder_families.ENCODER)
    for module in model.modules():
        if isinstance(module, layer_class):
            packed_layer_class(family).adopt(module, backend=backend)
        elif isinstance(module, encoder_class):
            packed_encoder_class(family).adopt(module)


def _adopt_decoder(family, model, backend):
    from ..nn.layer_norm_residual import LayerNormResidual, can_adopt

    block_class = decoder_families.transformers_class(family, decoder_families.BLOCK)
    base_model_class = decoder_families.transformers_class(family, decoder_families.BASE_MODEL)
    fused_block_class = decoder_families.fused_block_class(family)
    for module in model.modules():
        if isinstance(module, block_class):
            fused_block_class.adopt(module, backend=backend)
        elif isinstance(module, base_model_class) and can_adopt(module.ln_f):
            LayerNormResidual.adopt(module.ln_f, backend=backend)


class _ConfigClaims:
    """The patched models of each config object, and the attention implementation the config had
    before the first of them was patched.

    Models built from one config object share it (BERT2BERT's halves, two models made from one
    config), and set_attn_implementation writes to it. Patched one call at a time, the second model
    would otherwise find "fastattn" in the config and record that as its original; unpatched one
    at a time, the first would switch the config back under the second, still patched one. So the
    config's original is kept once, and the config goes back to it when the last of its patched
    models is unpatched. A model this process did not patch (unpickled patched) has no claim: its
    unpatch restores what the model recorded."""

    def __init__(self):
        self._entries = {}  # id(config) -> [weakref to the config, original, patched models]

    def _entry(self, config):
        entry = self._entries.get(id(config))
        return entry if entry is not None and entry[0]() is config else None

    def claim(self, config, original):
        """One more patched model of `config`; returns the config's original implementation."""
        entry = self._entry(config)
        if entry is None:
            key = id(config)

            def forget(ref):
                if self._entries.get(key, [None])[0] is ref:
                    del self._entries[key]

            entry = self._entries[key] = [weakref.ref(config, forget), original, 0]
        entry[2] += 1
        return entry[1]

    def release(self, config):
        """One patched model of `config` fewer: True when none is left (restore the config)."""
        entry = self._entry(config)
        if entry is None:
            return True
        entry[2] -= 1
        if entry[2] > 0:
            return False
        del self._entries[id(config)]
        return True


_config_claims = _ConfigClaims()


def _set_attn_implementation(model, name):
    # PreTrainedModel.set_attn_implementation validates the name and reaches sub-configs; a model
    # without it (not expected in 5.x) gets the config attribute set directly.
    if hasattr(model, "set_attn_implementation"):
        model.set_attn_implementation(name)
    else:
        model.config._attn_implementation = name


def is_patched(model):
    return hasattr(model, ORIGINAL_ATTN)


def patch(model, *, backend=None):
    """Run a Hugging Face BERT-style or GPT-2-style model on fastattn's kernels, in place; returns
    the model.

    model: a BertModel (or the base model of another BERT-style family: RobertaModel,
    XLMRobertaModel, CamembertModel, ElectraModel, ErnieModel, DistilBertModel), a GPT2Model or
    GPTBigCodeModel, one of their task heads, or any module that holds such models (each
    outermost one inside it is patched: both halves of a BERT2GPT2 EncoderDecoderModel).
    backend: a fastattn backend name for every op in the model, or None for the automatic choice.
    Patching a patched model again only changes its backend.
    """
    if backend is not None and backend not in BACKENDS:
        raise ValueError(f"fastattn.patch: unknown backend {backend!r}; expected None or one of "
                         f"{', '.join(BACKENDS)}")
    if _family(model) is not None:
        return _patch_model(model, backend)
    parts = supported_parts(model)
    if not parts:
        raise _unsupported(model)
    for part in parts:  # head dims first: a refused part leaves nothing half-patched
        _check_head_dim(part, backend)
    done = []
    try:
        for part in parts:
            patched_before = is_patched(part)
            _patch_model(part, backend)
            if not patched_before:
                done.append(part)
    except BaseException:
        for part in done:
            unpatch(part)
        raise
    return model


def _patch_model(model, backend):
    """patch() of one BERT-style or GPT-2-style model."""
    adopt = _family(model)
    _check_head_dim(model, backend)
    from .attention import register

    register()
    patched_before = is_patched(model)
    if not patched_before:
        # A model inside this one patched on its own (a head's base model: the same config) holds
        # the implementation from before fastattn; from now on this model holds it.
        inner = [m for m in model.modules() if m is not model and is_patched(m)]
        original = (getattr(inner[0], ORIGINAL_ATTN) if inner
                    else model.config._attn_implementation)
        for module in inner:
            delattr(module, ORIGINAL_ATTN)
            _config_claims.release(module.config)
        setattr(model, ORIGINAL_ATTN, _config_claims.claim(model.config, original))
    try:
        _set_attn_implementation(model, NAME)
        adopt(model, backend)
        vocab_projection.adopt_output_projection(model)
        loss.adopt_loss(model, backend)
    except BaseException:
        # No half-patched model: what was swapped goes back before the error reaches the caller.
        if not patched_before:
            unpatch(model)
        raise
    return model


def unpatch(model):
    """Undo patch(): the original blocks' classes and attention implementation, in `model` or in
    the models it holds; returns the model. Models that share one config object share its
    attention implementation: it goes back when the last of them is unpatched (until then a
    model unpatched alone runs its own blocks with fastattn's attention function, as the config
    says)."""
    if not is_patched(model):  # models inside it may have been patched (a container's parts)
        for module in list(model.modules()):
            if module is not model and is_patched(module):
                unpatch(module)
        return model
    # Blocks release their own norms first; modules() is listed before anything changes.
    for module in list(model.modules()):
        if adoption.is_adopted(module):
            module.release()
    loss.release_loss(model)
    original = getattr(model, ORIGINAL_ATTN)
    delattr(model, ORIGINAL_ATTN)
    if _config_claims.release(model.config):
        _set_attn_implementation(model, original)
    return model
