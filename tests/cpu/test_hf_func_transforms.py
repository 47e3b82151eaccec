"""torch.func over a patched Hugging Face model (torch.func.functional_call): gradients with
respect to the parameters, per-sample gradients (vmap of grad), and an ensemble (vmap over stacked
parameters), each against the unpatched model. The ops' side is tests/func_suite.py.

Per-sample masks (vmap over attention_mask) are left out: transformers' own mask code reads the
mask's values, which vmap refuses, patched or not.
"""

import copy

import pytest
import torch
from torch.func import functional_call, grad, vmap
from transformers import BertForSequenceClassification, GPT2LMHeadModel

import fastattn
import hf_models

BATCH, SEQLEN = 4, 9


def _pair(model_class, config):
    stock = hf_models.make_model(model_class, config)
    return stock, fastattn.patch(copy.deepcopy(stock))


def _params(model):
    return {name: p.detach() for name, p in model.named_parameters()}


def _assert_same(got, expected, rtol=1e-4, atol=1e-5):
    assert got.keys() == expected.keys()
    for name in expected:
        torch.testing.assert_close(got[name], expected[name], rtol=rtol, atol=atol, msg=name)


@pytest.mark.parametrize("model_class,config,pattern", [
    (BertForSequenceClassification, hf_models.bert_config(num_labels=3), "holes"),
    (GPT2LMHeadModel, hf_models.gpt2_config(), "left")], ids=["bert", "gpt2"])
def test_grad_of_the_loss_in_the_parameters(model_class, config, pattern):
    stock, patched = _pair(model_class, config)
    ids = hf_models.input_ids(BATCH, SEQLEN)
    mask = hf_models.attention_mask(BATCH, SEQLEN, pattern)
    labels = torch.tensor([0, 1, 2, 1]) if model_class is BertForSequenceClassification else ids

    def loss(model):
        return lambda params: functional_call(
            model, params, (), {"input_ids": ids, "attention_mask": mask, "labels": labels}).loss

    _assert_same(grad(loss(patched))(_params(stock)), grad(loss(stock))(_params(stock)))


def test_per_sample_gradients():
    stock, patched = _pair(BertForSequenceClassification, hf_models.bert_config(num_labels=3))
    ids = hf_models.input_ids(BATCH, SEQLEN)
    mask = hf_models.attention_mask(1, SEQLEN, "left", seed=3)  # one padding pattern for all
    labels = torch.tensor([0, 1, 2, 1])

    def per_sample(model):
        def loss(params, ids, labels):
            return functional_call(model, params, (), {
                "input_ids": ids[None], "attention_mask": mask, "labels": labels[None]}).loss
        return vmap(grad(loss), in_dims=(None, 0, 0))(_params(stock), ids, labels)

    _assert_same(per_sample(patched), per_sample(stock))


def test_ensemble_over_stacked_parameters():
    """vmap over the parameters: the patched BERT's fused q/k/v weight is concatenated per call
    (its eager-mode cache would need the data pointer of a batched parameter)."""
    stock, patched = _pair(BertForSequenceClassification, hf_models.bert_config(num_labels=3))
    ids = hf_models.input_ids(BATCH, SEQLEN)
    mask = hf_models.attention_mask(BATCH, SEQLEN, "holes")
    stacked = {name: torch.stack([p, 0.9 * p, -p]) for name, p in _params(stock).items()}

    def logits(model):
        return vmap(lambda params: functional_call(
            model, params, (), {"input_ids": ids, "attention_mask": mask}).logits)(stacked)

    torch.testing.assert_close(logits(patched), logits(stock), rtol=1e-4, atol=1e-5)
