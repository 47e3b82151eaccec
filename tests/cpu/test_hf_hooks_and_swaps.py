"""Patched models with hooks on, or replacements of, the submodules the fused paths skip or call
differently: the same outputs as the unpatched model with the same hooks (tests/hf_surgery.py).
Also: which path runs (a hooked block falls back alone, and fuses again once the hook is
removed), and patch() leaves no half-patched model behind when it fails."""

import pytest
import torch
from torch import nn

import fastattn
import hf_models
import hf_surgery
from fastattn.hf import patching
from hf_spy import spy

CPU, FP32, TORCH = torch.device("cpu"), torch.float32, "torch"
HOOKS = ([("bert", t) for t in hf_surgery.BERT_HOOK_TARGETS]
         + [("gpt2", t) for t in hf_surgery.GPT2_HOOK_TARGETS]
         + [("gpt_bigcode", t) for t in hf_surgery.GPT_BIGCODE_HOOK_TARGETS])
KINDS = sorted(hf_surgery.MODELS)


@pytest.mark.parametrize("pre", [False, True], ids=["hook", "pre-hook"])
@pytest.mark.parametrize("kind,target", HOOKS, ids=[f"{k}:{t}" for k, t in HOOKS])
def test_hooks_take_effect(kind, target, pre):
    hf_surgery.check_hook(kind, target, pre, CPU, FP32, TORCH)


BACKWARD_HOOKS = [("bert", "encoder.layer.1.intermediate"), ("bert", "encoder.layer.1.output.dense"),
                  ("gpt2", "transformer.h.1.mlp.act"), ("gpt2", "transformer.h.1.mlp.c_fc")]


@pytest.mark.parametrize("kind,target", BACKWARD_HOOKS, ids=[f"{k}:{t}" for k, t in BACKWARD_HOOKS])
def test_backward_hooks_take_effect(kind, target):
    hf_surgery.check_backward_hook(kind, target, CPU, FP32, TORCH)


@pytest.mark.parametrize("kind,target", [("bert", "encoder.layer.1.output.dense"),
                                         ("bert", "encoder.layer.1"),
                                         ("gpt2", "transformer.h.1.ln_2")])
def test_recording_hooks_see_the_unpatched_shapes(kind, target):
    hf_surgery.check_recorded_shapes(kind, target, CPU, FP32, TORCH)


SWAPS = [
    ("bert", "encoder.layer.1.intermediate.intermediate_act_fn", nn.ReLU),
    ("bert", "encoder.layer.1.output.LayerNorm", lambda: hf_surgery.RMSNormLike(64)),
    ("bert", "encoder.layer.1.attention.output.LayerNorm", lambda: nn.LayerNorm(64, bias=False)),
    ("gpt2", "transformer.h.1.mlp.act", nn.ReLU),
    ("gpt2", "transformer.h.1.ln_2", lambda: hf_surgery.RMSNormLike(64)),
    ("gpt2", "transformer.h.1.ln_1", lambda: nn.LayerNorm(64, elementwise_affine=False)),
    ("gpt2", "transformer.ln_f", lambda: hf_surgery.RMSNormLike(64)),
    ("gpt_bigcode", "transformer.h.1.mlp.act", nn.ReLU),
    ("gpt_bigcode", "transformer.h.1.ln_2", lambda: hf_surgery.RMSNormLike(64)),
]


@pytest.mark.parametrize("after_patch", [False, True], ids=["before-patch", "after-patch"])
@pytest.mark.parametrize("kind,target,make", SWAPS, ids=[f"{k}:{t}" for k, t, _ in SWAPS])
def test_swapped_modules_take_effect(kind, target, make, after_patch):
    hf_surgery.check_swapped_module(kind, target, make, after_patch, CPU, FP32, TORCH)


@pytest.mark.parametrize("kind", KINDS)
def test_accelerate_style_forward_wrappers(kind):
    hf_surgery.check_accelerate_style_wrappers(kind, CPU, FP32, TORCH)


def _fused_calls(model, kind):
    """How many layers took the fused path in one forward: BERT's packed attention_varlen calls,
    GPT-2's fused FFN calls."""
    name = "attention_varlen" if kind == "bert" else "ffn"
    ids, mask = hf_models.input_ids(3, 9), hf_models.attention_mask(3, 9, "holes")
    with spy(name) as calls, torch.no_grad():
        model(ids, attention_mask=mask)
    return len(calls[name])


@pytest.mark.parametrize("kind,target", [("bert", "encoder.layer.1.intermediate"),
                                         ("gpt2", "transformer.h.1.mlp.act"),
                                         ("gpt_bigcode", "transformer.h.1.mlp.act")])
def test_only_the_hooked_block_falls_back_and_fuses_again_without_the_hook(kind, target):
    model_class, config, _ = hf_surgery.MODELS[kind]
    model = fastattn.patch(hf_models.make_model(model_class, config()))
    layers = config().num_hidden_layers
    assert _fused_calls(model, kind) == layers
    handle = model.get_submodule(target).register_forward_hook(hf_surgery.scale_output)
    assert _fused_calls(model, kind) == layers - 1
    handle.remove()
    assert _fused_calls(model, kind) == layers


# (model, dropout, train mode): BERT's self-attention reads its dropout's p in train mode, so
# transformers itself cannot train with an Identity there: that one in eval mode only.
DROPOUTS = [("bert", "encoder.layer.1.attention.self.dropout", False)] + [
    (kind, target, train) for kind, target in (("bert", "encoder.layer.1.attention.output.dropout"),
                                               ("bert", "encoder.layer.1.output.dropout"),
                                               ("gpt2", "transformer.h.1.mlp.dropout"),
                                               ("gpt_bigcode", "transformer.h.1.mlp.dropout"))
    for train in (False, True)]


class _Doubling(nn.Module):
    def forward(self, x):
        return x * 2


@pytest.mark.parametrize("kind,target,train", DROPOUTS, ids=[
    f"{k}:{t}:{'train' if train else 'eval'}" for k, t, train in DROPOUTS])
def test_dropouts_replaced_before_patching(kind, target, train):
    """A dropout stripped for inference (nn.Identity in its place) before patching: the fused path
    still runs every layer and computes what the unpatched model does, in eval and train mode (an
    Identity has no p: the fused path read one and raised in forward). Any other module in a
    dropout's place: that layer runs transformers' forward, which calls it."""
    model_class, config, pattern = hf_surgery.MODELS[kind]
    layers = config().num_hidden_layers
    for make, fused in ((nn.Identity, layers), (_Doubling, layers - 1)):
        models = hf_surgery.surgery_variants(kind, CPU, FP32, TORCH,
                                             hf_surgery.swap(target, make))
        for m in models:
            m.train(train)  # the configs' dropout p is 0: train mode draws nothing
        hf_surgery.check_same(models, pattern, CPU, FP32)
        assert _fused_calls(models[0], kind) == fused, make.__name__


@pytest.mark.parametrize("kind", KINDS)
def test_a_global_forward_hook_takes_effect(kind):
    """register_module_forward_hook applies to every module call, the skipped ones included."""
    def halve_activations(module, args, output):
        # GELU modules: transformers' NewGELUActivation, GELUActivation, GELUTanh, ...
        return output * 0.5 if "GELU" in type(module).__name__ else None

    models = hf_surgery.surgery_variants(kind, CPU, FP32, TORCH)
    handle = nn.modules.module.register_module_forward_hook(halve_activations)
    try:
        hf_surgery.check_same(models, hf_surgery.MODELS[kind][2], CPU, FP32)
    finally:
        handle.remove()


@pytest.mark.parametrize("kind", KINDS)
def test_a_failing_patch_leaves_the_model_unpatched(kind, monkeypatch):
    model_class, config, pattern = hf_surgery.MODELS[kind]
    model = hf_models.make_model(model_class, config())
    classes = [type(m) for m in model.modules()]
    implementation = model.config._attn_implementation

    def fail(model):
        raise RuntimeError("injected")

    monkeypatch.setattr(patching.vocab_projection, "adopt_output_projection", fail)
    with pytest.raises(RuntimeError, match="injected"):
        fastattn.patch(model)
    assert not patching.is_patched(model)
    assert [type(m) for m in model.modules()] == classes
    assert model.config._attn_implementation == implementation


@pytest.mark.parametrize("kind,blocks,norm", [("bert", "encoder.layer", "output.LayerNorm"),
                                              ("gpt2", "transformer.h", "ln_2"),
                                              ("gpt_bigcode", "transformer.h", "ln_2")])
def test_a_block_with_another_norm_stays_unpatched_and_unpatch_restores_the_rest(kind, blocks, norm):
    model_class, config, _ = hf_surgery.MODELS[kind]
    model = hf_models.make_model(model_class, config())
    original = [type(m) for m in model.modules()]
    hf_surgery.swap(f"{blocks}.1.{norm}", lambda: hf_surgery.RMSNormLike(64))(model)
    fastattn.patch(model)
    patched = [type(b).__module__.startswith("fastattn") for b in model.get_submodule(blocks)]
    assert patched == [True, False, True]
    fastattn.unpatch(model)
    assert not any(type(m).__module__.startswith("fastattn") for m in model.modules())
    assert len(original) == len(list(model.modules()))


@pytest.mark.parametrize("kind", KINDS)
def test_transformers_output_capturing_hooks_keep_the_fused_path(kind):
    """transformers installs forward hooks on layers and attention modules the first time hidden
    states or attentions are asked for, and keeps them (inactive on other calls): they must not
    turn the fused path off for good. The hidden states still match the unpatched model's."""
    model_class, config, pattern = hf_surgery.MODELS[kind]
    model = hf_models.make_model(model_class, config())
    patched = fastattn.patch(hf_models.make_model(model_class, config()))
    ids, mask = hf_models.input_ids(3, 9), hf_models.attention_mask(3, 9, pattern)
    with torch.no_grad():
        got = patched(ids, attention_mask=mask, output_hidden_states=True, output_attentions=True)
        expected = model(ids, attention_mask=mask, output_hidden_states=True)
    if not any(m._forward_hooks for m in patched.modules()):
        pytest.skip("this transformers installs no output-capturing hooks")
    real = mask.bool()
    assert len(got.hidden_states) == len(expected.hidden_states)
    for g, e in zip(got.hidden_states, expected.hidden_states):
        torch.testing.assert_close(g[real], e[real], rtol=1e-5, atol=1e-5)
    assert _fused_calls(patched, kind) == config().num_hidden_layers
