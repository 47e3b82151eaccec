"""fastattn.patch / fastattn.unpatch for Hugging Face BERT and GPT-2 models.

patch() works in place and keeps every parameter where it was: it registers the `fastattn`
attention implementation (attention function and mask function), switches the model to it, and
turns the existing blocks into fastattn's subclasses (see fastattn.nn.adoption), as well as an
output projection onto a vocabulary of unaligned size (GPT2's LM head, BERT's MLM decoder) into
one that runs on padded rows (fastattn.nn.vocab_projection); a causal LM computes its loss
without a float32 copy of the logits (fastattn.hf.loss). So state_dict keys, isinstance checks,
hooks, output_hidden_states and gradient checkpointing behave as before, and a model saved after
patching loads in plain transformers, and the reverse.
"""

from .._dispatch import BACKENDS
from ..nn import adoption, vocab_projection
from . import loss

NAME = "fastattn"
ORIGINAL_ATTN = "_fastattn_original_attn_implementation"
SUPPORTED = ("BertModel and its task heads (BertFor...), GPT2Model and its heads "
             "(GPT2LMHeadModel, GPT2For...)")


def _family(model):
    """The adopt function for the model's architecture, or None for anything else."""
    try:
        from transformers.models.bert.modeling_bert import BertPreTrainedModel
        from transformers.models.gpt2.modeling_gpt2 import GPT2PreTrainedModel
    except ImportError as error:  # an optional dependency: the ops work without it
        raise ImportError("fastattn.patch needs Hugging Face transformers>=5.4,<6 (pip install "
                          f"'fastattn[hf]'); importing it failed: {error}") from error

    if isinstance(model, BertPreTrainedModel):
        return _adopt_bert
    if isinstance(model, GPT2PreTrainedModel):
        return _adopt_gpt2
    return None


def _unsupported(model):
    return TypeError(f"fastattn.patch: unsupported model {type(model).__module__}."
                     f"{type(model).__name__}, which contains no BERT or GPT-2 model either; "
                     f"fastattn.patch supports Hugging Face {SUPPORTED}, and modules that hold "
                     "them (an EncoderDecoderModel, a wrapper of your own)")


def supported_parts(module):
    """The outermost BERT and GPT-2 models inside `module` (a container such as an
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


def _adopt_bert(model, backend):
    from transformers.models.bert.modeling_bert import BertEncoder as HFBertEncoder
    from transformers.models.bert.modeling_bert import BertLayer as HFBertLayer

    from ..nn.bert import BertLayer
    from .bert_encoder import BertEncoder

    for module in model.modules():
        if isinstance(module, HFBertLayer):
            BertLayer.adopt(module, backend=backend)
        elif isinstance(module, HFBertEncoder):
            BertEncoder.adopt(module)


def _adopt_gpt2(model, backend):
    from transformers.models.gpt2.modeling_gpt2 import GPT2Block as HFGPT2Block
    from transformers.models.gpt2.modeling_gpt2 import GPT2Model

    from ..nn.gpt2 import GPT2Block
    from ..nn.layer_norm_residual import LayerNormResidual, can_adopt

    for module in model.modules():
        if isinstance(module, HFGPT2Block):
            GPT2Block.adopt(module, backend=backend)
        elif isinstance(module, GPT2Model) and can_adopt(module.ln_f):
            LayerNormResidual.adopt(module.ln_f, backend=backend)


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
    """Run a Hugging Face BERT or GPT-2 model on fastattn's kernels, in place; returns the model.

    model: a BertModel or GPT2Model, one of their task heads, or any module that holds such models
    (each outermost one inside it is patched: both halves of a BERT2GPT2 EncoderDecoderModel).
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
    # Read before any part is patched: parts may share one config (two encoders built from it).
    originals = [part.config._attn_implementation for part in parts]
    done = []
    try:
        for part, original in zip(parts, originals):
            patched_before = is_patched(part)
            _patch_model(part, backend, original)
            if not patched_before:
                done.append(part)
    except BaseException:
        for part in done:
            unpatch(part)
        raise
    return model


def _patch_model(model, backend, original=None):
    """patch() of one BERT or GPT-2 model; `original`: its attention implementation before
    fastattn, if known better than from its config now."""
    adopt = _family(model)
    _check_head_dim(model, backend)
    from .attention import register

    register()
    patched_before = is_patched(model)
    if not patched_before:
        # A model inside this one patched on its own (a head's base model: the same config) holds
        # the implementation from before fastattn; from now on this model holds it.
        inner = [m for m in model.modules() if m is not model and is_patched(m)]
        if inner:
            original = getattr(inner[0], ORIGINAL_ATTN)
        elif original is None:
            original = model.config._attn_implementation
        for module in inner:
            delattr(module, ORIGINAL_ATTN)
        setattr(model, ORIGINAL_ATTN, original)
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
    the models it holds; returns the model."""
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
    _set_attn_implementation(model, getattr(model, ORIGINAL_ATTN))
    delattr(model, ORIGINAL_ATTN)
    return model
