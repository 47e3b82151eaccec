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
