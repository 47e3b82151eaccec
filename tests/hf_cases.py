"""Checks of patched Hugging Face models against the unpatched ones, written once and run by the
cpu tier (torch backend, float32) and the gpu tier (every backend, every dtype).

Each check follows the numerics rule (tests/numerics.py): ref = the unpatched model in float64,
eager = the unpatched model in the test dtype, out = the patched model in the test dtype.
Only real-token positions are compared: what padded positions hold differs by design.
"""

import torch
from transformers import BertForMaskedLM, BertModel, GPT2LMHeadModel

import hf_models
from numerics import assert_grad_numerics, assert_numerics


def _forward(model, ids, mask, device, **kwargs):
    return model(input_ids=ids.to(device), attention_mask=mask.to(device), **kwargs)


def check_bert_outputs(device, dtype, backend, pattern, seqlen, batch=3):
    model = hf_models.make_model(BertModel, hf_models.bert_config())
    ids, mask = hf_models.input_ids(batch, seqlen), hf_models.attention_mask(batch, seqlen, pattern)
    ref, eager, patched = hf_models.variants(model, device, dtype, backend)
    real = mask.bool().to(device)
    with torch.no_grad():
        outs = [_forward(m, ids, mask, device).last_hidden_state for m in (patched, ref, eager)]
    assert_numerics("last_hidden_state", *(o[real] for o in outs))
    # Documented: padded positions of the patched model's output hold zeros.
    assert (outs[0][~real] == 0).all()


def check_gpt2_logits(device, dtype, backend, pattern, seqlen, batch=3):
    model = hf_models.make_model(GPT2LMHeadModel, hf_models.gpt2_config())
    ids, mask = hf_models.input_ids(batch, seqlen), hf_models.attention_mask(batch, seqlen, pattern)
    ref, eager, patched = hf_models.variants(model, device, dtype, backend)
    real = mask.bool().to(device)
    with torch.no_grad():
        outs = [_forward(m, ids, mask, device).logits for m in (patched, ref, eager)]
    assert_numerics("logits", *(o[real] for o in outs))


def _named_grads(model, loss):
    params = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    grads = torch.autograd.grad(loss, [p for _, p in params], allow_unused=True)
    return {n: g for (n, _), g in zip(params, grads) if g is not None}


def _check_grads(run, model, device, dtype, backend):
    """run(model) -> scalar loss; every parameter's gradient, patched vs unpatched."""
    ref, eager, patched = hf_models.variants(model, device, dtype, backend)
    got, ref_grads, eager_grads = (_named_grads(m, run(m)) for m in (patched, ref, eager))
    assert got.keys() == ref_grads.keys()
    for name in got:
        assert_grad_numerics(f"grad {name}", got[name], ref_grads[name], eager_grads[name])


def check_bert_grads(device, dtype, backend, pattern="holes", seqlen=13, batch=3):
    model = hf_models.make_model(BertForMaskedLM, hf_models.bert_config())
    ids, mask = hf_models.input_ids(batch, seqlen), hf_models.attention_mask(batch, seqlen, pattern)
    labels = torch.where(mask.bool(), hf_models.input_ids(batch, seqlen, seed=1), -100)

    def run(m):
        return _forward(m, ids, mask, device, labels=labels.to(device)).loss

    _check_grads(run, model, device, dtype, backend)


def check_gpt2_grads(device, dtype, backend, pattern="left", seqlen=13, batch=3):
    model = hf_models.make_model(GPT2LMHeadModel, hf_models.gpt2_config())
    ids, mask = hf_models.input_ids(batch, seqlen), hf_models.attention_mask(batch, seqlen, pattern)
    labels = torch.where(mask.bool(), ids, -100)

    def run(m):
        return _forward(m, ids, mask, device, labels=labels.to(device)).loss

    _check_grads(run, model, device, dtype, backend)


def check_greedy_generation(device, dtype, backend, batch=3, prompt=7, new_tokens=12):
    """Left-padded prompts, KV cache: the same greedy tokens as the unpatched model (in dtype)."""
    model = hf_models.make_model(GPT2LMHeadModel, hf_models.gpt2_config())
    ids, mask = hf_models.input_ids(batch, prompt), hf_models.attention_mask(batch, prompt, "left")
    _ref, eager, patched = hf_models.variants(model, device, dtype, backend)
    kwargs = dict(max_new_tokens=new_tokens, do_sample=False, use_cache=True,
                  pad_token_id=hf_models.gpt2_config().pad_token_id)
    with torch.no_grad():
        expected = eager.generate(ids.to(device), attention_mask=mask.to(device), **kwargs)
        got = patched.generate(ids.to(device), attention_mask=mask.to(device), **kwargs)
    assert torch.equal(got, expected), f"patched generated {got.tolist()}, unpatched {expected.tolist()}"
