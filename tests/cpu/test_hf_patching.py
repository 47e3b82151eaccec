"""What fastattn.patch changes and what it keeps: classes, state_dict, saving and loading,
unpatch, errors, hidden states, the mask hook (unpad once, varlen per layer), the decode path,
and the dense fallback for masks the fast path does not describe."""

import copy
import json
import os
import sys

import pytest
import torch
import transformers
from transformers import (BertForMaskedLM, BertForQuestionAnswering, BertForSequenceClassification,
                          BertModel, GPT2ForSequenceClassification, GPT2LMHeadModel, GPT2Model)

import fastattn
import hf_models
from hf_spy import spy
from numerics import assert_numerics

HF_BERT_LAYER = transformers.models.bert.modeling_bert.BertLayer
HF_GPT2_BLOCK = transformers.models.gpt2.modeling_gpt2.GPT2Block


def bert():
    return hf_models.make_model(BertForMaskedLM, hf_models.bert_config())


def gpt2():
    return hf_models.make_model(GPT2LMHeadModel, hf_models.gpt2_config())


def roberta():
    return hf_models.make_model(hf_models.encoder_class("roberta", "ForMaskedLM"),
                                hf_models.encoder_config("roberta"))


def electra():
    return hf_models.make_model(hf_models.encoder_class("electra", "ForMaskedLM"),
                                hf_models.encoder_config("electra"))


def distilbert():
    return hf_models.make_model(hf_models.encoder_class("distilbert", "ForMaskedLM"),
                                hf_models.encoder_config("distilbert"))


def ernie():
    return hf_models.make_model(hf_models.encoder_class("ernie", "ForMaskedLM"),
                                hf_models.encoder_config("ernie"))


def gpt_bigcode():
    return hf_models.make_model(hf_models.decoder_class("gpt_bigcode"),
                                hf_models.decoder_config("gpt_bigcode"))


MAKERS = [bert, gpt2, roberta, electra, distilbert, gpt_bigcode]
MAKER_IDS = ["bert", "gpt2", "roberta", "electra", "distilbert", "gpt_bigcode"]


def batch(pattern="holes", size=3, seqlen=9):
    return hf_models.input_ids(size, seqlen), hf_models.attention_mask(size, seqlen, pattern)


def close_on_real_tokens(name, got, expected, mask):
    real = mask.bool()
    torch.testing.assert_close(got[real], expected[real], rtol=1e-5, atol=1e-5, msg=name)


@pytest.mark.parametrize("make", MAKERS, ids=MAKER_IDS)
def test_blocks_swapped_in_place_keeping_parameters(make):
    model = make()
    before = {name: p for name, p in model.named_parameters()}
    keys = list(model.state_dict())
    block_classes = {type(m) for m in model.modules()
                     if type(m).__name__.endswith(("Layer", "Block"))
                     and type(m).__module__.startswith("transformers")}
    assert len(block_classes) == 1, block_classes
    (block_class,) = block_classes
    assert fastattn.patch(model) is model
    blocks = [m for m in model.modules() if isinstance(m, block_class)]
    # fastattn's subclass of the family's own block class, named as it is.
    assert blocks and all(type(m).__module__.startswith("fastattn.nn.")
                          and type(m).__bases__[-1] is block_class
                          and type(m).__name__ == block_class.__name__ for m in blocks)
    assert model.config._attn_implementation == "fastattn"
    assert list(model.state_dict()) == keys
    assert all(p is before[name] for name, p in model.named_parameters())


@pytest.mark.parametrize("make", MAKERS, ids=MAKER_IDS)
def test_unpatch_restores_original_behaviour(make):
    model, pristine = make(), make()
    attn_implementation = model.config._attn_implementation
    ids, mask = batch()
    fastattn.unpatch(fastattn.patch(model))
    assert model.config._attn_implementation == attn_implementation
    for module in model.modules():
        assert type(module).__module__.startswith(("transformers", "torch")), type(module)
        assert not [k for k in vars(module) if k.startswith("_fastattn")], type(module)
    with torch.no_grad():
        assert torch.equal(model(ids, attention_mask=mask).logits,
                           pristine(ids, attention_mask=mask).logits)
    assert fastattn.unpatch(model) is model  # unpatching an unpatched model does nothing


@pytest.mark.parametrize("make,plain_class", [
    (bert, BertForMaskedLM), (gpt2, GPT2LMHeadModel),
    (roberta, hf_models.encoder_class("roberta", "ForMaskedLM")),
    (electra, hf_models.encoder_class("electra", "ForMaskedLM")),
    (distilbert, hf_models.encoder_class("distilbert", "ForMaskedLM")),
    (gpt_bigcode, hf_models.decoder_class("gpt_bigcode"))], ids=MAKER_IDS)
def test_saved_after_patching_loads_in_plain_transformers(make, plain_class, tmp_path):
    model = fastattn.patch(make())
    model.save_pretrained(tmp_path)
    with open(os.path.join(tmp_path, "config.json")) as f:
        assert "fastattn" not in f.read()
    loaded = plain_class.from_pretrained(tmp_path, attn_implementation="sdpa").eval()
    assert type(loaded.base_model.get_submodule(_first_block(loaded))).__module__.startswith("transformers")
    expected = model.state_dict()
    for name, value in loaded.state_dict().items():
        assert torch.equal(value, expected[name]), name
    # And the reverse: a plain checkpoint loads into a model that is then patched.
    repatched = fastattn.patch(plain_class.from_pretrained(tmp_path).eval())
    ids, mask = batch()
    with torch.no_grad():
        close_on_real_tokens("logits", repatched(ids, attention_mask=mask).logits,
                             loaded(ids, attention_mask=mask).logits, mask)


def _first_block(model):
    if hasattr(model.base_model, "transformer"):  # DistilBERT
        return "transformer.layer.0"
    return "encoder.layer.0" if hasattr(model.base_model, "encoder") else "h.0"


def test_patch_again_only_changes_backend():
    model = fastattn.patch(bert())
    fastattn.patch(model, backend="torch")
    layer = model.bert.encoder.layer[0]
    assert type(layer) is fastattn.nn.BertLayer and layer._fastattn_backend == "torch"
    fastattn.unpatch(model)
    assert type(layer) is HF_BERT_LAYER


def test_unsupported_models_raise():
    gpt_neo = transformers.GPTNeoModel(transformers.GPTNeoConfig(
        vocab_size=99, hidden_size=64, num_layers=2, num_heads=4,
        attention_types=[[["global"], 2]]))
    for model in (gpt_neo, torch.nn.Linear(4, 4)):
        with pytest.raises(TypeError, match="supports Hugging Face BertModel"):
            fastattn.patch(model)


def test_without_transformers_patch_says_what_to_install(monkeypatch):
    # transformers is an optional dependency ('fastattn[hf]'): the ops work without it.
    monkeypatch.setitem(sys.modules, "transformers.models.bert.modeling_bert", None)
    with pytest.raises(ImportError, match=r"needs Hugging Face transformers.*fastattn\[hf\]"):
        fastattn.patch(torch.nn.Linear(4, 4))


def test_triton_by_name_refuses_a_head_dim_without_kernels():
    # transformers' own tester size: hidden 32 over 4 heads is head dim 8. The automatic choice
    # runs it (tests/hf_cases.check_tester_size_models); triton asked by name cannot.
    model = hf_models.make_model(BertModel, hf_models.bert_config(hidden_size=32))
    with pytest.raises(ValueError,
                       match="backend 'triton' cannot run BertModel's attention: head dim 8"):
        fastattn.patch(model, backend="triton")
    assert model.config._attn_implementation != "fastattn"
    assert fastattn.patch(model) is model


def test_unknown_backend_raises():
    with pytest.raises(ValueError, match="unknown backend 'cudnn'"):
        fastattn.patch(bert(), backend="cudnn")


@pytest.mark.parametrize("model_class,config,pattern", [
    (BertModel, hf_models.bert_config(), "right"),
    (BertForSequenceClassification, hf_models.bert_config(), "right"),
    (BertForQuestionAnswering, hf_models.bert_config(), "holes"),
    (GPT2Model, hf_models.gpt2_config(), "holes"),
    # It reads the last real token: left padding keeps that at the end.
    (GPT2ForSequenceClassification, hf_models.gpt2_config(), "left"),
], ids=lambda v: getattr(v, "__name__", v) if not isinstance(v, transformers.PretrainedConfig) else "")
def test_task_heads(model_class, config, pattern):
    model = hf_models.make_model(model_class, config)
    patched = fastattn.patch(copy.deepcopy(model))
    ids, mask = batch(pattern)
    with torch.no_grad():
        got, expected = patched(ids, attention_mask=mask), model(ids, attention_mask=mask)
    for key, value in expected.items():
        if not isinstance(value, torch.Tensor):
            continue
        if value.dim() >= 2 and value.shape[:2] == ids.shape:  # per token: real tokens only
            close_on_real_tokens(key, got[key], value, mask)
        else:
            torch.testing.assert_close(got[key], value, rtol=1e-5, atol=1e-5, msg=key)


@pytest.mark.parametrize("make", MAKERS, ids=MAKER_IDS)
def test_output_hidden_states(make):
    model = make()
    patched = fastattn.patch(copy.deepcopy(model))
    ids, mask = batch()
    with torch.no_grad():
        got = patched(ids, attention_mask=mask, output_hidden_states=True).hidden_states
        expected = model(ids, attention_mask=mask, output_hidden_states=True).hidden_states
    assert len(got) == len(expected)
    for i, (g, e) in enumerate(zip(got, expected)):
        assert g.shape == e.shape
        close_on_real_tokens(f"hidden_states[{i}]", g, e, mask)


@pytest.mark.parametrize("make", [bert, roberta, electra, ernie, distilbert],
                         ids=["bert", "roberta", "electra", "ernie", "distilbert"])
def test_bert_unpads_once_and_runs_varlen_on_real_tokens(make):
    model = fastattn.patch(make())
    ids, mask = batch("holes")
    with spy("unpad", "pad", "attention_varlen", "attention") as calls, torch.no_grad():
        model(ids, attention_mask=mask)
    assert len(calls["unpad"]) == 1 and len(calls["pad"]) == 1 and not calls["attention"]
    assert len(calls["attention_varlen"]) == model.config.num_hidden_layers
    (q, _k, _v, cu_seqlens, *_rest), _kwargs = calls["attention_varlen"][0]
    assert q.shape[0] == int(mask.sum())
    assert cu_seqlens.tolist() == [0] + mask.sum(1).cumsum(0).tolist()


def test_a_mask_without_padding_reaches_no_layer():
    """An all-ones attention mask (what tokenizers and generate() give unpadded input) says
    nothing: BERT does not unpad, GPT2's attention gets no key padding mask; outputs unchanged."""
    stock_bert, stock_gpt2 = bert(), gpt2()
    patched_bert, patched_gpt2 = (fastattn.patch(copy.deepcopy(m)) for m in (stock_bert, stock_gpt2))
    ids, mask = batch("none")
    assert mask.bool().all()
    with spy("unpad", "attention_varlen", "attention") as calls, torch.no_grad():
        got_bert = patched_bert(ids, attention_mask=mask).logits
        got_gpt2 = patched_gpt2(ids, attention_mask=mask).logits
    assert not calls["unpad"] and calls["attention_varlen"] and calls["attention"]
    assert all(kwargs["key_padding_mask"] is None for _, kwargs in calls["attention"])
    with torch.no_grad():
        close_on_real_tokens("bert", got_bert, stock_bert(ids, attention_mask=mask).logits, mask)
        close_on_real_tokens("gpt2", got_gpt2, stock_gpt2(ids, attention_mask=mask).logits, mask)


@pytest.mark.parametrize("make", [gpt2, gpt_bigcode], ids=["gpt2", "gpt_bigcode"])
def test_gpt2_generation_uses_decode_path_with_padding_mask(make):
    model = fastattn.patch(make())
    ids, mask = batch("left", seqlen=7)
    with spy("attention") as calls, torch.no_grad():
        model.generate(ids, attention_mask=mask, max_new_tokens=4, do_sample=False, pad_token_id=0)
    shapes = [(args[0].shape[2], args[1].shape[2]) for args, _ in calls["attention"]]
    decode = [(sq, sk) for sq, sk in shapes if sq == 1 and sk > 1]
    assert len(decode) == 3 * model.config.n_layer, shapes  # tokens 2..4 decode from the cache
    assert all(kwargs["causal"] and kwargs["key_padding_mask"] is not None for _, kwargs in calls["attention"])
    # GPTBigCode's one key/value head reaches the kernels as it is (multi-query), not repeated.
    kv_heads = 1 if getattr(model.config, "multi_query", False) else model.config.n_head
    assert all(args[1].shape[1] == kv_heads for args, _ in calls["attention"])


def _additive_mask(mask, q_len):
    """A user-made 4D float mask: 0 where attended, a large negative number elsewhere, causal."""
    allowed = mask.bool()[:, None, None, :] & torch.ones(q_len, mask.shape[1]).tril().bool()
    return torch.zeros(allowed.shape).masked_fill(~allowed, torch.finfo(torch.float32).min)


def test_user_4d_mask_falls_back_to_dense_path():
    model = gpt2()
    patched = fastattn.patch(copy.deepcopy(model))
    ids, mask = batch("left")
    mask4d = _additive_mask(mask, ids.shape[1])
    with torch.no_grad():
        got = patched(ids, attention_mask=mask4d).logits
        expected = model(ids, attention_mask=mask4d).logits
    close_on_real_tokens("logits", got, expected, mask)


def test_bert_user_4d_mask_falls_back_to_dense_path():
    model = bert()
    patched = fastattn.patch(copy.deepcopy(model))
    ids, mask = batch("holes")
    mask4d = mask.bool()[:, None, None, :].expand(-1, 1, ids.shape[1], -1)
    with spy("unpad") as calls, torch.no_grad():
        got = patched(ids, attention_mask=mask4d).logits
    expected = model(ids, attention_mask=mask4d).logits
    assert not calls["unpad"]
    close_on_real_tokens("logits", got, expected.detach(), mask)


def test_packed_sequences_in_position_ids_fall_back_to_dense_path():
    model = gpt2()
    patched = fastattn.patch(copy.deepcopy(model))
    ids = hf_models.input_ids(2, 10)
    # Two sequences (4 + 6 tokens) packed into each row: transformers' packed-sequence mask.
    position_ids = torch.tensor([[0, 1, 2, 3, 0, 1, 2, 3, 4, 5]] * 2)
    with torch.no_grad():
        got = patched(ids, position_ids=position_ids).logits
        expected = model(ids, position_ids=position_ids).logits
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)


def test_patched_outputs_follow_numerics_rule_against_float64():
    model = bert()
    ref, eager, patched = hf_models.variants(model, torch.device("cpu"), torch.float32)
    ids, mask = batch("left", seqlen=17)
    with torch.no_grad():
        outs = [m(ids, attention_mask=mask).logits for m in (patched, ref, eager)]
    assert_numerics("logits", *(o[mask.bool()] for o in outs))


@pytest.mark.parametrize("make", [bert, gpt2, gpt_bigcode], ids=["bert", "gpt2", "gpt_bigcode"])
def test_a_float64_model_keeps_working_after_patching(make):
    """A model in float64 (for gradcheck or numerical checks) runs on the torch backend, computed
    in float64, instead of being refused by the kernels' dtype check."""
    model = make().double()
    patched = fastattn.patch(copy.deepcopy(model))
    ids, mask = batch("holes", seqlen=13)
    with torch.no_grad():
        got, expected = patched(ids, attention_mask=mask)[0], model(ids, attention_mask=mask)[0]
    assert got.dtype == torch.float64
    real = mask.bool()
    torch.testing.assert_close(got[real], expected[real], rtol=1e-12, atol=1e-12)
