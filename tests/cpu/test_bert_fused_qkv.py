"""The patched BertLayer's QKV projection: one GEMM over the three projections' weights
concatenated, or on the CPU with fewer tokens than hidden units three GEMMs (fewer bytes moved).
Either follows every change of a projection (in-place writes, writes through `.data`, replaced
parameters, casts), and with autograd the gradients reach the original parameters."""

import copy

import pytest
import torch
from transformers import BertModel

import fastattn
import hf_models
from fastattn.nn.bert import BertLayer

# (batch, seqlen) -> whether the packed tokens (about 70% of them real) reach the hidden size (64)
# and so take the one GEMM over concatenated weights on the CPU.
SIZES = {"three_gemms": (2, 9), "one_gemm": (6, 40)}


@pytest.fixture(params=sorted(SIZES))
def size(request, monkeypatch):
    """(batch, seqlen); checks on teardown that the concatenated weights were (or were not) used."""
    calls = []
    concatenated = BertLayer._fused_qkv
    monkeypatch.setattr(BertLayer, "_fused_qkv", lambda self: calls.append(1) or concatenated(self))
    yield SIZES[request.param]
    assert bool(calls) == (request.param == "one_gemm")


def _model():
    model = hf_models.make_model(BertModel, hf_models.bert_config()).eval()
    return model, fastattn.patch(copy.deepcopy(model))


def _outputs(model, ids, mask):
    with torch.no_grad():
        return model(ids, attention_mask=mask)[0]


def _check_change_is_seen(change, size, pattern="holes"):
    """change(model) applied to the stock and the patched model between two inference calls: the
    patched model's second output differs from its first and matches the stock model's."""
    stock, patched = _model()
    ids, mask = hf_models.input_ids(*size), hf_models.attention_mask(*size, pattern)
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


def test_in_place_writes_and_casts_are_seen(size):
    patched, ids, mask = _check_change_is_seen(_write_in_place, size)
    patched.to(torch.bfloat16)  # new storage, same Parameter objects
    assert _outputs(patched, ids, mask).dtype == torch.bfloat16


def _write_through_data(model):
    for param in model.parameters():
        param.data.mul_(0.9).add_(0.01)


def test_writes_through_data_are_seen(size):
    # EMA updates and hand-written SGD steps write through `.data`, which bumps no version counter
    # and keeps the storage: a concatenation kept between calls (as fastattn once did) went stale.
    _check_change_is_seen(_write_through_data, size)


def test_gradients_reach_the_original_projections(size):
    _, patched = _model()
    patched.train()
    ids, mask = hf_models.input_ids(*size), hf_models.attention_mask(*size, "left")
    patched(ids, attention_mask=mask)[0].sum().backward()
    projection = patched.encoder.layer[0].attention.self
    assert all(p.grad is not None and p.grad.abs().sum() > 0
               for p in (projection.query.weight, projection.key.bias, projection.value.weight))


def _replace_a_query_weight(model):
    query = model.encoder.layer[1].attention.self.query
    query.weight = torch.nn.Parameter(query.weight.detach() * -1.0)


def test_a_replaced_parameter_is_seen(size):
    _check_change_is_seen(_replace_a_query_weight, size, pattern="right")
