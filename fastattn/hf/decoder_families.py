"""The GPT-2-style decoder families fastattn.patch takes: models whose blocks compute GPT-2's
pre-LN block (fastattn.nn.decoder_block). GPT-2 itself, and GPTBigCode (SantaCoder and the
StarCoder-style models: GPT-2's block with nn.Linear projections and, by default, one key/value
head). Other decoders differ in the block (GPT-Neo's local attention layers and unscaled scores,
GPT-J's rotary embeddings and parallel attention and MLP, OPT's ReLU): refused by name.
"""

import importlib

from . import families

# transformers.models.<family> -> its PreTrainedModel, block and base model classes. fastattn's
# block for the family is the class of the block's name in fastattn.nn.<family>.
FAMILIES = {
    "gpt2": ("GPT2PreTrainedModel", "GPT2Block", "GPT2Model"),
    "gpt_bigcode": ("GPTBigCodePreTrainedModel", "GPTBigCodeBlock", "GPTBigCodeModel"),
}
PRETRAINED, BLOCK, BASE_MODEL = range(3)


def family_of(model):
    """The family whose PreTrainedModel `model` is an instance of, or None (no import needed)."""
    return families.family_of(model, FAMILIES)


def transformers_class(family, role):
    """transformers' BLOCK or BASE_MODEL class of the family."""
    return families.transformers_class(FAMILIES, family, role)


def fused_block_class(family):
    """fastattn's block class for the family (a subclass of transformers' block)."""
    return getattr(importlib.import_module(f"fastattn.nn.{family}"), FAMILIES[family][BLOCK])
