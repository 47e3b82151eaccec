"""The patched BertLayer's one QKV GEMM over the three projections concatenated: it follows every
change of a projection (in-place writes, writes through `.data`, replaced parameters, casts), and
with autograd the gradients reach the original parameters."""

import copy

import torch
from transformers import BertModel

import fastattn
import hf_models


def _model():
    model = hf_models.make_model(BertModel, hf_models.bert_config()).eval()
    return model, fastattn.patch(copy.deepcopy(model))


def _outputs(model, ids, mask):
    with torch.no_grad():
        return model(ids, attention_mask=mask)[0]


def _check_change_is_seen(change, pattern="holes"):
    """change(model) applied to the stock and the patched model between two inference calls: the
    patched model's second output differs from its first and matches the stock model's."""
    stock, patched = _model()
    ids, mask = hf_models.input_ids(2, 9), hf_models.attention_mask(2, 9, pattern)
    real = mask.bool()
    first = _outputs(patched, ids, mask)
    torch.testing.assert_close(first[real], _outputs(stock, ids, mask)[real], rtol=1e-5, atol=1e-5)
    for model in (stock, patched):
        change(model)
    second = _outputs(patched, ids, mask)
    assert not torch.allclose(first[real], second[real])
    torch.testing.assert_close(second[real], _outputs(stock, ids, mask)[real], rtol=1e-5, atol=1e-5)
    return patched, ids, mask


@torch.no_grad()
def _write_in_place(model):  # as an optimizer step or load_state_dict does
    model.encoder.layer[0].attention.self.key.weight.mul_(1.5)
    model.encoder.layer[1].attention.self.value.bias.add_(0.25)


def test_concatenation_follows_in_place_writes_and_casts():
    patched, ids, mask = _check_change_is_seen(_write_in_place)
    patched.to(torch.bfloat16)  # new storage, same Parameter objects
    assert _outputs(patched, ids, mask).dtype == torch.bfloat16


def _write_through_data(model):
    for param in model.parameters():
        param.data.mul_(0.9).add_(0.01)


def test_writes_through_data_are_seen():
    # EMA updates and hand-written SGD steps write through `.data`, which bumps no version counter
    # and keeps the storage: a concatenation kept between calls (as fastattn once did) went stale.
    _check_change_is_seen(_write_through_data)


def test_gradients_reach_the_original_projections():
    _, patched = _model()
    patched.train()
    ids, mask = hf_models.input_ids(2, 9), hf_models.attention_mask(2, 9, "left")
    patched(ids, attention_mask=mask)[0].sum().backward()
    projection = patched.encoder.layer[0].attention.self
    assert all(p.grad is not None and p.grad.abs().sum() > 0
               for p in (projection.query.weight, projection.key.bias, projection.value.weight))


def _replace_a_query_weight(model):
    query = model.encoder.layer[1].attention.self.query
    query.weight = torch.nn.Parameter(query.weight.detach() * -1.0)


def test_a_replaced_parameter_is_seen():
    _check_change_is_seen(_replace_a_query_weight, pattern="right")
