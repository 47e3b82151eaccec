"""Patched models whose blocks carry hooks or swapped submodules, against the unpatched models with
the same hooks and swaps (cpu and gpu tiers).

The fused paths skip some submodules (BERT's attention and FFN containers, the activation, the
dropouts) and call others differently (the LayerNorms with the residual, BERT's linears on packed
tokens). A hook there (activation patching, steering, ablation, recording), a forward replaced on
the instance (accelerate's offload hooks) or a module swapped for another must still take effect:
such a block runs transformers' own forward (fastattn/nn/structure.py). Before that, hooks on the
skipped modules were silently ignored, and a model with an RMSNorm swapped in failed to patch and
was left half-patched.
"""

import copy

import torch
from torch import nn
from transformers import BertModel, GPT2LMHeadModel

import fastattn
import hf_models
from numerics import assert_grad_numerics, assert_numerics

BERT_HOOK_TARGETS = ("encoder.layer.1", "encoder.layer.1.attention",
                     "encoder.layer.1.attention.self", "encoder.layer.1.attention.self.query",
                     "encoder.layer.1.attention.output", "encoder.layer.1.attention.output.dense",
                     "encoder.layer.1.attention.output.LayerNorm", "encoder.layer.1.intermediate",
                     "encoder.layer.1.intermediate.intermediate_act_fn", "encoder.layer.1.output",
                     "encoder.layer.1.output.dense", "encoder.layer.1.output.LayerNorm")
GPT2_HOOK_TARGETS = ("transformer.h.1", "transformer.h.1.ln_1", "transformer.h.1.attn",
                     "transformer.h.1.ln_2", "transformer.h.1.mlp", "transformer.h.1.mlp.c_fc",
                     "transformer.h.1.mlp.act", "transformer.h.1.mlp.dropout", "transformer.ln_f")
# GPTBigCode's block has GPT-2's module names (nn.Linear projections): the same targets.
GPT_BIGCODE_HOOK_TARGETS = ("transformer.h.1.ln_2", "transformer.h.1.mlp.c_fc",
                            "transformer.h.1.mlp.act", "transformer.h.1.mlp.dropout")
MODELS = {"bert": (BertModel, hf_models.bert_config, "holes"),
          "gpt2": (GPT2LMHeadModel, hf_models.gpt2_config, "left"),
          "gpt_bigcode": (hf_models.decoder_class("gpt_bigcode"),
                          lambda: hf_models.decoder_config("gpt_bigcode"), "left")}


def scale_output(module, args, output):
    """An output-changing hook (as steering or ablation hooks are): the first output halved."""
    if isinstance(output, tuple):
        return (output[0] * 0.5,) + output[1:]
    return output * 0.5


def scale_input(module, args):
    return (args[0] * 0.5,) + args[1:]


def _inputs(pattern, device, batch=3, seqlen=9):
    ids, mask = hf_models.input_ids(batch, seqlen), hf_models.attention_mask(batch, seqlen, pattern)
    return ids.to(device), mask.to(device)


def check_same(models, pattern, device, dtype):
    """patched, ref, eager (hf_models.variants order) give the same real-token outputs."""
    ids, mask = _inputs(pattern, device)
    with torch.no_grad():
        outs = [m(ids, attention_mask=mask)[0] for m in models]
    real = mask.bool()
    assert_numerics("output", *(o[real] for o in outs))


def surgery_variants(kind, device, dtype, backend, change=None):
    """(patched, ref, eager) of the tiny model, `change` applied before patching."""
    model_class, config, _pattern = MODELS[kind]
    model = hf_models.make_model(model_class, config())
    if change is not None:
        change(model)
    ref, eager, patched = hf_models.variants(model, device, dtype, backend)
    return patched, ref, eager


def check_hook(kind, target, pre, device, dtype, backend):
    """A forward hook (or pre-hook) that changes what `target` returns (or takes), on the patched
    and the unpatched models: the same outputs."""
    models = surgery_variants(kind, device, dtype, backend)
    for m in models:
        module = m.get_submodule(target)
        if pre:
            module.register_forward_pre_hook(scale_input)
        else:
            module.register_forward_hook(scale_output)
    check_same(models, MODELS[kind][2], device, dtype)


def check_backward_hook(kind, target, device, dtype, backend):
    """A full backward hook that changes the gradient `target` passes back (as gradient clipping or
    per-module gradient hooks do): fires in the patched model too, and every parameter's gradient
    matches the unpatched model's with the same hook (a skipped module's hook never fired)."""
    ids, mask = _inputs(MODELS[kind][2], device)
    real = mask.bool()
    grads = []
    for m in surgery_variants(kind, device, dtype, backend):
        m.train()  # no dropout in the test configs
        m.get_submodule(target).register_full_backward_hook(
            lambda module, grad_input, grad_output: tuple(
                None if g is None else g * 0.5 for g in grad_input))
        output = m(ids, attention_mask=mask)[0][real]
        weights = torch.linspace(-1, 1, output.numel(), device=device).reshape(output.shape)
        params = [(n, p) for n, p in m.named_parameters() if p.requires_grad]
        values = torch.autograd.grad((output * weights.to(output.dtype)).sum(),
                                     [p for _, p in params], allow_unused=True)
        grads.append({n: g for (n, _), g in zip(params, values) if g is not None})
    assert grads[0].keys() == grads[1].keys()
    for name in grads[0]:
        assert_grad_numerics(f"grad {name}", grads[0][name], grads[1][name], grads[2][name])


def check_recorded_shapes(kind, target, device, dtype, backend):
    """A hook that records what `target` returns sees the shapes it sees in the unpatched model
    (BERT's packed path would hand it [tokens, hidden])."""
    ids, mask = _inputs(MODELS[kind][2], device)
    shapes = []
    for m in surgery_variants(kind, device, dtype, backend)[::2]:  # patched, eager
        seen = []
        m.get_submodule(target).register_forward_hook(
            lambda module, args, output, seen=seen: seen.append(
                tuple((output[0] if isinstance(output, tuple) else output).shape)))
        with torch.no_grad():
            m(ids, attention_mask=mask)
        shapes.append(seen)
    assert shapes[0] == shapes[1], f"patched saw {shapes[0]}, unpatched {shapes[1]}"


def swap(target, make):
    """A change that replaces submodule `target` (dotted path) by make()."""
    def change(model):
        parent, _, name = target.rpartition(".")
        setattr(model.get_submodule(parent), name, make())
    return change


def check_swapped_module(kind, target, make, after_patch, device, dtype, backend):
    """`target` replaced by make() (a ReLU for the GELU, an RMSNorm or a LayerNorm without bias for
    a LayerNorm), before patching or after: patch() works and the patched model computes what the
    unpatched one with the same replacement computes."""
    change = swap(target, make)
    if after_patch:
        models = surgery_variants(kind, device, dtype, backend)
        for m in models:
            torch.manual_seed(1)  # the same fresh parameters in each
            change(m)
            m.to(device, next(m.parameters()).dtype)
    else:
        torch.manual_seed(1)
        models = surgery_variants(kind, device, dtype, backend, change)
    check_same(models, MODELS[kind][2], device, dtype)


def wrap_forward_like_accelerate(module):
    """What accelerate's add_hook_to_module does: the bound forward kept as _old_forward and the
    instance's forward replaced by one that calls it (here with nothing around it)."""
    module._old_forward = module.forward

    def forward(*args, **kwargs):
        return module._old_forward(*args, **kwargs)

    module.forward = forward


def check_accelerate_style_wrappers(kind, device, dtype, backend):
    """Every module with parameters wrapped before patching, as accelerate's offload hooks are:
    its captured forward is the original class's, so the fused paths' calls with a residual
    argument would fail; the wrapped blocks run transformers' forward."""
    def wrap_all(model):
        for module in model.modules():
            if next(module.parameters(recurse=False), None) is not None:
                wrap_forward_like_accelerate(module)

    model_class, config, pattern = MODELS[kind]
    model = hf_models.make_model(model_class, config())
    # Wrapped after copying (not through surgery_variants' change): deepcopy keeps a closure as
    # it is, so a copy's wrapper would call the original module's forward.
    ref, eager, patched = (copy.deepcopy(model).to(device, t) for t in
                           (torch.float64, dtype, dtype))
    for m in (ref, eager, patched):
        wrap_all(m)
    fastattn.patch(patched, backend=backend)
    check_same((patched, ref, eager), pattern, device, dtype)


class RMSNormLike(nn.Module):
    """A norm that is no nn.LayerNorm (as nn.RMSNorm, which torch 2.11 has, is not either)."""

    def __init__(self, size):
        super().__init__()
        self.weight = nn.Parameter(torch.rand(size) + 0.5)

    def forward(self, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-6) * self.weight
