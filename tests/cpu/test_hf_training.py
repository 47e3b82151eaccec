"""Training a patched model: dropout in train mode, gradient checkpointing, and a short GPT2 (and
GPTBigCode) training run whose losses follow the unpatched model's."""

import copy

import pytest
import torch
from transformers import BertForMaskedLM, GPT2LMHeadModel

import fastattn
import hf_cases
import hf_models
from hf_spy import spy

DECODER_DROPOUT = dict(resid_pdrop=0.1, attn_pdrop=0.1, embd_pdrop=0.1)
DROPOUT = dict(bert=dict(hidden_dropout_prob=0.1, attention_probs_dropout_prob=0.1),
               gpt2=DECODER_DROPOUT, gpt_bigcode=DECODER_DROPOUT)
KINDS = sorted(DROPOUT)


def make(kind, **overrides):
    if kind == "bert":
        return hf_models.make_model(BertForMaskedLM, hf_models.bert_config(**overrides))
    return hf_models.make_model(hf_models.decoder_class(kind),
                                hf_models.decoder_config(kind, **overrides))


def loss_and_grads(model, ids, mask, seed=None):
    if seed is not None:
        torch.manual_seed(seed)
    model.zero_grad()
    loss = model(ids, attention_mask=mask, labels=torch.where(mask.bool(), ids, -100)).loss
    loss.backward()
    return loss.detach(), {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


@pytest.mark.parametrize("kind", KINDS)
def test_dropout_in_train_mode(kind):
    model = fastattn.patch(make(kind, **DROPOUT[kind])).train()
    ids, mask = hf_models.input_ids(3, 11), hf_models.attention_mask(3, 11, "holes")
    loss_a, grads_a = loss_and_grads(model, ids, mask, seed=1)
    loss_b, grads_b = loss_and_grads(model, ids, mask, seed=1)
    loss_c, _ = loss_and_grads(model, ids, mask, seed=2)
    assert torch.isfinite(loss_a) and all(torch.isfinite(g).all() for g in grads_a.values())
    assert loss_a == loss_b and all(torch.equal(grads_a[n], grads_b[n]) for n in grads_a)  # seeded
    assert loss_a != loss_c  # a different mask
    with torch.no_grad():
        eval_loss = model.eval()(ids, attention_mask=mask, labels=torch.where(mask.bool(), ids, -100)).loss
    assert eval_loss != loss_a  # dropout only in train mode


@pytest.mark.parametrize("kind", KINDS)
def test_gradient_checkpointing(kind):
    model = fastattn.patch(make(kind)).train()
    ids, mask = hf_models.input_ids(3, 11), hf_models.attention_mask(3, 11, "left")
    loss, grads = loss_and_grads(model, ids, mask)
    # Renamed in later 5.x releases; the old name still works there, with a warning.
    (getattr(model, "activation_checkpointing_enable", None) or model.gradient_checkpointing_enable)()
    op = "attention_varlen" if kind == "bert" else "attention"
    with spy(op) as calls:
        loss_ckpt, grads_ckpt = loss_and_grads(model, ids, mask)
    # Each layer's forward ran twice: once forward, once recomputed in the backward.
    assert len(calls[op]) == 2 * model.config.num_hidden_layers
    torch.testing.assert_close(loss_ckpt, loss)
    for name, grad in grads.items():
        torch.testing.assert_close(grads_ckpt[name], grad, msg=name)


def _train(model, steps, seed=0):
    torch.manual_seed(seed)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    generator = torch.Generator().manual_seed(seed)
    losses = []
    for _ in range(steps):
        # A learnable pattern (each row counts up from a random start) plus left padding.
        start = torch.randint(1, 40, (8, 1), generator=generator)
        ids = start + torch.arange(24)
        mask = hf_models.attention_mask(8, 24, "left", seed=int(start.sum()))
        loss = model(ids, attention_mask=mask, labels=torch.where(mask.bool(), ids, -100)).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return losses


@pytest.mark.parametrize("kind", ["gpt2", "gpt_bigcode"])
def test_gpt2_training_converges_like_unpatched(kind):
    model = make(kind, n_layer=2)
    plain = _train(copy.deepcopy(model).train(), steps=30)
    patched = _train(fastattn.patch(copy.deepcopy(model)).train(), steps=30)
    assert plain[-1] < 0.5 * plain[0], plain  # the run learns something
    # Same seed, no dropout: float32 rounding differences only, compounded over 30 Adam steps.
    torch.testing.assert_close(torch.tensor(patched), torch.tensor(plain), rtol=2e-3, atol=2e-3)


@pytest.mark.parametrize("model_class", [BertForMaskedLM, GPT2LMHeadModel],
                         ids=["bert", "gpt2"])
def test_mixed_precision_training_under_autocast(model_class):
    """torch.autocast reaches fastattn's ops as it reaches the stock ones (fastattn/_autocast.py):
    before, the patched LayerNorm refused a bfloat16 x beside a float32 residual."""
    hf_cases.check_autocast_training(torch.device("cpu"), torch.bfloat16, "torch", model_class)
