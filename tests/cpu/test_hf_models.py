"""Patched tiny BERT (and the other BERT-style families) and GPT2 (and GPTBigCode, multi-query and
not) against the unpatched models: outputs on padded batches (right and left padding, holes, odd
lengths), gradients, generation with the KV cache."""

import pytest
import torch

import hf_cases
import hf_models

SEQLENS = (1, 7, 33)


@pytest.mark.parametrize("seqlen", SEQLENS)
@pytest.mark.parametrize("pattern", hf_models.MASK_PATTERNS)
def test_bert_outputs(device, backend, pattern, seqlen):
    hf_cases.check_bert_outputs(device, torch.float32, backend, pattern, seqlen)


@pytest.mark.parametrize("seqlen", SEQLENS)
@pytest.mark.parametrize("pattern", hf_models.MASK_PATTERNS)
def test_gpt2_logits(device, backend, pattern, seqlen):
    hf_cases.check_gpt2_logits(device, torch.float32, backend, pattern, seqlen)


def test_bert_grads(device, backend):
    hf_cases.check_bert_grads(device, torch.float32, backend)


OTHER_ENCODER_FAMILIES = sorted(set(hf_models.ENCODER_FAMILIES) - {"bert"})


@pytest.mark.parametrize("seqlen", SEQLENS)
@pytest.mark.parametrize("pattern", hf_models.MASK_PATTERNS)
@pytest.mark.parametrize("family", OTHER_ENCODER_FAMILIES)
def test_encoder_family_outputs(device, backend, family, pattern, seqlen):
    hf_cases.check_bert_outputs(device, torch.float32, backend, pattern, seqlen, family=family)


@pytest.mark.parametrize("family", OTHER_ENCODER_FAMILIES)
def test_encoder_family_grads(device, backend, family):
    hf_cases.check_bert_grads(device, torch.float32, backend, family=family)


def test_gpt2_grads(device, backend):
    hf_cases.check_gpt2_grads(device, torch.float32, backend)


def test_greedy_generation(device, backend):
    hf_cases.check_greedy_generation(device, torch.float32, backend)


@pytest.mark.parametrize("mode", hf_cases.GENERATION_MODES)
def test_generation_modes(device, backend, mode):
    hf_cases.check_generation_mode(device, torch.float32, backend, mode)


def test_static_cache_generation(device, backend):
    hf_cases.check_static_cache_generation(device, torch.float32, backend)


def test_compiled_static_cache_generation(device, backend):
    """The decoding step compiled with fullgraph=True (aot_eager: the tracing, without inductor's
    CPU code generation; the gpu tier compiles with inductor and CUDA graphs)."""
    hf_cases.check_compiled_static_cache_generation(device, torch.float32, backend, "aot_eager")


def test_tester_size_models(device, backend):
    hf_cases.check_tester_size_models(device, torch.float32, backend)


OTHER_DECODER_FAMILIES = sorted(set(hf_models.DECODER_FAMILIES) - {"gpt2"})


@pytest.mark.parametrize("seqlen", SEQLENS)
@pytest.mark.parametrize("pattern", hf_models.MASK_PATTERNS)
@pytest.mark.parametrize("family", OTHER_DECODER_FAMILIES)
def test_decoder_family_logits(device, backend, family, pattern, seqlen):
    hf_cases.check_gpt2_logits(device, torch.float32, backend, pattern, seqlen, family=family)


@pytest.mark.parametrize("family", OTHER_DECODER_FAMILIES)
def test_decoder_family_grads(device, backend, family):
    hf_cases.check_gpt2_grads(device, torch.float32, backend, family=family)


@pytest.mark.parametrize("family", OTHER_DECODER_FAMILIES)
def test_decoder_family_greedy_generation(device, backend, family):
    hf_cases.check_greedy_generation(device, torch.float32, backend, family=family)


@pytest.mark.parametrize("mode", hf_cases.GENERATION_MODES)
@pytest.mark.parametrize("family", OTHER_DECODER_FAMILIES)
def test_decoder_family_generation_modes(device, backend, family, mode):
    hf_cases.check_generation_mode(device, torch.float32, backend, mode, family=family)


@pytest.mark.parametrize("family", OTHER_DECODER_FAMILIES)
def test_decoder_family_static_cache_generation(device, backend, family):
    hf_cases.check_static_cache_generation(device, torch.float32, backend, family=family)


@pytest.mark.parametrize("family", OTHER_DECODER_FAMILIES)
def test_decoder_family_compiled_static_cache_generation(device, backend, family):
    hf_cases.check_compiled_static_cache_generation(device, torch.float32, backend, "aot_eager",
                                                    family=family)


def test_gpt_bigcode_without_score_scaling(device, backend):
    """scale_attn_weights=False: GPTBigCode's attention passes scaling 1.0, which must reach
    fastattn.attention (its default would be 1/sqrt(head dim))."""
    config = hf_models.decoder_config("gpt_bigcode", scale_attn_weights=False)
    hf_cases.check_gpt2_logits(device, torch.float32, backend, "left", 13, config=config,
                               family="gpt_bigcode")
