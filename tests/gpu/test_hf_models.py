"""Patched tiny BERT and GPT2 on the GPU, every backend and dtype (bfloat16 too), against the
unpatched models under the numerics rule; greedy generation and the other generation modes;
inductor fullgraph compile. The other BERT-style and GPT2-style families: a few cases each."""

import copy

import pytest
import torch
from transformers import BertForMaskedLM, BertModel, GPT2LMHeadModel

import fastattn
import hf_cases
import hf_models

SEQLENS = (7, 113, 257)


@pytest.mark.parametrize("seqlen", SEQLENS)
@pytest.mark.parametrize("pattern", hf_models.MASK_PATTERNS)
def test_bert_outputs(device, dtype, backend, pattern, seqlen):
    hf_cases.check_bert_outputs(device, dtype, backend, pattern, seqlen, batch=4)


@pytest.mark.parametrize("seqlen", SEQLENS)
@pytest.mark.parametrize("pattern", hf_models.MASK_PATTERNS)
def test_gpt2_logits(device, dtype, backend, pattern, seqlen):
    hf_cases.check_gpt2_logits(device, dtype, backend, pattern, seqlen, batch=4)


def test_bert_grads(device, dtype, backend):
    hf_cases.check_bert_grads(device, dtype, backend, seqlen=113)


# The other BERT-style families run BERT's packed layer: one padded case each, in bfloat16 (BERT's
# cases above check the kernels' numerics in every dtype).
OTHER_ENCODER_FAMILIES = sorted(set(hf_models.ENCODER_FAMILIES) - {"bert"})


@pytest.mark.parametrize("family", OTHER_ENCODER_FAMILIES)
def test_encoder_family_outputs(device, backend, family):
    hf_cases.check_bert_outputs(device, torch.bfloat16, backend, "holes", 113, batch=4,
                                family=family)


@pytest.mark.parametrize("family", OTHER_ENCODER_FAMILIES)
def test_encoder_family_grads(device, backend, family):
    hf_cases.check_bert_grads(device, torch.bfloat16, backend, seqlen=113, family=family)


def test_gpt2_grads(device, dtype, backend):
    hf_cases.check_gpt2_grads(device, dtype, backend, seqlen=113)


# GPTBigCode runs GPT-2's block with nn.Linear projections and, multi-query, one key/value head
# that the attention kernels take as it is (kv_group = heads): bfloat16 on every backend.
OTHER_DECODER_FAMILIES = sorted(set(hf_models.DECODER_FAMILIES) - {"gpt2"})


@pytest.mark.parametrize("pattern", ["left", "holes"])
@pytest.mark.parametrize("family", OTHER_DECODER_FAMILIES)
def test_decoder_family_logits(device, backend, family, pattern):
    hf_cases.check_gpt2_logits(device, torch.bfloat16, backend, pattern, 113, batch=4,
                               family=family)


@pytest.mark.parametrize("family", OTHER_DECODER_FAMILIES)
def test_decoder_family_grads(device, backend, family):
    hf_cases.check_gpt2_grads(device, torch.bfloat16, backend, seqlen=113, family=family)


@pytest.mark.parametrize("family", OTHER_DECODER_FAMILIES)
def test_decoder_family_greedy_generation(device, backend, family):
    hf_cases.check_greedy_generation(device, torch.float32, backend, batch=4, new_tokens=32,
                                     family=family)


@pytest.mark.parametrize("autocast_dtype", [torch.bfloat16, torch.float16], ids=["bf16", "fp16"])
@pytest.mark.parametrize("model_class", [BertForMaskedLM, GPT2LMHeadModel], ids=["bert", "gpt2"])
def test_mixed_precision_training_under_autocast(device, backend, model_class, autocast_dtype):
    hf_cases.check_autocast_training(device, autocast_dtype, backend, model_class, seqlen=113)


def test_greedy_generation(device, backend):
    # float32 only: in 16-bit types a near-tie between two logits may legitimately round either way.
    hf_cases.check_greedy_generation(device, torch.float32, backend, batch=4, new_tokens=32)


@pytest.mark.parametrize("mode", hf_cases.GENERATION_MODES)
def test_generation_modes(device, backend, mode):
    # float32, as greedy generation: the same tokens and logits as the unpatched model.
    hf_cases.check_generation_mode(device, torch.float32, backend, mode, batch=4)


@pytest.mark.parametrize("model_class,config", [(GPT2LMHeadModel, hf_models.gpt2_config),
                                                (BertModel, hf_models.bert_config)], ids=["gpt2", "bert"])
def test_inductor_fullgraph_compile(device, backend, model_class, config):
    model = hf_models.make_model(model_class, config()).to(device)
    ids = hf_models.input_ids(4, 65).to(device)
    mask = hf_models.attention_mask(4, 65, "left").to(device)
    compiled = hf_models.compile_patched(model, fastattn.patch(copy.deepcopy(model), backend=backend),
                                         "inductor", ids, attention_mask=mask)
    with torch.no_grad():
        got, expected = compiled(ids, attention_mask=mask)[0], model(ids, attention_mask=mask)[0]
    real = mask.bool()
    torch.testing.assert_close(got[real], expected[real], rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("model_class,config,pattern", [
    (GPT2LMHeadModel, hf_models.gpt2_config, "left"),
    (BertForMaskedLM, hf_models.bert_config, "holes")], ids=["gpt2", "bert"])
def test_compiled_training_step(device, backend, model_class, config, pattern):
    # bfloat16, the training dtype; aot_eager traces what a patched model contributes (dynamo and
    # AOT autograd through the fused ops' backward) without an inductor build per case.
    hf_cases.check_compiled_training(device, torch.bfloat16, backend, model_class, config(),
                                     pattern, "aot_eager", seqlen=65)


@pytest.mark.parametrize("model_class,config,pattern", [
    (GPT2LMHeadModel, hf_models.gpt2_config, "left"), (BertModel, hf_models.bert_config, "holes")],
    ids=["gpt2", "bert"])
def test_torch_export_with_dynamic_batch_and_length(device, backend, model_class, config, pattern):
    hf_cases.check_export_with_dynamic_shapes(device, backend, model_class, config(), pattern)


def test_static_cache_generation(device, backend):
    hf_cases.check_static_cache_generation(device, torch.float32, backend, batch=4, new_tokens=32)


@pytest.mark.parametrize("compile_backend", ["cudagraphs", "inductor"])
def test_compiled_static_cache_generation(device, backend, compile_backend):
    """The decoding step compiled as transformers compiles it by itself for a static cache on a GPU
    (inductor, mode reduce-overhead: CUDA graphs), and with dynamo's cudagraphs backend (CUDA
    graphs, no code generation): fastattn's kernels captured once, then replayed every step."""
    if compile_backend == "inductor" and backend != "triton":
        pytest.skip("inductor's compile takes tens of seconds: one backend (triton) covers it; "
                    "the cudagraphs case captures every backend")
    hf_cases.check_compiled_static_cache_generation(device, torch.float32, backend, compile_backend,
                                                    batch=4, new_tokens=32)


def test_reduce_overhead_compile_captures_a_small_padded_bert(device, backend):
    """torch.compile(mode="reduce-overhead") of a patched BERT on a small padded batch: the
    padding kept as masked rows (static shapes, fastattn.nn.packing), so inductor captures the
    forward in CUDA graphs (no cudagraph skip counted) and its replays match the unpatched model."""
    from torch._dynamo.utils import counters

    model = hf_models.make_model(BertModel, hf_models.bert_config()).to(device)
    patched = fastattn.patch(copy.deepcopy(model), backend=backend)
    ids = hf_models.input_ids(4, 65).to(device)
    mask = hf_models.attention_mask(4, 65, "holes").to(device)
    torch._dynamo.reset()
    counters.clear()
    compiled = torch.compile(patched, mode="reduce-overhead")
    with torch.no_grad():
        for _ in range(3):  # warm-up, recording, replay
            got = compiled(ids, attention_mask=mask)[0].clone()
        expected = model(ids, attention_mask=mask)[0]
    assert counters["inductor"]["cudagraph_skips"] == 0, dict(counters["inductor"])
    real = mask.bool()
    torch.testing.assert_close(got[real], expected[real], rtol=1e-4, atol=1e-4)
    assert (got[~real] == 0).all()


def test_tester_size_models(device, dtype, backend):
    hf_cases.check_tester_size_models(device, dtype, backend)
