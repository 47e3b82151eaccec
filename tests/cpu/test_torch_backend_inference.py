"""Inference on the torch backend runs the stock composition directly.

In plain eager mode, with nothing to keep for a backward and no dropout, layer_norm_residual, ffn
and attention on the torch backend skip their fused op (row views, statistics, placeholders, the
autograd wrappers): about 70 of a LayerNorm's 100 us of host time on our CPU machine, where a
patched model ran slower than the unpatched one. These tests pin where that path is taken and
that it computes what the fused op computes.
"""

import pytest
import torch

import fastattn
from fastattn.ops import attention as attention_op
from fastattn.ops import ffn as ffn_op
from fastattn.ops import layer_norm_residual as layer_norm_op
from fastattn.ops._fused_op import FusedOp


@pytest.fixture
def fused_calls(monkeypatch):
    """Counts the calls that reach a fused op (FusedOp.__call__), by op name."""
    calls = {}
    names = {layer_norm_op.layer_norm_residual_fwd: "layer_norm", ffn_op.ffn_fwd: "ffn",
             attention_op.attention_fwd: "attention"}
    call = FusedOp.__call__

    def counted(self, *args):
        if self in names:
            calls[names[self]] = calls.get(names[self], 0) + 1
        return call(self, *args)

    monkeypatch.setattr(FusedOp, "__call__", counted)
    return calls


def _layer_norm_inputs(grad=False):
    torch.manual_seed(0)
    return [torch.randn(*shape).requires_grad_(grad)
            for shape in ((2, 5, 24), (2, 5, 24), (24,), (24,))]


def _ffn_inputs(grad=False):
    torch.manual_seed(1)
    return [torch.randn(*shape).requires_grad_(grad)
            for shape in ((3, 7, 24), (40, 24), (40,), (24, 40), (24,))]


def _attention_inputs(grad=False):
    torch.manual_seed(2)
    return [torch.randn(*shape).requires_grad_(grad)
            for shape in ((2, 4, 1, 16), (2, 2, 9, 16), (2, 2, 9, 16))]


MASK = torch.tensor([[True] * 9, [False] * 3 + [True] * 6])


def _run_all(grad):
    x, residual, weight, bias = _layer_norm_inputs(grad)
    y, h = fastattn.layer_norm_residual(x, residual, weight, bias, return_residual=True,
                                        backend="torch")
    out = fastattn.ffn(*_ffn_inputs(grad), approximate="tanh", backend="torch")
    q, k, v = _attention_inputs(grad)
    attn = fastattn.attention(q, k, v, causal=True, key_padding_mask=MASK, backend="torch")
    return y, h, out, attn


def test_inference_skips_the_fused_ops_and_computes_what_they_compute(fused_calls):
    with torch.no_grad():
        inference = _run_all(grad=False)
    assert fused_calls == {}
    trained = _run_all(grad=True)  # gradients wanted: every op through its fused op
    assert fused_calls == {"layer_norm": 1, "ffn": 1, "attention": 1}
    for got, expected in zip(inference, trained):
        assert got.shape == expected.shape and got.dtype == expected.dtype
        torch.testing.assert_close(got, expected.detach(), rtol=1e-6, atol=1e-6)


def test_dropout_and_other_backends_keep_the_fused_op(fused_calls):
    x, residual, weight, bias = _layer_norm_inputs()
    with torch.no_grad():
        fastattn.layer_norm_residual(x, residual, weight, bias, dropout_p=0.1, backend="torch")
        fastattn.ffn(*_ffn_inputs(), dropout_p=0.1, backend="torch")
        fastattn.attention(*_attention_inputs(), dropout_p=0.1, backend="torch")
    assert fused_calls == {"layer_norm": 1, "ffn": 1, "attention": 1}


def test_a_trace_keeps_the_fused_op():
    """torch.export records the custom op (a node of the graph), not the stock ops."""
    x, residual, weight, bias = _layer_norm_inputs()

    class Norm(torch.nn.Module):
        def forward(self, x, residual):
            return fastattn.layer_norm_residual(x, residual, weight, bias, backend="torch")

    with torch.no_grad():
        exported = torch.export.export(Norm(), (x, residual))
    targets = {str(node.target) for node in exported.graph.nodes}
    assert "fastattn.layer_norm_residual_fwd.default" in targets
    torch.testing.assert_close(exported.module()(x, residual), Norm()(x, residual))
