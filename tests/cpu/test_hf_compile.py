"""torch.compile(fullgraph=True) of a patched model's forward: no graph breaks, same outputs; and a
compiled training step: the same loss and gradients.

The cpu tier compiles with the aot_eager backend: it traces with dynamo and AOT autograd (the
custom ops' fake functions included), the part a patched model can break, without the minutes a
C++ inductor build takes on CPU. The gpu tier compiles with inductor.
"""

import copy
import warnings

import pytest
import torch
from transformers import BertForMaskedLM, BertModel, GPT2LMHeadModel

import fastattn
import hf_cases
import hf_models
from fastattn.nn import packing

CASES = [(GPT2LMHeadModel, hf_models.gpt2_config, "left"), (BertModel, hf_models.bert_config, "holes")]
# Families whose packed classes fastattn makes on first use (fastattn.hf.encoder_families).
FAMILY_CASES = [(hf_models.encoder_class(family),
                 lambda family=family: hf_models.encoder_config(family), "holes")
                for family in ("roberta", "distilbert")]
GPT_BIGCODE_CASE = (hf_models.decoder_class("gpt_bigcode"),
                    lambda: hf_models.decoder_config("gpt_bigcode"), "left")
TRAINING_CASES = [(GPT2LMHeadModel, hf_models.gpt2_config, "left"),
                  (BertForMaskedLM, hf_models.bert_config, "holes"), GPT_BIGCODE_CASE]


@pytest.mark.parametrize("model_class,config,pattern", CASES + FAMILY_CASES + [GPT_BIGCODE_CASE],
                         ids=["gpt2", "bert", "roberta", "distilbert", "gpt_bigcode"])
def test_fullgraph_compile(model_class, config, pattern):
    model = hf_models.make_model(model_class, config())
    compiled = hf_models.compile_patched(model, fastattn.patch(copy.deepcopy(model)), "aot_eager",
                                         hf_models.input_ids(3, 9),
                                         attention_mask=hf_models.attention_mask(3, 9, pattern))
    for seqlen in (9, 13):  # a second shape: recompiles (or runs dynamic) without breaking
        ids, mask = hf_models.input_ids(3, seqlen), hf_models.attention_mask(3, seqlen, pattern)
        with torch.no_grad():
            got, expected = compiled(ids, attention_mask=mask)[0], model(ids, attention_mask=mask)[0]
        real = mask.bool()
        torch.testing.assert_close(got[real], expected[real], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("model_class,config,pattern", TRAINING_CASES,
                         ids=["gpt2", "bert", "gpt_bigcode"])
def test_compiled_training_step(model_class, config, pattern):
    hf_cases.check_compiled_training(torch.device("cpu"), torch.float32, "torch", model_class,
                                     config(), pattern, "aot_eager")


class _Breaks(torch.nn.Module):
    """A stand-in for a model whose own code breaks the graph `breaks` times."""

    def __init__(self, breaks):
        super().__init__()
        self.breaks = breaks

    def forward(self, x):
        x = x + 1
        torch._dynamo.graph_break()
        if self.breaks > 1:
            x = x + 1
            torch._dynamo.graph_break()
        return x * 2


def test_compile_patched_allows_the_stock_models_own_breaks():
    compiled = hf_models.compile_patched(_Breaks(1), _Breaks(1), "eager", torch.ones(3))
    torch.testing.assert_close(compiled(torch.ones(3)), torch.full((3,), 4.0))
    compiled = hf_models.compile_patched(_Breaks(2), _Breaks(1), "eager", torch.ones(3))
    torch.testing.assert_close(compiled(torch.ones(3)), torch.full((3,), 4.0))


def test_compile_patched_rejects_breaks_the_patch_adds():
    with pytest.raises(AssertionError, match="breaks the graph 2 times, the stock one 1"):
        hf_models.compile_patched(_Breaks(1), _Breaks(2), "eager", torch.ones(3))


def _traced_calls(model, *args, **kwargs):
    """The names of the functions in the graph torch.compile(fullgraph=True) traces for model."""
    graphs = []

    def keep_graph(gm, example_inputs):
        graphs.append(gm)
        return gm.forward

    torch._dynamo.reset()
    with torch.no_grad():
        torch.compile(model, fullgraph=True, backend=keep_graph)(*args, **kwargs)
    return [str(node.target) for gm in graphs for node in gm.graph.nodes
            if node.op == "call_function"]


@pytest.mark.parametrize("static_tokens,unpads", [(packing.STATIC_TOKENS_UNDER_COMPILE, False),
                                                  (0, True)], ids=["small-batch", "large-batch"])
def test_compiled_bert_keeps_small_padded_batches_static(monkeypatch, static_tokens, unpads):
    """Under torch.compile a small padded batch keeps its padding as masked rows: no unpadding, so
    no data-dependent size in the graph (which would keep inductor's CUDA graphs away); a batch
    over STATIC_TOKENS_UNDER_COMPILE positions is still unpacked to its real tokens. Either way
    the real tokens' outputs are the unpatched model's, and padding comes out as zeros."""
    monkeypatch.setattr(packing, "STATIC_TOKENS_UNDER_COMPILE", static_tokens)
    model = hf_models.make_model(BertModel, hf_models.bert_config())
    patched = fastattn.patch(copy.deepcopy(model))
    ids, mask = hf_models.input_ids(3, 11), hf_models.attention_mask(3, 11, "holes")
    calls = _traced_calls(patched, ids, attention_mask=mask)
    assert any("attention_fwd" in c for c in calls)
    assert any("nonzero" in c for c in calls) == unpads, calls
    torch._dynamo.reset()
    compiled = torch.compile(patched, fullgraph=True, backend="aot_eager")
    with torch.no_grad():
        got, expected = compiled(ids, attention_mask=mask)[0], model(ids, attention_mask=mask)[0]
    real = mask.bool()
    torch.testing.assert_close(got[real], expected[real], rtol=1e-5, atol=1e-5)
    assert (got[~real] == 0).all()


@pytest.mark.parametrize("patch_backend", [None, "torch"])
def test_compiling_a_patched_model_raises_no_warning(patch_backend, monkeypatch):
    """Compiling must be quiet: dynamo warns (once per process, hence the cleared cache) when it
    traces through a functools cache, as it did through the backend choice of a chosen backend."""
    monkeypatch.setattr(torch._dynamo.utils, "warn_once_cache", set())
    model = fastattn.patch(hf_models.make_model(GPT2LMHeadModel, hf_models.gpt2_config()),
                           backend=patch_backend)
    ids, mask = hf_models.input_ids(2, 7), hf_models.attention_mask(2, 7, "left")
    torch._dynamo.reset()
    with warnings.catch_warnings(record=True) as caught, torch.no_grad():
        warnings.simplefilter("always")
        torch.compile(model, backend="eager")(ids, attention_mask=mask)
    assert [str(warning.message) for warning in caught] == []


def test_compile_under_autocast():
    """The autocast policy of the ops (fastattn/_autocast.py) traces without breaking the graph."""
    model = hf_models.make_model(GPT2LMHeadModel, hf_models.gpt2_config())
    patched = fastattn.patch(copy.deepcopy(model))
    ids, mask = hf_models.input_ids(3, 9), hf_models.attention_mask(3, 9, "left")
    with torch.autocast("cpu", dtype=torch.bfloat16), torch.no_grad():
        compiled = hf_models.compile_patched(model, patched, "aot_eager", ids, attention_mask=mask)
        got, expected = compiled(ids, attention_mask=mask)[0], patched(ids, attention_mask=mask)[0]
    assert got.dtype == expected.dtype == torch.bfloat16
    real = mask.bool()
    torch.testing.assert_close(got[real], expected[real], rtol=2e-2, atol=2e-2)


@pytest.mark.parametrize("model_class,config,pattern", CASES + [GPT_BIGCODE_CASE],
                         ids=["gpt2", "bert", "gpt_bigcode"])
def test_torch_export(model_class, config, pattern):
    """torch.export of a patched model: fastattn's ops are nodes of the exported graph (custom ops
    with fake implementations), and the exported program computes what the model does."""
    model = hf_models.make_model(model_class, config())
    patched = fastattn.patch(copy.deepcopy(model))
    ids, mask = hf_models.input_ids(3, 13), hf_models.attention_mask(3, 13, pattern)
    kwargs = dict(input_ids=ids, attention_mask=mask)
    if hf_models.is_causal_lm(model_class):
        kwargs["use_cache"] = False  # a DynamicCache output is not exportable, patched or not
    exported = torch.export.export(patched, (), kwargs)
    targets = {str(node.target) for node in exported.graph.nodes}
    assert {"fastattn.attention_fwd.default", "fastattn.ffn_fwd.default",
            "fastattn.layer_norm_residual_fwd.default"} <= targets
    with torch.no_grad():
        got, expected = exported.module()(**kwargs)[0], model(ids, attention_mask=mask)[0]
    real = mask.bool()
    torch.testing.assert_close(got[real], expected[real], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("model_class,config,pattern", CASES + [GPT_BIGCODE_CASE],
                         ids=["gpt2", "bert", "gpt_bigcode"])
def test_torch_export_with_dynamic_batch_and_length(model_class, config, pattern):
    hf_cases.check_export_with_dynamic_shapes(torch.device("cpu"), None, model_class, config(),
                                              pattern)
