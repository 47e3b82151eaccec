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

from torch.nn.modules import module as _module_state


def fusable(module, expected_type):
    """True when `module` is exactly `expected_type` (no subclass or wrapper), its forward is not
    replaced on the instance (accelerate's offload hooks do that, as hand-made wrappers do), and no
    forward hook, its own or a global one, can change its output (as nn.structure checks, written
    out: this runs several times a block call)."""
    return (type(module) is expected_type and "forward" not in module.__dict__
            and not module._forward_hooks and not module._forward_pre_hooks
            and not _module_state._global_forward_hooks
            and not _module_state._global_forward_pre_hooks)
