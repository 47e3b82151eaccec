"""Checks of patched Hugging Face models against the unpatched ones, written once and run by the
cpu tier (torch backend, float32) and the gpu tier (every backend, every dtype).

Each check follows the numerics rule (tests/numerics.py): ref = the unpatched model in float64,
eager = the unpatched model in the test dtype, out = the patched model in the test dtype.
Only real-token positions are compared: what padded positions hold differs by design.
"""

import copy
import inspect

import pytest
import torch
from transformers import BertModel, GPT2LMHeadModel
from transformers.generation.configuration_utils import CompileConfig

import fastattn
import fastattn.hf.attention as hf_attention
import fastattn.hf.patching as hf_patching
import hf_models
import hf_spy
from numerics import assert_grad_numerics, assert_numerics


def _forward(model, ids, mask, device, **kwargs):
    return model(input_ids=ids.to(device), attention_mask=mask.to(device), **kwargs)


def check_bert_outputs(device, dtype, backend, pattern, seqlen, batch=3, config=None,
                       family="bert"):
    """BertModel's, or another BERT-style family's base model (hf_models.ENCODER_FAMILIES)."""
    model = hf_models.make_model(hf_models.encoder_class(family),
                                 config or hf_models.encoder_config(family))
    ids, mask = hf_models.input_ids(batch, seqlen), hf_models.attention_mask(batch, seqlen, pattern)
    ref, eager, patched = hf_models.variants(model, device, dtype, backend)
    real = mask.bool().to(device)
    with torch.no_grad():
        outs = [_forward(m, ids, mask, device).last_hidden_state for m in (patched, ref, eager)]
    assert_numerics("last_hidden_state", *(o[real] for o in outs))
    # Documented: padded positions of the patched model's output hold zeros.
    assert (outs[0][~real] == 0).all()


def check_gpt2_logits(device, dtype, backend, pattern, seqlen, batch=3, config=None,
                      family="gpt2"):
    """GPT2LMHeadModel's, or another GPT-2-style family's causal LM (hf_models.DECODER_FAMILIES)."""
    model = hf_models.make_model(hf_models.decoder_class(family),
                                 config or hf_models.decoder_config(family))
    ids, mask = hf_models.input_ids(batch, seqlen), hf_models.attention_mask(batch, seqlen, pattern)
    ref, eager, patched = hf_models.variants(model, device, dtype, backend)
    real = mask.bool().to(device)
    with torch.no_grad():
        outs = [_forward(m, ids, mask, device).logits for m in (patched, ref, eager)]
    assert_numerics("logits", *(o[real] for o in outs))


def named_grads(model, loss):
    params = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    grads = torch.autograd.grad(loss, [p for _, p in params], allow_unused=True)
    return {n: g for (n, _), g in zip(params, grads) if g is not None}


def _check_grads(run, model, device, dtype, backend):
    """run(model) -> scalar loss; every parameter's gradient, patched vs unpatched."""
    ref, eager, patched = hf_models.variants(model, device, dtype, backend)
    got, ref_grads, eager_grads = (named_grads(m, run(m)) for m in (patched, ref, eager))
    assert got.keys() == ref_grads.keys()
    params = dict(patched.named_parameters())
    for name in got:
        assert_grad_numerics(f"grad {name}", got[name], ref_grads[name], eager_grads[name])
        # Laid out as its parameter, or autograd copies it into that layout at every step
        # (GPT-2's Conv1D weights are stored [in, out]: fastattn/backends/_weight_layout.py).
        assert got[name].stride() == params[name].stride(), (name, got[name].stride())


def check_bert_grads(device, dtype, backend, pattern="holes", seqlen=13, batch=3, family="bert"):
    model = hf_models.make_model(hf_models.encoder_class(family, "ForMaskedLM"),
                                 hf_models.encoder_config(family))
    ids, mask = hf_models.input_ids(batch, seqlen), hf_models.attention_mask(batch, seqlen, pattern)
    labels = torch.where(mask.bool(), hf_models.input_ids(batch, seqlen, seed=1), -100)

    def run(m):
        return _forward(m, ids, mask, device, labels=labels.to(device)).loss

    _check_grads(run, model, device, dtype, backend)


def check_gpt2_grads(device, dtype, backend, pattern="left", seqlen=13, batch=3, family="gpt2"):
    model = hf_models.make_model(hf_models.decoder_class(family), hf_models.decoder_config(family))
    ids, mask = hf_models.input_ids(batch, seqlen), hf_models.attention_mask(batch, seqlen, pattern)
    labels = torch.where(mask.bool(), ids, -100)

    def run(m):
        return _forward(m, ids, mask, device, labels=labels.to(device)).loss

    _check_grads(run, model, device, dtype, backend)


def check_compiled_training(device, dtype, backend, model_class, config, pattern, compile_backend,
                            seqlen=13, batch=3):
    """A training step of the patched model under torch.compile: AOT autograd traces the fused
    ops' backward through their registered autograd (the backward custom ops and their fake
    functions). The loss and every parameter's gradient against the unpatched model, uncompiled."""
    model = hf_models.make_model(model_class, config)
    ids, mask = hf_models.input_ids(batch, seqlen), hf_models.attention_mask(batch, seqlen, pattern)
    labels = torch.where(mask.bool(), hf_models.input_ids(batch, seqlen, seed=1), -100)
    kwargs = dict(input_ids=ids.to(device), attention_mask=mask.to(device), labels=labels.to(device))
    ref, eager, patched = hf_models.variants(model, device, dtype, backend)
    for m in (ref, eager, patched):
        m.train()  # the test configs have no dropout: the same function, with autograd's saving
    compiled = hf_models.compile_patched(eager, patched, compile_backend, **kwargs)
    losses = [m(**kwargs).loss for m in (compiled, ref, eager)]
    assert_numerics("loss", *losses)
    got, ref_grads, eager_grads = (named_grads(m, loss)
                                   for m, loss in zip((patched, ref, eager), losses))
    assert got.keys() == ref_grads.keys()
    for name in got:
        assert_grad_numerics(f"grad {name}", got[name], ref_grads[name], eager_grads[name])


def check_autocast_training(device, autocast_dtype, backend, model_class, seqlen=13, batch=3):
    """Mixed precision as users train: float32 weights, the forward under torch.autocast. The
    patched model gives what the unpatched one gives under the same autocast (eager): outputs of
    the same dtype, and outputs and float32 weight gradients as close to the float64 unpatched
    model (ref, no autocast) as eager's, within the numerics rule."""
    config = hf_models.gpt2_config() if model_class is GPT2LMHeadModel else hf_models.bert_config()
    model = hf_models.make_model(model_class, config)
    ids, mask = hf_models.input_ids(batch, seqlen), hf_models.attention_mask(batch, seqlen, "left")
    labels = torch.where(mask.bool(), hf_models.input_ids(batch, seqlen, seed=1), -100)
    real = mask.bool().to(device)
    ref, eager, patched = hf_models.variants(model, device, torch.float32, backend)
    results = {}
    for name, m in (("patched", patched), ("ref", ref), ("eager", eager)):
        with torch.autocast(device.type, dtype=autocast_dtype, enabled=name != "ref"):
            output = _forward(m, ids, mask, device, labels=labels.to(device))
        results[name] = (output.logits, named_grads(m, output.loss))
    (logits, grads), (ref_logits, ref_grads), (eager_logits, eager_grads) = (
        results[name] for name in ("patched", "ref", "eager"))
    assert logits.dtype == eager_logits.dtype, (logits.dtype, eager_logits.dtype)
    assert_numerics("logits", logits[real].float(), ref_logits[real], eager_logits[real].float())
    assert grads.keys() == ref_grads.keys()
    for name in grads:
        assert grads[name].dtype == torch.float32
        assert_grad_numerics(f"grad {name}", grads[name], ref_grads[name], eager_grads[name])


def check_greedy_generation(device, dtype, backend, batch=3, prompt=7, new_tokens=12, config=None,
                            family="gpt2"):
    """Left-padded prompts, KV cache: the same greedy tokens as the unpatched model (in dtype)."""
    expected, got = _greedy_generations(device, dtype, backend, batch, prompt, new_tokens,
                                        config=config, family=family)
    assert_same_generation(got, expected)


# transformers renamed the KV cache argument (and generate's output field) inside 5.x:
# past_key_values -> cache.
CACHE_KWARG = ("cache" if "cache" in inspect.signature(GPT2LMHeadModel.forward).parameters
               else "past_key_values")
# Ways of generating besides greedy search that reach the attention differently: beams reorder
# and expand the cache, sampling draws from the logits, prompt lookup and an assistant model verify
# several draft tokens at once (queries Sq > 1 against a cache: bottom-right causal), a continued
# call resumes from a returned cache with new tokens, chunked prefill fills the cache piecewise.
# Prompt lookup and assisted generation take one sequence (transformers' rule).
GENERATION_MODES = ("beam search", "sampling", "prompt lookup", "assisted", "continued",
                    "chunked prefill")


def _generate_in_mode(model, mode, ids, mask, new_tokens, assistant):
    kwargs = dict(max_new_tokens=new_tokens, min_new_tokens=new_tokens, use_cache=True,
                  pad_token_id=hf_models.gpt2_config().pad_token_id, return_dict_in_generate=True,
                  output_logits=True)
    torch.manual_seed(7)  # sampling: the same draws for both models
    if mode == "beam search":
        return model.generate(ids, attention_mask=mask, num_beams=3, do_sample=False, **kwargs)
    if mode == "sampling":
        return model.generate(ids, attention_mask=mask, do_sample=True, top_k=8, **kwargs)
    if mode == "prompt lookup":
        return model.generate(ids[:1], attention_mask=mask[:1], prompt_lookup_num_tokens=3,
                              do_sample=False, **kwargs)
    if mode == "assisted":
        return model.generate(ids[:1], attention_mask=mask[:1], assistant_model=assistant,
                              do_sample=False, **kwargs)
    if mode == "chunked prefill":
        return model.generate(ids, attention_mask=mask, prefill_chunk_size=3, do_sample=False,
                              **kwargs)
    if mode == "continued":
        first = model.generate(ids, attention_mask=mask, do_sample=False, **kwargs)
        more = hf_models.input_ids(ids.shape[0], 4, seed=5).to(ids.device)
        ids = torch.cat([first.sequences, more], 1)
        mask = torch.cat([mask, mask.new_ones(ids.shape[0], ids.shape[1] - mask.shape[1])], 1)
        return model.generate(ids, attention_mask=mask, do_sample=False,
                              **{CACHE_KWARG: getattr(first, CACHE_KWARG)}, **kwargs)
    raise ValueError(mode)


def check_generation_mode(device, dtype, backend, mode, batch=3, prompt=9, new_tokens=8,
                          family="gpt2"):
    """Left-padded prompts generated in `mode` (GENERATION_MODES): the same tokens as the
    unpatched model, and the same logits at each step (a tiny random model's argmax shrugs off
    most attention errors: the logits do not)."""
    model_class = hf_models.decoder_class(family)
    model = hf_models.make_model(model_class, hf_models.decoder_config(family))
    assistant = hf_models.make_model(model_class, hf_models.decoder_config(family, n_layer=1),
                                     seed=1)
    assistant.to(device, dtype)
    ids, mask = hf_models.input_ids(batch, prompt), hf_models.attention_mask(batch, prompt, "left")
    # Prompt lookup finds its drafts in the prompt: give the first prompt a repeated stretch.
    ids[0, -4:] = ids[0, -8:-4]
    _ref, eager, patched = hf_models.variants(model, device, dtype, backend)
    ids, mask = ids.to(device), mask.to(device)
    with torch.no_grad():
        expected, got = (_generate_in_mode(m, mode, ids, mask, new_tokens, assistant)
                         for m in (eager, patched))
    assert_same_generation(got, expected, mode)


def check_static_cache_generation(device, dtype, backend, batch=3, prompt=7, new_tokens=12,
                                  family="gpt2"):
    """Greedy generation with a static cache (transformers' cache_implementation="static"): the
    same tokens as the unpatched model, and every decoding step on fastattn's attention with a key
    padding mask (the cache's unwritten tail and the left padding masked), not on the dense-mask
    fallback, which only the prefill takes (one call per layer)."""
    with (hf_spy.spy("attention") as calls,
          hf_spy.spy("sdpa_attention_forward", module=hf_attention) as fallback):
        expected, got = _greedy_generations(device, dtype, backend, batch, prompt, new_tokens,
                                            family=family, cache_implementation="static")
    assert_same_generation(got, expected)
    layers = hf_models.gpt2_config().n_layer
    dense = len(fallback["sdpa_attention_forward"])
    assert dense == layers, f"dense-mask fallback calls {dense}: the prefill's {layers} expected"
    decode_masks = [kwargs["key_padding_mask"] for args, kwargs in calls["attention"]
                    if args[0].shape[2] == 1]
    assert len(decode_masks) == layers * (new_tokens - 1)
    assert all(m is not None and m.shape == (batch, prompt + new_tokens - 1) for m in decode_masks)


def check_compiled_static_cache_generation(device, dtype, backend, compile_backend, batch=3,
                                           prompt=7, new_tokens=12, family="gpt2"):
    """As check_static_cache_generation, with generate compiling the decoding step (fullgraph=True,
    no recompiles), as transformers does by itself for static caches on GPUs (there with
    inductor's CUDA graphs). Nothing spies on the calls here: a spy's list would be traced."""
    mode = "reduce-overhead" if compile_backend == "inductor" else None
    compile_config = CompileConfig(fullgraph=True, backend=compile_backend, mode=mode)
    compile_config._compile_all_devices = True  # also on CPU, where transformers would not compile
    torch._dynamo.reset()
    with torch._dynamo.config.patch(recompile_limit=1):
        expected, got = _greedy_generations(device, dtype, backend, batch, prompt, new_tokens,
                                            family=family, cache_implementation="static",
                                            compile_config=compile_config)
    assert_same_generation(got, expected)


def check_tester_size_models(device, dtype, backend):
    """transformers' own tester size, hidden 32 over 4 heads, is head dim 8, which the triton
    kernels are not built for: patching such a model onto triton by name is refused up front (the
    model untouched); under the automatic choice its attention runs on a backend that takes any
    head dim, and BERT's outputs, GPT-2's logits and greedy generation match the unpatched model."""
    bert_config = hf_models.bert_config(hidden_size=32)
    gpt2_config = hf_models.gpt2_config(n_embd=32)
    if backend == "triton":
        model = hf_models.make_model(BertModel, bert_config)
        with pytest.raises(ValueError, match="backend 'triton' cannot run BertModel's attention: "
                                             "head dim 8"):
            fastattn.patch(model, backend="triton")
        assert not hf_patching.is_patched(model)
        backend = None
    check_bert_outputs(device, dtype, backend, "holes", 13, config=bert_config)
    check_gpt2_logits(device, dtype, backend, "left", 13, config=gpt2_config)
    if dtype == torch.float32:  # in 16-bit types a near-tie of two logits may round either way
        check_greedy_generation(device, dtype, backend, config=gpt2_config)


def assert_same_generation(got, expected, what="greedy"):
    """The same tokens and the same logits at every step (generate's outputs with
    return_dict_in_generate and output_logits): a tiny random model's argmax shrugs off most
    attention errors, its logits do not. Float32 models: 1e-4."""
    assert torch.equal(got.sequences, expected.sequences), (
        f"{what}: patched generated {got.sequences.tolist()}, unpatched {expected.sequences.tolist()}")
    assert len(got.logits) == len(expected.logits)
    for step, (logits, ref_logits) in enumerate(zip(got.logits, expected.logits)):
        torch.testing.assert_close(logits, ref_logits, rtol=1e-4, atol=1e-4,
                                   msg=lambda text: f"{what}, logits of step {step}: {text}")


def _greedy_generations(device, dtype, backend, batch, prompt, new_tokens, config=None,
                        family="gpt2", **generate_kwargs):
    """(unpatched, patched) greedy generations (generate's output objects, with the logits of each
    step) from the same left-padded prompts."""
    model = hf_models.make_model(hf_models.decoder_class(family),
                                 config or hf_models.decoder_config(family))
    ids, mask = hf_models.input_ids(batch, prompt), hf_models.attention_mask(batch, prompt, "left")
    _ref, eager, patched = hf_models.variants(model, device, dtype, backend)
    kwargs = dict(max_new_tokens=new_tokens, do_sample=False, use_cache=True,
                  pad_token_id=hf_models.gpt2_config().pad_token_id, return_dict_in_generate=True,
                  output_logits=True)
    with torch.no_grad():
        expected = eager.generate(ids.to(device), attention_mask=mask.to(device), **kwargs)
        got = patched.generate(ids.to(device), attention_mask=mask.to(device), **kwargs,
                               **generate_kwargs)
    return expected, got


def check_export_with_dynamic_shapes(device, backend, model_class, config, pattern):
    """torch.export with a dynamic batch and length, run on other sizes: fastattn's choices made
    from sizes (padding kept or dropped, the decode backend order, the FFN's int32 limit) must add
    no guard on a dynamic size, which torch.export refuses when narrower than the declared range
    (it asked for sequences of at most 16, the decode bound)."""
    model = hf_models.make_model(model_class, config).to(device)
    patched = fastattn.patch(copy.deepcopy(model), backend=backend)
    extra = {"use_cache": False} if hf_models.is_causal_lm(model_class) else {}
    batch, length = torch.export.Dim("batch", max=64), torch.export.Dim("length", min=2, max=500)
    example = dict(input_ids=hf_models.input_ids(3, 11).to(device),
                   attention_mask=hf_models.attention_mask(3, 11, pattern).to(device), **extra)
    exported = torch.export.export(
        patched, (), example,
        dynamic_shapes={"input_ids": {0: batch, 1: length}, "attention_mask": {0: batch, 1: length},
                        **{name: None for name in extra}})
    for size in ((1, 2), (5, 17), (2, 300)):
        ids = hf_models.input_ids(*size, seed=1).to(device)
        mask = hf_models.attention_mask(*size, pattern, seed=1).to(device)
        with torch.no_grad():
            got = exported.module()(input_ids=ids, attention_mask=mask, **extra)[0]
            expected = model(ids, attention_mask=mask)[0]
        real = mask.bool()
        torch.testing.assert_close(got[real], expected[real], rtol=1e-4, atol=1e-4)
