"""torch.jit.trace of a patched model: the record must be right for inputs other than the ones it
was traced on.

jit.trace replays the tensor ops it saw and bakes in everything Python decided from tensor values.
Before fastattn recognised it, a patched model traced on a batch without padding ignored the mask
of every later batch (the all-visible mask was dropped at trace time), a padded BERT batch was
packed to the traced batch's token count, and the fused ops were not recorded at all on a GPU (a
Triton or CUDA launch is not a tensor op the tracer sees; the record then returned an unwritten
buffer). jit.trace is deprecated in favour of torch.export, but transformers documents it, and a
silent wrong answer is worse than an error.
"""

import copy
import warnings

import pytest
import torch
from transformers import BertModel, GPT2LMHeadModel

import fastattn
import hf_models

BATCH, SEQLEN = 3, 11


@pytest.fixture(autouse=True)
def _quiet_tracer():
    # jit.trace warns that it is deprecated, and about every Python bool it records as a constant.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def _trace(model, ids, mask):
    """The record of model(input_ids=ids, attention_mask=mask); call it with the same keywords.
    strict=False: transformers' models return dicts. check_trace (on by default) records the model
    a second time under no_grad and fails if the two records differ."""
    return torch.jit.trace(model, example_kwarg_inputs={"input_ids": ids, "attention_mask": mask},
                           strict=False)


def _output(result):
    return result["last_hidden_state"] if "last_hidden_state" in result else result["logits"]


def _assert_real_tokens_match(got, expected, mask):
    real = mask.bool()
    torch.testing.assert_close(got[real], expected[real], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("traced_on", ["none", "holes"])
@pytest.mark.parametrize("model_class,config", [(BertModel, hf_models.bert_config),
                                                (GPT2LMHeadModel, hf_models.gpt2_config)],
                         ids=["bert", "gpt2"])
def test_a_trace_is_right_for_other_masks(model_class, config, traced_on):
    overrides = {} if model_class is BertModel else {"use_cache": False}
    stock = hf_models.make_model(model_class, config(**overrides))
    patched = fastattn.patch(copy.deepcopy(stock))
    ids = hf_models.input_ids(BATCH, SEQLEN)
    traced = _trace(patched, ids, hf_models.attention_mask(BATCH, SEQLEN, traced_on))
    for seed, pattern in enumerate(("holes", "left", "right", "none")):
        ids = hf_models.input_ids(BATCH, SEQLEN, seed=seed + 1)
        mask = hf_models.attention_mask(BATCH, SEQLEN, pattern, seed=seed + 1)
        with torch.no_grad():
            got = _output(traced(input_ids=ids, attention_mask=mask))
            expected = _output(stock(ids, attention_mask=mask))
        _assert_real_tokens_match(got, expected, mask)


def test_the_record_holds_fastattn_ops_not_their_insides():
    """What makes the record right on a GPU: each fused op is one node, run again on replay."""
    patched = fastattn.patch(hf_models.make_model(BertModel, hf_models.bert_config()))
    ids = hf_models.input_ids(BATCH, SEQLEN)
    traced = _trace(patched, ids, hf_models.attention_mask(BATCH, SEQLEN, "left"))
    graph = str(traced.inlined_graph)
    for op in ("attention_fwd", "layer_norm_residual_fwd", "ffn_fwd"):
        assert f"fastattn::{op}" in graph, op
    assert "aten::scaled_dot_product_attention" not in graph  # the torch backend's inside


def test_a_trace_follows_weights_changed_in_place():
    """The patched BERT layer's concatenated q/k/v weight is cached between eager calls; a
    record must read the parameters instead of baking the concatenation in."""
    stock = hf_models.make_model(BertModel, hf_models.bert_config())
    patched = fastattn.patch(copy.deepcopy(stock))
    ids = hf_models.input_ids(BATCH, SEQLEN)
    mask = hf_models.attention_mask(BATCH, SEQLEN, "holes")
    with torch.no_grad():
        patched(ids, attention_mask=mask)  # fills the cache, as eager use before tracing would
        traced = _trace(patched, ids, mask)
        for model in (stock, patched):
            model.encoder.layer[0].attention.self.key.weight.mul_(1.5)
        got = _output(traced(input_ids=ids, attention_mask=mask))
        expected = _output(stock(ids, attention_mask=mask))
    _assert_real_tokens_match(got, expected, mask)


def test_gradients_through_a_trace():
    stock = hf_models.make_model(BertModel, hf_models.bert_config())
    patched = fastattn.patch(copy.deepcopy(stock))
    ids = hf_models.input_ids(BATCH, SEQLEN)
    mask = hf_models.attention_mask(BATCH, SEQLEN, "left")
    traced = _trace(patched, ids, hf_models.attention_mask(BATCH, SEQLEN, "holes"))
    real = mask.bool()
    _output(traced(input_ids=ids, attention_mask=mask))[real].square().sum().backward()
    _output(stock(ids, attention_mask=mask))[real].square().sum().backward()
    for (name, expected), got in zip(stock.named_parameters(), patched.parameters()):
        if expected.grad is None:
            assert got.grad is None, name
            continue
        torch.testing.assert_close(got.grad, expected.grad, rtol=1e-4, atol=1e-5, msg=name)
