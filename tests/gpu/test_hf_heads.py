"""Every BERT and GPT2 task head, and the masked-LM head of each other BERT-style family (its
encoder is BERT's; the cpu tier runs all its heads), patched against unpatched on a GPU: every
backend, every dtype (tests/hf_heads.py)."""

import pytest

import hf_heads


@pytest.mark.parametrize("name", hf_heads.head_names(every_family_head=False))
def test_head_outputs_and_gradients(name, device, dtype, backend):
    hf_heads.check_head(name, device, dtype, backend)
