"""fastattn.nn.structure: what makes a recorded block intact (the check the patched blocks run on
every call before their fused path)."""

import pytest
import torch
from torch import nn

from fastattn.nn import structure


def _block():
    block = nn.Module()
    block.inner = nn.Module()
    block.inner.act = nn.GELU()
    block.proj = nn.Linear(4, 4)
    return block


def _recorded(block):
    return structure.record(block, ["inner", "inner.act"], ["proj"])


def test_an_untouched_block_is_intact():
    block = _block()
    assert structure.intact(block, _recorded(block))


def test_no_record_is_never_intact():
    assert not structure.intact(_block(), None)


@pytest.mark.parametrize("kind", ["forward", "forward_pre", "full_backward", "full_backward_pre"])
@pytest.mark.parametrize("path", ["inner", "inner.act", "proj"])
def test_a_hook_on_a_recorded_module_breaks_it_until_removed(path, kind):
    block = _block()
    recorded = _recorded(block)
    module = block.get_submodule(path)
    handle = getattr(module, f"register_{kind}_hook")(lambda *args: None)
    assert not structure.intact(block, recorded)
    handle.remove()
    assert structure.intact(block, recorded)


def test_a_global_hook_breaks_it():
    block = _block()
    recorded = _recorded(block)
    handle = nn.modules.module.register_module_forward_hook(lambda *args: None)
    try:
        assert not structure.intact(block, recorded)
    finally:
        handle.remove()
    assert structure.intact(block, recorded)


def test_a_forward_replaced_on_the_instance_breaks_it():
    block = _block()
    recorded = _recorded(block)
    block.inner.act.forward = lambda x: x
    assert not structure.intact(block, recorded)


@pytest.mark.parametrize("change", [
    lambda b: setattr(b.inner, "act", nn.ReLU()),           # another module
    lambda b: setattr(b.inner, "act", nn.GELU()),           # an equal one, not the recorded one
    lambda b: setattr(b.inner.act, "__class__", nn.SiLU),   # the class swapped in place
    lambda b: setattr(b, "inner", nn.Module()),              # the path gone
    lambda b: setattr(b.inner, "act", None),                 # set to None
], ids=["other-module", "equal-module", "class-swapped", "path-removed", "none"])
def test_a_replaced_exact_module_breaks_it(change):
    block = _block()
    recorded = _recorded(block)
    change(block)
    assert not structure.intact(block, recorded)


def test_an_unhooked_path_may_hold_another_module():
    """Projections the fused path calls as modules: a LoRA-like subclass put there is fine."""
    block = _block()
    recorded = _recorded(block)
    block.proj = type("LoraLike", (nn.Linear,), {})(4, 4)
    assert structure.intact(block, recorded)
    del block.proj
    assert not structure.intact(block, recorded)


def test_transformers_output_capturing_hooks_are_not_user_hooks():
    """transformers keeps these on layers and attention modules after a call that asked for
    hidden states or attentions; they record nothing on other calls."""
    block = _block()
    recorded = _recorded(block)

    def capturing_hook(module, args, output):
        return None

    capturing_hook.__module__ = structure.TRANSFORMERS_OUTPUT_CAPTURING
    block.inner.register_forward_hook(capturing_hook)
    assert structure.intact(block, recorded)
    block.inner.register_forward_hook(lambda *args: None)
    assert not structure.intact(block, recorded)
