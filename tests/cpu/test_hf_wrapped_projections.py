"""A patched block whose projections are wrapped (PEFT's LoRA layers replace BERT's query and value
and GPT2's c_fc with subclasses whose .weight is still the base weight) or hooked computes what the
unpatched model computes: the fused paths read a projection's weight only while the module is
exactly nn.Linear / Conv1D with no forward hook (fastattn/nn/projections.py). A LoRA-like
subclass stands in for PEFT here (PEFT is not a test dependency)."""

import copy
import types

import pytest
import torch
from torch import nn
from transformers import BertModel, GPT2Model
from transformers.pytorch_utils import Conv1D

import fastattn
import hf_models
from hf_spy import spy


def _low_rank_delta(module, in_features, out_features, rank=2):
    generator = torch.Generator().manual_seed(7)
    module.lora_a = nn.Parameter(torch.randn(in_features, rank, generator=generator) * 0.5)
    module.lora_b = nn.Parameter(torch.randn(rank, out_features, generator=generator) * 0.5)


class LoraLinear(nn.Linear):
    """nn.Linear plus a trainable low-rank term, as PEFT's lora.Linear computes."""

    def forward(self, x):
        return super().forward(x) + x @ self.lora_a @ self.lora_b


class LoraConv1D(Conv1D):
    def forward(self, x):
        return super().forward(x) + x @ self.lora_a @ self.lora_b


def add_lora(module):
    """Turn an nn.Linear or Conv1D into its LoRA-like subclass in place (weights kept)."""
    if isinstance(module, nn.Linear):
        module.__class__ = LoraLinear
        _low_rank_delta(module, module.in_features, module.out_features)
    else:
        module.__class__ = LoraConv1D
        _low_rank_delta(module, module.weight.shape[0], module.weight.shape[1])


def double_output(module, args, output):
    return output * 2


def wrap_forward(module):
    """Replace the instance's forward, as accelerate's hooks and hand-made wrappers do (a method
    bound to the module, which deepcopy binds to the copy)."""
    def doubled(self, x):
        return type(self).forward(self, x) * 2

    module.forward = types.MethodType(doubled, module)


def bert_with(change):
    model = hf_models.make_model(BertModel, hf_models.bert_config())
    for layer in model.encoder.layer:
        change(layer)
    return model


def gpt2_with(change, family="gpt2"):
    model = hf_models.make_model(hf_models.decoder_class(family, "Model"),
                                 hf_models.decoder_config(family))
    for block in model.h:
        change(block)
    return model


CHANGES = {
    "bert-lora-query-value": lambda: bert_with(lambda layer: (
        add_lora(layer.attention.self.query), add_lora(layer.attention.self.value))),
    "bert-lora-ffn": lambda: bert_with(lambda layer: add_lora(layer.intermediate.dense)),
    "bert-hooked-key": lambda: bert_with(
        lambda layer: layer.attention.self.key.register_forward_hook(double_output)),
    "gpt2-lora-c_fc": lambda: gpt2_with(lambda block: add_lora(block.mlp.c_fc)),
    "gpt2-hooked-c_proj": lambda: gpt2_with(
        lambda block: block.mlp.c_proj.register_forward_hook(double_output)),
    "gpt2-hooked-mlp": lambda: gpt2_with(lambda block: block.mlp.register_forward_hook(double_output)),
    "bert-wrapped-value-forward": lambda: bert_with(
        lambda layer: wrap_forward(layer.attention.self.value)),
    "gpt2-wrapped-c_fc-forward": lambda: gpt2_with(lambda block: wrap_forward(block.mlp.c_fc)),
    # GPTBigCode's projections are nn.Linear: a LoRA Linear subclass there, and a hooked c_proj.
    "gpt_bigcode-lora-c_fc": lambda: gpt2_with(lambda block: add_lora(block.mlp.c_fc),
                                               "gpt_bigcode"),
    "gpt_bigcode-hooked-c_proj": lambda: gpt2_with(
        lambda block: block.mlp.c_proj.register_forward_hook(double_output), "gpt_bigcode"),
}


def _run(model, ids, mask):
    return model(ids, attention_mask=mask).last_hidden_state


@pytest.mark.parametrize("case", list(CHANGES))
def test_wrapped_or_hooked_projections_keep_their_effect(case):
    model = CHANGES[case]()
    ids, mask = hf_models.input_ids(3, 11), hf_models.attention_mask(3, 11, "holes")
    patched = fastattn.patch(copy.deepcopy(model))
    expected = _run(model, ids, mask)
    got = _run(patched, ids, mask)
    real = mask.bool()
    torch.testing.assert_close(got[real], expected[real], rtol=1e-4, atol=1e-5)
    # The adapters still train: their gradients match too (float32 rounding of gradients up to
    # ~1e2 in this loss, so an absolute floor of 1e-4).
    for m in (model, patched):
        _run(m, ids, mask)[real].square().sum().backward()
    for (name, ref), (_, param) in zip(model.named_parameters(), patched.named_parameters()):
        if ref.grad is None:  # a pooler the loss does not reach
            assert param.grad is None, name
            continue
        torch.testing.assert_close(param.grad, ref.grad, rtol=1e-4, atol=1e-4, msg=name)


def test_plain_projections_keep_the_fused_paths(monkeypatch):
    """Without wrappers or hooks the blocks read the weights: one fused FFN per layer and, in
    BERT, one QKV GEMM (the three projection modules are not called)."""
    model = fastattn.patch(hf_models.make_model(BertModel, hf_models.bert_config()))
    projections = {id(p) for layer in model.encoder.layer
                   for p in (layer.attention.self.query, layer.attention.self.key)}
    calls = []
    linear_forward = nn.Linear.forward
    # Counted on the class: an instance's own forward would make the projection unfusable.
    monkeypatch.setattr(nn.Linear, "forward", lambda self, x: (
        calls.append(1) if id(self) in projections else None) or linear_forward(self, x))
    ids, mask = hf_models.input_ids(2, 7), hf_models.attention_mask(2, 7, "right")
    with spy("ffn") as ffn_calls:
        model(ids, attention_mask=mask)
    assert calls == [] and len(ffn_calls["ffn"]) == model.config.num_hidden_layers


def test_a_hook_added_after_patching_is_honoured():
    """The check runs per call: LoRA or a hook added to an already patched model takes effect."""
    model = hf_models.make_model(GPT2Model, hf_models.gpt2_config())
    patched = fastattn.patch(copy.deepcopy(model))
    ids = hf_models.input_ids(2, 9)
    before = _run(patched, ids, None)
    for m in (model, patched):
        m.h[0].mlp.c_fc.register_forward_hook(double_output)
    after = _run(patched, ids, None)
    assert not torch.allclose(before, after)
    torch.testing.assert_close(after, _run(model, ids, None), rtol=1e-4, atol=1e-5)
