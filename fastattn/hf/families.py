"""Finding a model's architecture family and its transformers classes from a family table
(fastattn.hf.encoder_families, decoder_families: family -> class names, the PreTrainedModel's
first), without importing any family's transformers module to find the family."""

import importlib

PRETRAINED = 0  # every table's first name: the family's PreTrainedModel class


def modeling_module(family):
    """transformers' module of a family: transformers.models.<family>.modeling_<family>."""
    return f"transformers.models.{family}.modeling_{family}"


def family_of(model, table):
    """The family whose PreTrainedModel `model` is an instance of, or None. Looked up by class
    name and module in the model's MRO: no family's module is imported to answer."""
    for cls in type(model).__mro__:
        for family, names in table.items():
            if cls.__name__ == names[PRETRAINED] and cls.__module__ == modeling_module(family):
                return family
    return None


def transformers_class(table, family, role):
    """transformers' class named table[family][role]."""
    return getattr(importlib.import_module(modeling_module(family)), table[family][role])
