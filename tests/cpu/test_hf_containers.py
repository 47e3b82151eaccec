"""fastattn.patch on modules that hold BERT or GPT-2 models (tests/hf_containers.py), and what it
does with one that holds none, or when patching one of the held models fails."""

import pytest
import torch
from transformers import BertForSequenceClassification, BertModel, GPT2LMHeadModel

import fastattn
import fastattn.hf.loss
import fastattn.hf.patching
import hf_containers
import hf_models


@pytest.mark.parametrize("decoder", hf_containers.DECODERS)
def test_encoder_decoder_outputs_loss_and_gradients(decoder, device, backend):
    hf_containers.check_encoder_decoder(decoder, device, torch.float32, backend)


@pytest.mark.parametrize("decoder", hf_containers.DECODERS)
def test_encoder_decoder_greedy_generation(decoder, device, backend):
    hf_containers.check_encoder_decoder_generation(decoder, device, torch.float32, backend)


def test_a_users_wrapper_trains_the_same(device, backend):
    hf_containers.check_wrapper_training(device, torch.float32, backend)


def test_unpatch_restores_every_held_model(device):
    hf_containers.check_unpatch_restores(device)


def test_a_module_holding_no_supported_model_is_refused_by_name():
    holder = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.ReLU())
    with pytest.raises(TypeError, match="Sequential, which contains no BERT-style or GPT-2-style model"):
        fastattn.patch(holder)


def test_a_failure_in_one_held_model_leaves_none_patched(monkeypatch):
    model = hf_containers.bert_and_gpt2()
    real_adopt_loss, calls = fastattn.hf.loss.adopt_loss, []

    def adopt_loss_failing_on_the_second_model(m, backend):
        calls.append(type(m).__name__)
        if len(calls) == 2:
            raise RuntimeError("injected")
        return real_adopt_loss(m, backend)

    monkeypatch.setattr(fastattn.hf.loss, "adopt_loss", adopt_loss_failing_on_the_second_model)
    with pytest.raises(RuntimeError, match="injected"):
        fastattn.patch(model)
    assert calls == ["BertModel", "GPT2LMHeadModel"]
    assert hf_containers.adopted_count(model) == 0
    assert "fastattn" not in {part.config._attn_implementation for part in model.values()}


def test_a_head_dim_refused_for_one_held_model_patches_nothing():
    # head dim 8 (hidden 32, 4 heads): the triton kernels take 16 and up; named, it is refused.
    holder = hf_containers.bert_and_gpt2()
    holder["small"] = hf_models.make_model(type(holder["encoder"]), hf_models.bert_config(
        hidden_size=32))
    with pytest.raises(ValueError, match="backend 'triton' cannot run"):
        fastattn.patch(holder, backend="triton")
    assert hf_containers.adopted_count(holder) == 0


def test_a_base_model_patched_alone_is_undone_through_its_head():
    model = hf_models.make_model(BertForSequenceClassification, hf_models.bert_config())
    original = model.config._attn_implementation
    fastattn.patch(model.bert)
    fastattn.unpatch(model)
    assert hf_containers.adopted_count(model) == 0
    assert model.config._attn_implementation == original
    # Patched alone, then with its head: the head now holds the implementation from before.
    fastattn.patch(model.bert)
    fastattn.patch(model)
    fastattn.unpatch(model)
    assert hf_containers.adopted_count(model) == 0
    assert model.config._attn_implementation == original
    assert not any(fastattn.hf.patching.is_patched(m) for m in model.modules())


def test_models_sharing_one_config_get_their_implementation_back():
    config = hf_models.bert_config()
    holder = torch.nn.ModuleDict({"queries": hf_models.make_model(BertModel, config),
                                  "documents": hf_models.make_model(BertModel, config, seed=1)})
    assert holder["queries"].config is holder["documents"].config
    original = config._attn_implementation
    fastattn.patch(holder)
    assert config._attn_implementation == "fastattn"
    fastattn.unpatch(holder)
    assert config._attn_implementation == original


@pytest.mark.parametrize("last", ["first", "second"])
def test_models_sharing_one_config_patched_one_call_at_a_time(last):
    """Two models built from one config object, patched and unpatched by separate calls: the
    config says fastattn while either is patched, goes back after the last unpatch, and both
    models compute what they did before at every step."""
    config = hf_models.gpt2_config()
    models = {"first": hf_models.make_model(GPT2LMHeadModel, config),
              "second": hf_models.make_model(GPT2LMHeadModel, config, seed=1)}
    assert models["first"].config is models["second"].config
    original = config._attn_implementation
    ids, mask = hf_models.input_ids(2, 9), hf_models.attention_mask(2, 9, "left")
    real = mask.bool()

    def logits():
        with torch.no_grad():
            return {name: m(input_ids=ids, attention_mask=mask).logits[real]
                    for name, m in models.items()}

    def assert_unchanged():
        for name, out in logits().items():
            torch.testing.assert_close(out, expected[name], msg=name)

    expected = logits()
    fastattn.patch(models["first"])
    fastattn.patch(models["second"])
    assert config._attn_implementation == "fastattn"
    assert_unchanged()
    first_out = "second" if last == "first" else "first"
    fastattn.unpatch(models[first_out])
    assert config._attn_implementation == "fastattn"
    assert fastattn.hf.patching.is_patched(models[last])
    assert hf_containers.adopted_count(models[first_out]) == 0
    assert_unchanged()
    fastattn.unpatch(models[last])
    assert config._attn_implementation == original
    assert_unchanged()
