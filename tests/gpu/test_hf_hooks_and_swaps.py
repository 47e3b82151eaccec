"""Hooks on, and replacements of, the submodules the fused paths skip: the patched model on a GPU
(every backend, bfloat16) computes what the unpatched one with the same hooks computes
(tests/hf_surgery.py; the cpu tier covers every target)."""

import pytest
import torch
from torch import nn

import hf_surgery

BF16 = torch.bfloat16
HOOKS = [("bert", "encoder.layer.1.intermediate", False), ("bert", "encoder.layer.1", False),
         ("gpt2", "transformer.h.1.mlp.act", False), ("gpt2", "transformer.h.1.ln_2", True)]
SWAPS = [("bert", "encoder.layer.1.intermediate.intermediate_act_fn", nn.ReLU),
         ("bert", "encoder.layer.1.output.LayerNorm", lambda: hf_surgery.RMSNormLike(64)),
         ("gpt2", "transformer.h.1.mlp.act", nn.ReLU),
         ("gpt2", "transformer.h.1.ln_2", lambda: hf_surgery.RMSNormLike(64))]


@pytest.mark.parametrize("kind,target,pre", HOOKS, ids=[f"{k}:{t}:{'pre' if p else 'post'}"
                                                        for k, t, p in HOOKS])
def test_hooks_take_effect(device, backend, kind, target, pre):
    hf_surgery.check_hook(kind, target, pre, device, BF16, backend)


@pytest.mark.parametrize("after_patch", [False, True], ids=["before-patch", "after-patch"])
@pytest.mark.parametrize("kind,target,make", SWAPS, ids=[f"{k}:{t}" for k, t, _ in SWAPS])
def test_swapped_modules_take_effect(device, backend, kind, target, make, after_patch):
    hf_surgery.check_swapped_module(kind, target, make, after_patch, device, BF16, backend)


@pytest.mark.parametrize("kind", ["bert", "gpt2"])
def test_accelerate_style_forward_wrappers(device, backend, kind):
    hf_surgery.check_accelerate_style_wrappers(kind, device, BF16, backend)


@pytest.mark.parametrize("kind,target", [("bert", "encoder.layer.1.intermediate"),
                                         ("gpt2", "transformer.h.1.mlp.act")])
def test_backward_hooks_take_effect(device, backend, kind, target):
    hf_surgery.check_backward_hook(kind, target, device, BF16, backend)
