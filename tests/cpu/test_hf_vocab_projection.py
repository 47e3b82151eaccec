"""The LM head / MLM decoder on padded rows (fastattn.nn.vocab_projection): patch() adopts it where
the vocabulary is not a multiple of 8, its logits, loss, gradients and greedy tokens equal the
plain nn.Linear's, tied weights stay tied, and unpatch() gives the plain class back. The padded
path runs on CUDA tensors only; here the CPU is let in (PADDED_DEVICE_TYPES) to check its math."""

import copy

import pytest
import torch
from torch import nn
from transformers import BertForMaskedLM, GPT2LMHeadModel

import fastattn
import hf_models
from fastattn.nn import vocab_projection
from fastattn.nn.vocab_projection import VocabProjection


@pytest.fixture
def padded_on_cpu(monkeypatch):
    monkeypatch.setattr(vocab_projection, "PADDED_DEVICE_TYPES", ("cpu",))
    monkeypatch.setattr(vocab_projection, "PAD_MIN_ROWS", 8)


def gpt2(vocab=hf_models.VOCAB):
    config = hf_models.gpt2_config(vocab_size=vocab, bos_token_id=vocab - 1, eos_token_id=vocab - 1)
    return hf_models.make_model(GPT2LMHeadModel, config)


def bert_mlm():
    return hf_models.make_model(BertForMaskedLM, hf_models.bert_config())


@pytest.mark.parametrize("bias", [False, True])
def test_padded_projection_equals_linear_forward_and_backward(padded_on_cpu, bias):
    torch.manual_seed(0)
    plain = nn.Linear(24, 37, bias=bias).double()
    padded = VocabProjection.adopt(copy.deepcopy(plain))
    x = torch.randn(3, 5, 24, dtype=torch.float64, requires_grad=True)
    out_plain, out_padded = plain(x), padded(x)
    assert out_padded.shape == (3, 5, 37)
    assert out_padded.stride(-2) == 40  # computed on 40 rows, of which the view shows 37
    torch.testing.assert_close(out_padded, out_plain, rtol=1e-12, atol=1e-12)
    grad = torch.randn_like(out_plain)
    expected = torch.autograd.grad(out_plain, [x, *plain.parameters()], grad)
    got = torch.autograd.grad(out_padded, [x, *padded.parameters()], grad)
    for e, g in zip(expected, got):
        assert g.shape == e.shape
        torch.testing.assert_close(g, e, rtol=1e-12, atol=1e-12)


def test_cpu_tensors_take_the_plain_linear():
    head = VocabProjection.adopt(nn.Linear(8, 37))
    assert head(torch.randn(300, 8)).is_contiguous()  # no padded view: CPU is not in the list


def test_few_rows_take_the_plain_linear(padded_on_cpu):
    """A generation step's few tokens: a weight-read-bound GEMV, where copying the weight to pad it
    would cost more than alignment saves."""
    head = VocabProjection.adopt(nn.Linear(8, 37))
    assert head(torch.randn(1, 7, 8)).is_contiguous()  # 7 rows < PAD_MIN_ROWS (8 here)
    assert head(torch.randn(1, 8, 8)).stride(-2) == 40


@pytest.mark.parametrize("make,head_of", [(gpt2, lambda m: m.lm_head),
                                          (bert_mlm, lambda m: m.cls.predictions.decoder)],
                         ids=["gpt2-lm-head", "bert-mlm-decoder"])
def test_patch_adopts_the_unaligned_head_and_unpatch_releases_it(make, head_of):
    model = make()
    head, weight, keys = head_of(model), head_of(model).weight, list(model.state_dict())
    fastattn.patch(model)
    assert head_of(model) is head and type(head) is VocabProjection
    assert head.weight is weight and weight is model.get_input_embeddings().weight  # still tied
    assert list(model.state_dict()) == keys
    fastattn.unpatch(model)
    assert type(head) is nn.Linear and not [k for k in vars(head) if k.startswith("_fastattn")]


def test_aligned_or_wrapped_heads_are_left_alone():
    aligned = gpt2(vocab=104)
    fastattn.patch(aligned)
    assert type(aligned.lm_head) is nn.Linear

    class Wrapped(nn.Linear):  # e.g. a quantised or adapter-wrapped projection
        pass

    assert not vocab_projection.needs_padding(Wrapped(8, 37))
    assert vocab_projection.needs_padding(nn.Linear(8, 37))


def test_gpt2_loss_gradients_and_greedy_tokens_match_the_plain_head(padded_on_cpu):
    plain = gpt2()
    padded = copy.deepcopy(plain)
    vocab_projection.adopt_output_projection(padded)
    assert type(padded.lm_head) is VocabProjection
    ids = hf_models.input_ids(2, 11)
    losses = []
    for model in (plain, padded):
        model.train()
        out = model(ids, labels=ids)
        out.loss.backward()
        losses.append(out)
    assert losses[1].logits.stride(-2) == 104  # the padded path ran
    torch.testing.assert_close(losses[1].loss, losses[0].loss, rtol=1e-6, atol=1e-6)
    for (name, p), q in zip(plain.named_parameters(), padded.parameters()):
        torch.testing.assert_close(q.grad, p.grad, rtol=1e-5, atol=1e-6, msg=name)
    plain.eval(), padded.eval()
    prompt = hf_models.input_ids(1, 9, seed=3)  # prefill pads (9 rows), decode steps do not
    kwargs = dict(max_new_tokens=6, do_sample=False, pad_token_id=0)
    assert torch.equal(padded.generate(prompt, **kwargs), plain.generate(prompt, **kwargs))
