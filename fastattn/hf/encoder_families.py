"""The BERT-style encoder families fastattn.patch takes.

transformers generates RoBERTa's, XLM-RoBERTa's, CamemBERT's and ELECTRA's encoder (layer,
attention, intermediate and output modules, the encoder loop, the mask creation) from BERT's, module
for module, under each family's own class names. So one packed layer (fastattn.nn.bert) and one
packed encoder (fastattn.hf.bert_encoder) run them all: fastattn makes a subclass of each family's
class on first use. What differs between the families (embeddings, heads, ELECTRA's embedding
projection) runs before or after the encoder, untouched.
"""

import importlib

from ..nn import adoption

# transformers.models.<family> -> the prefix of its class names.
FAMILIES = {"bert": "Bert", "roberta": "Roberta", "xlm_roberta": "XLMRoberta",
            "camembert": "Camembert", "electra": "Electra"}


def _modeling_module(family):
    return f"transformers.models.{family}.modeling_{family}"


def family_of(model):
    """The family whose PreTrainedModel `model` is an instance of, or None. Looked up by class
    name and module in the model's MRO: no family's module is imported to answer."""
    for cls in type(model).__mro__:
        for family, prefix in FAMILIES.items():
            if cls.__name__ == prefix + "PreTrainedModel" and cls.__module__ == _modeling_module(
                    family):
                return family
    return None


def transformers_class(family, suffix):
    """transformers' class `<prefix><suffix>` of the family (suffix "Layer" or "Encoder")."""
    return getattr(importlib.import_module(_modeling_module(family)), FAMILIES[family] + suffix)


def family_named(class_name, suffix):
    """The family whose `<prefix><suffix>` is `class_name`, or None."""
    for family, prefix in FAMILIES.items():
        if class_name == prefix + suffix:
            return family
    return None


def packed_subclass(transformers_class, bert_class):
    """fastattn's class for a family's `transformers_class`: `bert_class` itself for BERT's (it is
    (mixin, transformers' BERT class)), else the same mixin over `transformers_class`, made once in
    bert_class's module under transformers_class's name."""
    mixin, bert_base = bert_class.__bases__
    if transformers_class is bert_base:
        return bert_class
    return adoption.subclass_of(transformers_class, mixin, bert_class.__module__)


def packed_subclass_named(name, suffix, bert_class):
    """For the module __getattr__ that unpickling in a new process reaches: packed_subclass of the
    family class called `name` (suffix "Layer" or "Encoder")."""
    family = family_named(name, suffix)
    if family is None:
        raise AttributeError(f"module {bert_class.__module__!r} has no attribute {name!r}")
    return packed_subclass(transformers_class(family, suffix), bert_class)
