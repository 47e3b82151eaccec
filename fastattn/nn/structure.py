"""Whether a patched block may take its fused path: the submodules that path skips, or calls
differently from transformers, must still be the ones patch() found, with no hooks on them.

The fused paths compute a block from its parameters:
- BERT's packed layer never calls BertAttention, BertSelfAttention, BertSelfOutput,
  BertIntermediate, BertOutput, the activation module or the dropouts. It calls the LayerNorms with
  the residual as a second argument, and the linears on packed tokens [T, hidden], not [B, S, hidden].
- GPT-2's block never calls its MLP's activation or dropout, and calls ln_2 with the residual.
A forward hook on one of these modules (activation patching, steering, ablation, recording) would
be skipped or would see other arguments. So would a forward replaced on the instance (accelerate's
offload hooks) or a module swapped for another (a ReLU for the GELU, an RMSNorm for a LayerNorm).
The result would be silently different. Such a block runs transformers' own forward instead, with
every submodule called as transformers calls it.

A block records what patch() found (`record`); each call checks it again (`intact`). The check
walks each recorded path through `_modules`, because a submodule can be replaced after patching.
"""

from torch import nn
from torch.nn.modules import module as _module_state


# transformers 5.x installs forward hooks from this module on layers and attention modules the
# first time a model is asked for hidden states or attentions, and keeps them: they record
# outputs only during a call that asks for them. Patched BERT runs such calls through
# transformers' layer loop (fastattn/hf/bert_encoder.py), so these hooks see what they expect,
# and they must not turn the fused path off for every later call.
TRANSFORMERS_OUTPUT_CAPTURING = "transformers.utils.output_capturing"


def _user_forward_hooks(hooks):
    return bool(hooks) and any(getattr(hook, "__module__", None) != TRANSFORMERS_OUTPUT_CAPTURING
                               for hook in hooks.values())


def plain(module):
    """No hook on the module's calls (forward, pre-forward, backward, pre-backward: a backward hook
    fires only for a module that is called; transformers' output-capturing hooks aside), and its
    forward not replaced on the instance."""
    return not (_user_forward_hooks(module._forward_hooks) or module._forward_pre_hooks
                or module._backward_hooks or module._backward_pre_hooks
                or "forward" in module.__dict__)


def global_hooks():
    """Whether a global module hook is set (nn.modules.module.register_module_forward_hook and its
    kin): it applies to every module call, so to the calls a fused path skips."""
    return bool(_module_state._global_forward_hooks or _module_state._global_forward_pre_hooks
                or _module_state._global_backward_hooks
                or _module_state._global_backward_pre_hooks)


def _split(path):
    return tuple(path.split("."))


def record(block, exact_paths, unhooked_paths=()):
    """What `intact` checks. exact_paths: submodules that must stay the same object of the same
    class, unhooked (those the fused path skips or calls differently). unhooked_paths: submodules
    it calls on other shapes but as modules (projections, which may be a LoRA subclass): any
    module there, unhooked."""
    exact = tuple((_split(path), block.get_submodule(path)) for path in exact_paths)
    return (tuple((names, module, type(module)) for names, module in exact),
            tuple(_split(path) for path in unhooked_paths))


def intact(block, recorded):
    """True when the fused path computes what transformers' forward would: a record (None: the
    block's structure could not be recorded), no global hook, every exact path still holds the
    recorded module (same object, same class), and every module on a recorded path is plain."""
    if recorded is None or global_hooks():
        return False
    exact, unhooked = recorded
    # Runs on every block call (16 paths a BERT layer): the walks written out, no helper calls.
    try:
        for names, module, cls in exact:
            current = block
            for name in names:
                current = current._modules[name]
            if current is not module or type(current) is not cls or not plain(current):
                return False
        for names in unhooked:
            current = block
            for name in names:
                current = current._modules[name]
            if not plain(current):
                return False
    except (KeyError, AttributeError):  # a submodule removed, or set to None
        return False
    return True


def dropout_p(module):
    """The drop probability of a dropout module a fused path skips (and fuses): an nn.Dropout's p,
    0 for an nn.Identity (dropout stripped for inference), None for any other module, whose effect
    the fused path cannot stand for (such a block runs transformers' forward)."""
    if isinstance(module, nn.Dropout):
        return module.p
    if isinstance(module, nn.Identity):
        return 0.0
    return None
