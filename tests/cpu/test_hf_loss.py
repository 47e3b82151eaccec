"""The causal-LM loss patched models use (fastattn.hf.loss): the same numbers as transformers'
ForCausalLMLoss (label shift, ignore_index, num_items_in_batch, shift_labels), set by patch() only
where the model would use ForCausalLMLoss, taken back by unpatch()."""

import pytest
import torch
from transformers import BertForMaskedLM, BertLMHeadModel, GPT2LMHeadModel, GPT2Model
from transformers.loss.loss_utils import ForCausalLMLoss

import fastattn
import hf_models
from fastattn.hf.loss import MARKER, causal_lm_loss


def logits_and_labels(seed=0, batch=3, seqlen=9, vocab=37):
    g = torch.Generator().manual_seed(seed)
    logits = 3 * torch.randn(batch, seqlen, vocab, generator=g)
    labels = torch.randint(0, vocab, (batch, seqlen), generator=g)
    labels[0, :4] = -100  # padding / prompt tokens
    return logits, labels


@pytest.mark.parametrize("kwargs", [{}, {"num_items_in_batch": torch.tensor(11)},
                                    {"num_items_in_batch": 5}],
                         ids=["mean", "num-items-tensor", "num-items-int"])
def test_equals_transformers_loss(kwargs):
    logits, labels = logits_and_labels()
    expected = ForCausalLMLoss(logits, labels, 37, **kwargs)
    torch.testing.assert_close(causal_lm_loss(logits, labels, 37, **kwargs), expected)


def test_shift_labels_given_are_used_as_they_are():
    logits, labels = logits_and_labels(seed=1)
    shift = torch.roll(labels, -2, dims=1)
    torch.testing.assert_close(causal_lm_loss(logits, None, 37, shift_labels=shift),
                               ForCausalLMLoss(logits, None, 37, shift_labels=shift))


def test_gradients_equal_transformers_loss():
    logits, labels = logits_and_labels(seed=2)
    ours, theirs = logits.clone().requires_grad_(), logits.clone().requires_grad_()
    causal_lm_loss(ours, labels, 37).backward()
    ForCausalLMLoss(theirs, labels, 37).backward()
    torch.testing.assert_close(ours.grad, theirs.grad)


def patched_with_our_loss(model_class, config, seqlen):
    """A patched model that took fastattn's loss, after checking its loss on `seqlen` tokens equals
    the unpatched model's."""
    model, pristine = (hf_models.make_model(model_class, config) for _ in range(2))
    fastattn.patch(model)
    assert getattr(model.loss_function, MARKER, False)
    ids = hf_models.input_ids(2, seqlen)
    with torch.no_grad():
        torch.testing.assert_close(model(ids, labels=ids).loss, pristine(ids, labels=ids).loss,
                                   rtol=1e-5, atol=1e-5)
    return model


@pytest.mark.parametrize("family", ["gpt2", "gpt_bigcode"])
def test_patch_sets_it_on_causal_lms_and_unpatch_takes_it_back(family):
    model = patched_with_our_loss(hf_models.decoder_class(family),
                                  hf_models.decoder_config(family), 13)
    fastattn.unpatch(model)
    assert model.loss_function is ForCausalLMLoss and "_loss_function" not in vars(model)


def test_a_users_loss_function_and_other_heads_are_left_alone():
    model = hf_models.make_model(GPT2LMHeadModel, hf_models.gpt2_config())

    def mine(logits, labels, vocab_size, **kwargs):
        return logits.sum() * 0

    model.loss_function = mine
    fastattn.patch(model)
    assert model.loss_function is mine
    fastattn.unpatch(model)
    assert model.loss_function is mine
    bert = fastattn.patch(hf_models.make_model(BertForMaskedLM, hf_models.bert_config()))
    assert not getattr(bert.loss_function, MARKER, False)
    encoder = fastattn.patch(hf_models.make_model(GPT2Model, hf_models.gpt2_config()))
    assert "_loss_function" not in vars(encoder)


def test_bert_as_a_causal_lm_takes_it_too():
    patched_with_our_loss(BertLMHeadModel, hf_models.bert_config(is_decoder=True), 11)
