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


def test_concatenation_follows_weight_changes():
    stock, patched = _model()
    ids, mask = hf_models.input_ids(2, 9), hf_models.attention_mask(2, 9, "holes")
    real = mask.bool()
    first = _outputs(patched, ids, mask)
    torch.testing.assert_close(first[real], _outputs(stock, ids, mask)[real], rtol=1e-5, atol=1e-5)
    with torch.no_grad():  # an in-place write (as an optimizer step or load_state_dict does)
        for model in (stock, patched):
            model.encoder.layer[0].attention.self.key.weight.mul_(1.5)
            model.encoder.layer[1].attention.self.value.bias.add_(0.25)
    second = _outputs(patched, ids, mask)
    assert not torch.allclose(first[real], second[real])
    torch.testing.assert_close(second[real], _outputs(stock, ids, mask)[real], rtol=1e-5, atol=1e-5)
    patched.to(torch.bfloat16)  # new storage, same Parameter objects
    assert _outputs(patched, ids, mask).dtype == torch.bfloat16


def test_writes_through_data_are_seen():
    # EMA updates and hand-written SGD steps write through `.data`, which bumps no version counter
    # and keeps the storage: a concatenation kept between calls (as fastattn once did) went stale.
    stock, patched = _model()
    ids, mask = hf_models.input_ids(2, 9), hf_models.attention_mask(2, 9, "holes")
    real = mask.bool()
    first = _outputs(patched, ids, mask)
    for model in (stock, patched):
        for param in model.parameters():
            param.data.mul_(0.9).add_(0.01)
    second = _outputs(patched, ids, mask)
    assert not torch.allclose(first[real], second[real])
    torch.testing.assert_close(second[real], _outputs(stock, ids, mask)[real], rtol=1e-5, atol=1e-5)


def test_gradients_reach_the_original_projections():
    _, patched = _model()
    patched.train()
    ids, mask = hf_models.input_ids(2, 9), hf_models.attention_mask(2, 9, "left")
    patched(ids, attention_mask=mask)[0].sum().backward()
    projection = patched.encoder.layer[0].attention.self
    assert all(p.grad is not None and p.grad.abs().sum() > 0
               for p in (projection.query.weight, projection.key.bias, projection.value.weight))


def test_a_replaced_parameter_is_seen():
    stock, patched = _model()
    ids, mask = hf_models.input_ids(2, 9), hf_models.attention_mask(2, 9, "right")
    real = mask.bool()
    first = _outputs(patched, ids, mask)
    for model in (stock, patched):
        query = model.encoder.layer[1].attention.self.query
        query.weight = torch.nn.Parameter(query.weight.detach() * -1.0)
    second = _outputs(patched, ids, mask)
    assert not torch.allclose(first[real], second[real])
    torch.testing.assert_close(second[real], _outputs(stock, ids, mask)[real], rtol=1e-5, atol=1e-5)
