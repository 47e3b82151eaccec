"""Whether a block may read a projection's parameters straight into a fused kernel.

The fused paths pass a projection's weight and bias to one kernel (BERT's query, key and value as
one GEMM, the FFN's two linears) instead of calling the module. That is exact only while the
module computes nothing but its linear map: PEFT's LoRA layers (which replace `query` and `value`,
BERT's default LoRA targets, or GPT2's `c_attn`, `c_fc`), quantised linears and forward hooks all
change what the module returns while `.weight` still reads the base weight, and so does a forward
replaced on the instance (accelerate's hooks, which also bring offloaded weights in, or a hand-made
wrapper). Reading the weight of such a module would silently drop the adapter, so the blocks call
it instead.
"""

from .structure import global_hooks, plain


def fusable(module, expected_type):
    """True when `module` is exactly `expected_type` (no subclass or wrapper), its forward is not
    replaced on the instance (accelerate's offload hooks do that, as hand-made wrappers do), and no
    hook, its own or a global one, expects it to be called (nn.structure.plain)."""
    return type(module) is expected_type and plain(module) and not global_hooks()
