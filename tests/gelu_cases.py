"""Bias + GELU checks, written once and run by every tier (cpu, interpret, gpu) on the backends that
tier has. Each check draws fresh random inputs from a fixed seed and compares the backend with
fastattn.reference.bias_gelu under the numerics rule: the output and the gradients of x and bias."""

import torch

import fastattn
from fastattn import reference
from numerics import assert_grad_numerics, assert_numerics

APPROXIMATIONS = ("none", "tanh")
# Odd hidden sizes (1, 37, 1023), a 3D batch, vector-friendly widths.
SHAPES = [(1, 1), (5, 1), (7, 37), (3, 5, 64), (33, 1023), (9, 3072)]


def gelu_grad(z, approximate):
    """gelu'(z) by torch's autograd, in z's dtype."""
    z = z.detach().requires_grad_()
    (grad,) = torch.autograd.grad(torch.nn.functional.gelu(z, approximate=approximate).sum(), z)
    return grad


def make_inputs(shape, dtype, device, seed=0, layout="contiguous"):
    """x, bias. layout "strided_rows" gives rows with a gap after them (a slice of a wider tensor);
    "transposed" a last dim that is not contiguous."""
    generator = torch.Generator().manual_seed(seed)
    hidden = shape[-1]
    if layout == "strided_rows":
        x = torch.randn(*shape[:-1], hidden + 3, generator=generator)[..., :hidden]
    elif layout == "transposed":
        x = torch.randn(*shape[:-2], hidden, shape[-2], generator=generator).transpose(-1, -2)
    else:
        x = torch.randn(shape, generator=generator)
    bias = 0.5 * torch.randn(hidden, generator=generator)
    return (2 * x).to(device, dtype), bias.to(device, dtype)


def check_case(backend, device, dtype, shape, approximate="none", seed=0, layout="contiguous"):
    x, bias = make_inputs(shape, dtype, device, seed, layout)
    check_against_reference(backend, x, bias, approximate)


def check_against_reference(backend, x, bias, approximate):
    leaves = [t.detach().requires_grad_() for t in (x, bias)]
    out = fastattn.bias_gelu(*leaves, approximate=approximate, backend=backend)
    ref_leaves = [t.detach().double().requires_grad_() for t in (x, bias)]
    ref = reference.bias_gelu(*ref_leaves, approximate, upcast=True)
    eager_leaves = [t.detach().clone().requires_grad_() for t in (x, bias)]
    eager = reference.bias_gelu(*eager_leaves, approximate, upcast=False)
    assert out.dtype == x.dtype and out.shape == x.shape
    assert_numerics("y", out, ref, eager)

    generator = torch.Generator().manual_seed(1)
    dy = torch.randn(x.shape, generator=generator).to(x.device, x.dtype)
    got = torch.autograd.grad(out, leaves, dy)
    ref_grads = torch.autograd.grad(ref, ref_leaves, dy.double())
    eager_grads = torch.autograd.grad(eager, eager_leaves, dy)
    for name, g, r, e, leaf in zip(("dx", "dbias"), got, ref_grads, eager_grads, leaves):
        assert g.dtype == leaf.dtype and g.shape == leaf.shape, name
        assert_grad_numerics(name, g, r, e)


def check_bias_grad_is_deterministic(backend, device, dtype, shape=(257, 300)):
    x, bias = make_inputs(shape, dtype, device, seed=2)
    dy = torch.randn(shape, generator=torch.Generator().manual_seed(3)).to(device, dtype)
    grads = []
    for _ in range(2):
        leaves = [t.detach().requires_grad_() for t in (x, bias)]
        out = fastattn.bias_gelu(*leaves, backend=backend)
        grads.append(torch.autograd.grad(out, leaves, dy))
    assert torch.equal(grads[0][0], grads[1][0]) and torch.equal(grads[0][1], grads[1][1])


def check_empty(backend, device, dtype):
    x = torch.randn(0, 4, 16, device=device, dtype=dtype, requires_grad=True)
    bias = torch.randn(16, device=device, dtype=dtype, requires_grad=True)
    out = fastattn.bias_gelu(x, bias, backend=backend)
    assert out.shape == x.shape
    out.sum().backward()
    assert torch.equal(bias.grad, torch.zeros_like(bias))
