"""fastattn.bias_gelu as an API: each kind of bad input raises a named error, the custom ops pass
opcheck, and torch.compile(fullgraph=True) traces through them."""

import pytest
import torch

import fastattn
from fastattn import reference
from numerics import assert_grad_numerics, assert_numerics


def call(**overrides):
    args = {"x": torch.randn(2, 3, 8), "bias": torch.randn(8)}
    args.update(overrides)
    return fastattn.bias_gelu(args.pop("x"), args.pop("bias"), **args)


CASES = [
    ("x not a tensor", dict(x=[[1.0]]), TypeError, "x must be a torch.Tensor"),
    ("integer x", dict(x=torch.ones(2, 8, dtype=torch.int64)), TypeError, "x must be float32"),
    ("complex x", dict(x=torch.ones(2, 8, dtype=torch.complex64)), TypeError, "got complex64"),
    ("scalar x", dict(x=torch.tensor(1.0)), ValueError, "non-empty last"),
    ("empty hidden", dict(x=torch.ones(2, 0), bias=torch.ones(0)), ValueError, "non-empty last"),
    ("bias missing", dict(bias=None), TypeError, "bias must be a torch.Tensor, got NoneType"),
    ("bias integer", dict(bias=torch.zeros(8, dtype=torch.int32)), TypeError, "bias must be float32"),
    ("bias shape", dict(bias=torch.zeros(7)), ValueError, r"bias must have shape \[8\], got \[7\]"),
    ("bias 2D", dict(bias=torch.zeros(1, 8)), ValueError, r"bias must have shape \[8\]"),
    ("approximate unknown", dict(approximate="fast"), ValueError, "approximate must be one of 'none', 'tanh', got 'fast'"),
    ("approximate not a string", dict(approximate=True), TypeError, "approximate must be a string"),
    ("backend unknown", dict(backend="fast"), ValueError, "unknown backend 'fast'"),
]


@pytest.mark.parametrize("overrides,error,message", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_raises_named_error(overrides, error, message):
    with pytest.raises(error, match=message):
        call(**overrides)


def test_bias_on_another_device_is_named():
    with pytest.raises(ValueError, match="bias is on meta but x is on cpu"):
        call(bias=torch.zeros(8, device="meta"))


def test_bias_in_another_float_dtype_is_cast_not_rejected():
    out = call(x=torch.randn(2, 8, dtype=torch.float16), bias=torch.randn(8))
    assert out.dtype == torch.float16


@pytest.mark.parametrize("approximate", ["none", "tanh"])
def test_opcheck_forward_op(approximate):
    x, bias = torch.randn(5, 12, requires_grad=True), torch.randn(12, requires_grad=True)
    torch.library.opcheck(torch.ops.fastattn.bias_gelu_fwd.default, (x, bias, approximate, "torch"))


def test_opcheck_backward_op():
    x, bias = torch.randn(5, 12), torch.randn(12)
    torch.library.opcheck(torch.ops.fastattn.bias_gelu_bwd.default,
                          (torch.randn_like(x), x, bias, "tanh", "torch"))


def ffn_middle(x, bias):
    """The FFN's use: the first linear's output, biased and activated, then used further."""
    return fastattn.bias_gelu(x, bias, approximate="tanh") * 3


@pytest.mark.parametrize("compiler", ["aot_eager", "inductor"])
def test_torch_compile_fullgraph_forward_and_backward(compiler):
    torch._dynamo.reset()
    compiled = torch.compile(ffn_middle, fullgraph=True, backend=compiler)
    generator = torch.Generator().manual_seed(0)
    inputs = [torch.randn(4, 6, 33, generator=generator).requires_grad_(),
              torch.randn(33, generator=generator).requires_grad_()]
    out = compiled(*inputs)
    ref_inputs = [t.detach().double().requires_grad_() for t in inputs]
    eager_inputs = [t.detach().clone().requires_grad_() for t in inputs]
    ref = reference.bias_gelu(*ref_inputs, "tanh", upcast=True) * 3
    eager = reference.bias_gelu(*eager_inputs, "tanh", upcast=False) * 3
    assert_numerics("out", out, ref, eager)
    grad = torch.randn_like(out)
    got = torch.autograd.grad(out, inputs, grad)
    ref_grads = torch.autograd.grad(ref, ref_inputs, grad.double())
    eager_grads = torch.autograd.grad(eager, eager_inputs, grad)
    for name, g, r, e in zip(("dx", "dbias"), got, ref_grads, eager_grads):
        assert_grad_numerics(name, g, r, e)
