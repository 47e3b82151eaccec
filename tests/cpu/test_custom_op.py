"""The op is a proper torch.library custom op: opcheck passes (schema, fake function, autograd
registration, AOT dispatch) and torch.compile(fullgraph=True) traces through it."""

import pytest
import torch

import fastattn
from fastattn import reference
from numerics import assert_grad_numerics, assert_numerics


def op_inputs(requires_grad, dtype=torch.float32, rows=6, hidden=40):
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(rows, hidden, generator=generator, dtype=dtype)
    residual = torch.randn(rows, hidden, generator=generator, dtype=dtype)
    weight = torch.randn(hidden, generator=generator, dtype=dtype)
    bias = torch.randn(hidden, generator=generator, dtype=dtype)
    return [t.requires_grad_(requires_grad) for t in (x, residual, weight, bias)]


# (residual, store_h, dropout): the combinations the front uses when gradients are needed.
FORWARD_VARIANTS = [(False, False, False), (True, True, False), (True, True, True), (False, True, True)]


@pytest.mark.parametrize("with_residual,store_h,dropout", FORWARD_VARIANTS)
def test_opcheck_forward_op(with_residual, store_h, dropout):
    x, residual, weight, bias = op_inputs(requires_grad=True)
    seed = torch.tensor([1234], dtype=torch.int64) if dropout else None
    args = (x, residual if with_residual else None, weight, bias, 1e-5, 0.25 if dropout else 0.0,
            seed, store_h, "torch")
    torch.library.opcheck(torch.ops.fastattn.layer_norm_residual_fwd.default, args)


def test_forward_op_refuses_to_differentiate_without_h():
    x, residual, weight, bias = op_inputs(requires_grad=True)
    with pytest.raises(RuntimeError, match="store_h=True"):
        torch.ops.fastattn.layer_norm_residual_fwd(x, residual, weight, bias, 1e-5, 0.0, None,
                                                   False, "torch")


def test_opcheck_backward_op():
    x, residual, weight, bias = op_inputs(requires_grad=False)
    y, h, mean, rstd = torch.ops.fastattn.layer_norm_residual_fwd(
        x, residual, weight, bias, 1e-5, 0.0, None, True, "torch")
    args = (torch.randn_like(y), torch.randn_like(h), h, weight, mean, rstd, 0.0, None, "torch")
    torch.library.opcheck(torch.ops.fastattn.layer_norm_residual_bwd.default, args)


def pre_ln_step(x, residual, weight, bias):
    """A pre-LN block's use of the op: normalise, keep h as the next residual."""
    y, h = fastattn.layer_norm_residual(x, residual, weight, bias, return_residual=True)
    return y * 2 + h


@pytest.mark.parametrize("compiler", ["aot_eager", "inductor"])
def test_torch_compile_fullgraph_forward_and_backward(compiler):
    torch._dynamo.reset()
    compiled = torch.compile(pre_ln_step, fullgraph=True, backend=compiler)
    inputs = op_inputs(requires_grad=True)
    out = compiled(*inputs)
    ref_inputs = [t.detach().double().requires_grad_() for t in inputs]
    eager_inputs = [t.detach().clone().requires_grad_() for t in inputs]

    def ref_step(use_inputs, upcast):
        y, h = reference.layer_norm_residual(*use_inputs, upcast=upcast)
        return y * 2 + h

    ref_out, eager_out = ref_step(ref_inputs, True), ref_step(eager_inputs, False)
    assert_numerics("out", out, ref_out, eager_out)
    grad = torch.randn_like(out)
    got = torch.autograd.grad(out, inputs, grad)
    ref = torch.autograd.grad(ref_out, ref_inputs, grad.double())
    eager = torch.autograd.grad(eager_out, eager_inputs, grad)
    for name, g, r, e in zip(("dx", "dresidual", "dweight", "dbias"), got, ref, eager):
        assert_grad_numerics(name, g, r, e)


def test_torch_compile_with_dropout_keeps_fullgraph_and_repeats_under_seed():
    torch._dynamo.reset()

    def step(x, residual, weight, bias):
        return fastattn.layer_norm_residual(x, residual, weight, bias, dropout_p=0.5)

    compiled = torch.compile(step, fullgraph=True, backend="aot_eager")
    inputs = op_inputs(requires_grad=True)
    torch.manual_seed(5)
    first = compiled(*inputs)
    torch.manual_seed(5)
    assert torch.equal(compiled(*inputs), first)
    first.sum().backward()
    assert all(torch.isfinite(t.grad).all() for t in inputs)
