"""torch.compile(fullgraph=True) of a patched model's forward: no graph breaks, same outputs.

The cpu tier compiles with the aot_eager backend: it traces with dynamo and AOT autograd (the
custom ops' fake functions included), the part a patched model can break, without the minutes a
C++ inductor build takes on CPU. The gpu tier compiles with inductor.
"""

import copy

import pytest
import torch
from transformers import BertModel, GPT2LMHeadModel

import fastattn
import hf_models

CASES = [(GPT2LMHeadModel, hf_models.gpt2_config, "left"), (BertModel, hf_models.bert_config, "holes")]


@pytest.mark.parametrize("model_class,config,pattern", CASES, ids=["gpt2", "bert"])
def test_fullgraph_compile(model_class, config, pattern):
    torch._dynamo.reset()
    model = hf_models.make_model(model_class, config())
    compiled = torch.compile(fastattn.patch(copy.deepcopy(model)), fullgraph=True, backend="aot_eager")
    for seqlen in (9, 13):  # a second shape: recompiles (or runs dynamic) without breaking
        ids, mask = hf_models.input_ids(3, seqlen), hf_models.attention_mask(3, seqlen, pattern)
        with torch.no_grad():
            got, expected = compiled(ids, attention_mask=mask)[0], model(ids, attention_mask=mask)[0]
        real = mask.bool()
        torch.testing.assert_close(got[real], expected[real], rtol=1e-5, atol=1e-5)
