"""Every BERT-style and GPT2-style task head in the installed transformers, patched against
unpatched: outputs on a batch with holes in its mask, and every parameter's gradient
(tests/hf_heads.py)."""

import pytest
import torch

import hf_heads


def test_the_lookup_finds_every_known_head():
    # The parametrization below comes from this lookup: an empty or shrunken list would pass quietly.
    assert set(hf_heads.KNOWN_HEADS) <= set(hf_heads.head_names())


@pytest.mark.parametrize("name", hf_heads.head_names())
def test_head_outputs_and_gradients(name, device, backend):
    hf_heads.check_head(name, device, torch.float32, backend)
