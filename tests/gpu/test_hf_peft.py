"""PEFT's real LoRA layers on patched models (the GPU machines have peft; tests/cpu covers the same
with a LoRA-like stand-in): BERT with LoRA on query and value (PEFT's default targets for BERT),
GPT2 with LoRA on c_attn and c_fc. The patched model's outputs and the LoRA gradients match the
unpatched model's, in float32 on every backend."""

import copy

import pytest
import torch
from transformers import BertModel, GPT2Model

import fastattn
import hf_models

peft = pytest.importorskip("peft", reason="peft is not installed on this machine")

TARGETS = {"bert": (BertModel, hf_models.bert_config, ["query", "value"]),
           "gpt2": (GPT2Model, hf_models.gpt2_config, ["c_attn", "c_fc"])}


@pytest.mark.parametrize("kind", list(TARGETS))
def test_lora_adapters_keep_their_effect(backend, device, kind):
    model_class, config, targets = TARGETS[kind]
    base = hf_models.make_model(model_class, config())
    lora = peft.get_peft_model(base, peft.LoraConfig(r=4, lora_alpha=8, target_modules=targets,
                                                     init_lora_weights=False,
                                                     fan_in_fan_out=kind == "gpt2"))
    unpatched = lora.to(device)
    patched = copy.deepcopy(unpatched)
    fastattn.patch(patched.base_model.model, backend=backend)
    ids = hf_models.input_ids(3, 11).to(device)
    mask = hf_models.attention_mask(3, 11, "right").to(device)
    real = mask.bool()
    outputs = []
    for model in (unpatched, patched):
        out = model(input_ids=ids, attention_mask=mask).last_hidden_state[real]
        out.square().mean().backward()
        outputs.append(out)
    torch.testing.assert_close(outputs[1], outputs[0], rtol=1e-3, atol=1e-3)
    for (name, ref), (_, param) in zip(unpatched.named_parameters(), patched.named_parameters()):
        if "lora_" in name:
            torch.testing.assert_close(param.grad, ref.grad, rtol=1e-3, atol=1e-3, msg=name)
