"""fastattn.ffn is a proper torch.library custom op: opcheck passes (schema, fake function,
autograd registration, AOT dispatch) and torch.compile(fullgraph=True) traces through it."""

import pytest
import torch

import fastattn
from fastattn import reference
from numerics import assert_grad_numerics, assert_numerics


def op_inputs(requires_grad, rows=6, width=20, hidden=36, out=12, transposed_weights=False):
    """x, w1, b1, w2, b2; with transposed_weights the weights are views of [in, out] matrices, as
    GPT-2's Conv1D stores them (their gradients then come column-major too)."""
    generator = torch.Generator().manual_seed(0)
    shapes = [(rows, width), (hidden, width), (hidden,), (out, hidden), (out,)]
    if transposed_weights:
        shapes[1], shapes[3] = shapes[1][::-1], shapes[3][::-1]
    tensors = [torch.randn(*s, generator=generator) / 4 for s in shapes]
    if transposed_weights:
        tensors[1], tensors[3] = tensors[1].t(), tensors[3].t()
    return [t.requires_grad_(requires_grad) for t in tensors]


@pytest.mark.parametrize("approximate", ["none", "tanh"])
@pytest.mark.parametrize("dropout", [False, True])
def test_opcheck_forward_op(approximate, dropout):
    seed = torch.tensor([1234], dtype=torch.int64) if dropout else None
    args = (*op_inputs(requires_grad=True), approximate, 0.25 if dropout else 0.0, seed, True, "torch")
    torch.library.opcheck(torch.ops.fastattn.ffn_fwd.default, args)


def test_forward_op_refuses_to_differentiate_without_pre():
    with pytest.raises(RuntimeError, match="store_pre=True"):
        torch.ops.fastattn.ffn_fwd(*op_inputs(requires_grad=True), "none", 0.0, None, False, "torch")


@pytest.mark.parametrize("transposed_weights", [False, True])
@pytest.mark.parametrize("dropout", [False, True])
def test_opcheck_backward_op(dropout, transposed_weights):
    """With transposed weights this also checks that the fake function gives the weight gradients
    the column-major strides the backend returns."""
    x, w1, b1, w2, b2 = op_inputs(requires_grad=False, transposed_weights=transposed_weights)
    seed = torch.tensor([99], dtype=torch.int64) if dropout else None
    out, h, pre = torch.ops.fastattn.ffn_fwd(x, w1, b1, w2, b2, "tanh", 0.1, seed, True, "torch")
    args = (torch.randn_like(out), x, w1, w2, h, pre, "tanh", 0.1, seed, "torch")
    torch.library.opcheck(torch.ops.fastattn.ffn_bwd.default, args)


def block(x, w1, b1, w2, b2):
    """An FFN sublayer as a post-LN block uses it: the op between other traced ops."""
    return fastattn.ffn(x * 2, w1, b1, w2, b2, approximate="tanh") + x[..., :w2.shape[0]]


@pytest.mark.parametrize("transposed_weights", [False, True])
@pytest.mark.parametrize("compiler", ["aot_eager", "inductor"])
def test_torch_compile_fullgraph_forward_and_backward(compiler, transposed_weights):
    torch._dynamo.reset()
    compiled = torch.compile(block, fullgraph=True, backend=compiler)
    inputs = op_inputs(requires_grad=True, rows=5, width=16, out=16,
                       transposed_weights=transposed_weights)
    out = compiled(*inputs)
    ref_inputs = [t.detach().double().requires_grad_() for t in inputs]
    ref = reference.ffn(ref_inputs[0] * 2, *ref_inputs[1:], "tanh") + ref_inputs[0][..., :16]
    eager_inputs = [t.detach().clone().requires_grad_() for t in inputs]
    eager = reference.ffn(eager_inputs[0] * 2, *eager_inputs[1:], "tanh", upcast=False) + eager_inputs[0][..., :16]
    assert_numerics("compiled y", out, ref, eager)
    grads = torch.autograd.grad(out.sum(), inputs)
    ref_grads = torch.autograd.grad(ref.sum(), ref_inputs)
    eager_grads = torch.autograd.grad(eager.sum(), eager_inputs)
    for name, g, r, e in zip(("dx", "dw1", "db1", "dw2", "db2"), grads, ref_grads, eager_grads):
        assert_grad_numerics(f"compiled {name}", g, r, e)
