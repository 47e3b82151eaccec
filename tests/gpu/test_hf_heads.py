"""Every BERT and GPT2 task head, patched against unpatched on a GPU: every backend, every dtype;
and the masked-LM head of each other BERT-style family, every backend in bfloat16 (their packed
layer is BERT's, whose heads check the kernels in every dtype; the cpu tier runs all their heads)
(tests/hf_heads.py)."""

import pytest
import torch

import hf_heads
import hf_models


@pytest.mark.parametrize("name", hf_heads.head_names(other_families=False))
def test_head_outputs_and_gradients(name, device, dtype, backend):
    hf_heads.check_head(name, device, dtype, backend)


@pytest.mark.parametrize("family", sorted(set(hf_models.ENCODER_FAMILIES) - {"bert"}))
def test_other_family_masked_lm_head(family, device, backend):
    hf_heads.check_head(hf_models.ENCODER_FAMILIES[family] + "ForMaskedLM", device, torch.bfloat16,
                        backend)
