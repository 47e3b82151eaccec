"""One small case of each public op (input, the op, the reference), for suites that check something
across all ops: tests/func_suite.py (torch.func, forward-mode AD) and tests/float64_suite.py."""

from typing import Callable, NamedTuple

import torch

import fastattn
from fastattn import reference


class Case(NamedTuple):
    op: str
    x: torch.Tensor  # the input the transforms differentiate and map over
    run: Callable  # run(x, backend) -> the op's output
    ref: Callable  # ref(x, upcast) -> the reference's output


def draw(generator, device, dtype, *shape):
    return torch.randn(*shape, generator=generator).to(device, dtype)


def _bias_gelu(g, device, dtype):
    bias = draw(g, device, dtype, 37)
    return Case("bias_gelu", draw(g, device, dtype, 5, 37),
                lambda x, backend: fastattn.bias_gelu(x, bias, backend=backend),
                lambda x, upcast: reference.bias_gelu(x, bias, upcast=upcast))


def _layer_norm_residual(g, device, dtype):
    residual, weight, bias = (draw(g, device, dtype, *shape) for shape in ((5, 37), (37,), (37,)))
    return Case("layer_norm_residual", draw(g, device, dtype, 5, 37),
                lambda x, backend: fastattn.layer_norm_residual(x, residual, weight, bias,
                                                                backend=backend),
                lambda x, upcast: reference.layer_norm_residual(x, residual, weight, bias,
                                                                upcast=upcast)[0])


def _ffn(g, device, dtype):
    w1, b1 = draw(g, device, dtype, 40, 24) / 5, draw(g, device, dtype, 40)
    w2, b2 = draw(g, device, dtype, 24, 40) / 6, draw(g, device, dtype, 24)
    return Case("ffn", draw(g, device, dtype, 5, 24),
                lambda x, backend: fastattn.ffn(x, w1, b1, w2, b2, backend=backend),
                lambda x, upcast: reference.ffn(x, w1, b1, w2, b2, upcast=upcast))


def _masked_softmax(g, device, dtype):
    mask = torch.tensor([[True] * 9, [False] * 3 + [True] * 6], device=device)
    mask[1, 5] = False  # a hole
    return Case("masked_softmax", draw(g, device, dtype, 2, 3, 5, 9),
                lambda x, backend: fastattn.masked_softmax(x, key_padding_mask=mask, causal=True,
                                                           backend=backend),
                lambda x, upcast: reference.masked_softmax(x, mask, causal=True, upcast=upcast))


def _attention(g, device, dtype):
    k, v = draw(g, device, dtype, 2, 1, 9, 16), draw(g, device, dtype, 2, 1, 9, 16)
    mask = torch.ones(2, 9, dtype=torch.bool, device=device)
    mask[1, :4] = False  # left padding: the second row's first query sees no key
    return Case("attention", draw(g, device, dtype, 2, 2, 7, 16),
                lambda q, backend: fastattn.attention(q, k, v, causal=True, key_padding_mask=mask,
                                                      backend=backend),
                lambda q, upcast: reference.attention(q, k, v, causal=True, key_padding_mask=mask,
                                                      upcast=upcast))


CASES = {"bias_gelu": _bias_gelu, "layer_norm_residual": _layer_norm_residual, "ffn": _ffn,
         "masked_softmax": _masked_softmax, "attention": _attention}
