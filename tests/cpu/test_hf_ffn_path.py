"""The patched blocks run their feed-forward network through the fused fastattn.ffn op (GPT2's
output dropout inside it in training), not through a separate bias_gelu and two linears."""

import pytest
import torch
from transformers import BertModel, GPT2Model

import fastattn
import hf_models
from hf_spy import spy


@pytest.mark.parametrize("training", [False, True], ids=["eval", "train"])
@pytest.mark.parametrize("kind", ["bert", "gpt2"])
def test_blocks_call_fused_ffn(kind, training):
    if kind == "bert":
        model = hf_models.make_model(BertModel, hf_models.bert_config(hidden_dropout_prob=0.1))
    else:
        model = hf_models.make_model(GPT2Model, hf_models.gpt2_config(resid_pdrop=0.1))
    model = fastattn.patch(model).train(training)
    ids, mask = hf_models.input_ids(2, 7), hf_models.attention_mask(2, 7, "right")
    with spy("ffn", "bias_gelu") as calls:
        model(ids, attention_mask=mask).last_hidden_state.sum().backward()
    assert not calls["bias_gelu"]
    assert len(calls["ffn"]) == model.config.num_hidden_layers
    # BERT drops out after the residual add (in its LayerNorm); GPT2 inside the FFN.
    expected_p = 0.1 if training and kind == "gpt2" else 0.0
    assert all(kwargs["dropout_p"] == expected_p for _args, kwargs in calls["ffn"])


def test_gpt2_ffn_dropout_is_seeded():
    model = fastattn.patch(hf_models.make_model(GPT2Model, hf_models.gpt2_config(resid_pdrop=0.5))).train()
    ids = hf_models.input_ids(2, 7)

    def run(seed):
        torch.manual_seed(seed)
        return model(ids).last_hidden_state

    assert torch.equal(run(3), run(3)) and not torch.equal(run(3), run(4))
