"""The BERT-style encoder families fastattn.patch takes.

transformers generates RoBERTa's, XLM-RoBERTa's, CamemBERT's, ELECTRA's and ERNIE's encoder (layer,
attention, intermediate and output modules, the encoder loop, the mask creation) from BERT's, module
for module, under each family's own class names. DistilBERT's layer computes what BERT's does
(post-LN attention and feed-forward blocks, each with its residual) from modules of other names. So
one packed layer (fastattn.nn.bert) and one packed encoder (fastattn.hf.bert_encoder) run them all,
with a layout per module naming (BERT's, DistilBERT's): fastattn makes a subclass of each family's
class on first use. What differs otherwise (embeddings, heads, ELECTRA's embedding projection) runs
before or after the encoder, untouched.
"""

from ..nn import adoption
from . import families

# transformers.models.<family> -> its PreTrainedModel, layer and encoder classes, and the layout
# of its layer's modules. fastattn's classes take these names (pickle finds them by name): a layer
# or encoder class name may stand in the table once only.
FAMILIES = {
    "bert": ("BertPreTrainedModel", "BertLayer", "BertEncoder", "bert"),
    "roberta": ("RobertaPreTrainedModel", "RobertaLayer", "RobertaEncoder", "bert"),
    "xlm_roberta": ("XLMRobertaPreTrainedModel", "XLMRobertaLayer", "XLMRobertaEncoder", "bert"),
    "camembert": ("CamembertPreTrainedModel", "CamembertLayer", "CamembertEncoder", "bert"),
    "electra": ("ElectraPreTrainedModel", "ElectraLayer", "ElectraEncoder", "bert"),
    "ernie": ("ErniePreTrainedModel", "ErnieLayer", "ErnieEncoder", "bert"),
    "distilbert": ("DistilBertPreTrainedModel", "TransformerBlock", "Transformer", "distilbert"),
}
PRETRAINED, LAYER, ENCODER, LAYOUT = range(4)


def family_of(model):
    """The family whose PreTrainedModel `model` is an instance of, or None (no import needed)."""
    return families.family_of(model, FAMILIES)


def transformers_class(family, role):
    """transformers' LAYER or ENCODER class of the family."""
    return families.transformers_class(FAMILIES, family, role)


def packed_class(family, role, mixins, bert_class):
    """fastattn's class for the family's LAYER or ENCODER: `bert_class` itself for BERT's (it is
    (mixin, transformers' BERT class)), else mixins[the family's layout] over transformers'
    class, made once in bert_class's module under transformers' class name."""
    base = transformers_class(family, role)
    if base is bert_class.__bases__[-1]:
        return bert_class
    return adoption.subclass_of(base, mixins[FAMILIES[family][LAYOUT]], bert_class.__module__)


def packed_class_named(name, role, mixins, bert_class):
    """For the module __getattr__ that unpickling in a new process reaches: packed_class of the
    family whose LAYER or ENCODER class is called `name`."""
    for family, names in FAMILIES.items():
        if names[role] == name:
            return packed_class(family, role, mixins, bert_class)
    raise AttributeError(f"module {bert_class.__module__!r} has no attribute {name!r}")
