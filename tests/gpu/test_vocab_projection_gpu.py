"""The padded vocabulary projection (fastattn.nn.vocab_projection) on CUDA: calls of at least
PAD_MIN_ROWS tokens take the padded path (logits a view of row stride a multiple of 8), and its
logits and gradients follow the numerics rule against nn.Linear in float64, in every dtype."""

import copy

import pytest
import torch
from torch import nn

from fastattn.nn import vocab_projection
from fastattn.nn.vocab_projection import VocabProjection
from numerics import assert_grad_numerics, assert_numerics


@pytest.mark.parametrize("bias", [False, True])
def test_padded_projection_matches_linear(device, dtype, bias):
    torch.manual_seed(0)
    plain = nn.Linear(64, 1001, bias=bias)
    outs, grads = [], []
    x = torch.randn(3, vocab_projection.PAD_MIN_ROWS // 2, 64)
    for module, compute in ((VocabProjection.adopt(copy.deepcopy(plain)), dtype),
                            (copy.deepcopy(plain), torch.float64), (copy.deepcopy(plain), dtype)):
        module = module.to(device, compute)
        inp = x.to(device, compute).requires_grad_()
        out = module(inp)
        grad = torch.randn(out.shape, generator=torch.Generator().manual_seed(1))
        grad = grad.to(device, compute)
        grads.append(torch.autograd.grad(out, [inp, *module.parameters()], grad))
        outs.append(out)
    assert outs[0].stride(-2) == 1008  # the padded path ran (rows >= PAD_MIN_ROWS)
    assert_numerics("logits", *outs)
    for name, got, ref, eager in zip(("dx", "dweight", "dbias"), *grads):
        assert_grad_numerics(name, got, ref, eager)
