"""Drop-in modules built on the fastattn ops.

`LayerNormResidual`, `GeluFFN` and `SelfAttention` need only torch. `BertLayer`, `GPT2Block` and
`GPTBigCodeBlock` subclass transformers' blocks, so they are imported on first use: `import
fastattn` must not require transformers.
"""

from .attention import SelfAttention
from .ffn import GeluFFN
from .layer_norm_residual import LayerNormResidual
from .packing import PackedBatch

_TRANSFORMERS_BLOCKS = {"BertLayer": ".bert", "GPT2Block": ".gpt2",
                        "GPTBigCodeBlock": ".gpt_bigcode"}

__all__ = ["BertLayer", "GPT2Block", "GPTBigCodeBlock", "GeluFFN", "LayerNormResidual",
           "PackedBatch", "SelfAttention"]


def __getattr__(name):
    if name in _TRANSFORMERS_BLOCKS:
        import importlib

        return getattr(importlib.import_module(_TRANSFORMERS_BLOCKS[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
