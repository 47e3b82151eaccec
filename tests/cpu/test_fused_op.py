"""FusedOp: eager calls skip the torch.library custom op (same implementation, same autograd
formula, same numbers); traced calls (dispatch modes, fake tensors) go through it."""

import pytest
import torch
from torch._subclasses.fake_tensor import FakeTensorMode

import fastattn
from fastattn.ops import bias_gelu as bias_gelu_op


@pytest.fixture
def custom_op_calls(monkeypatch):
    calls = []
    custom_op = bias_gelu_op.bias_gelu_fwd.custom_op

    class Counting:
        def __call__(self, *args):
            calls.append(args)
            return custom_op(*args)

    monkeypatch.setattr(bias_gelu_op.bias_gelu_fwd, "custom_op", Counting())
    return calls


def _inputs():
    generator = torch.Generator().manual_seed(0)
    return (torch.randn(5, 24, generator=generator, requires_grad=True),
            torch.randn(24, generator=generator, requires_grad=True))


def test_eager_calls_skip_the_custom_op_with_the_same_results(custom_op_calls):
    x, bias = _inputs()
    out = fastattn.bias_gelu(x, bias, approximate="tanh", backend="torch")
    grads = torch.autograd.grad(out, (x, bias), torch.ones_like(out))
    assert custom_op_calls == []
    # The custom op, called as torch.compile would, gives the same output and gradients.
    x2, bias2 = _inputs()
    out2 = torch.ops.fastattn.bias_gelu_fwd(x2, bias2, "tanh", "torch")
    grads2 = torch.autograd.grad(out2, (x2, bias2), torch.ones_like(out2))
    assert torch.equal(out, out2) and all(torch.equal(a, b) for a, b in zip(grads, grads2))


def test_calls_under_a_dispatch_mode_take_the_custom_op(custom_op_calls):
    with FakeTensorMode() as mode:
        x, bias = (mode.from_tensor(t) for t in _inputs())
        out = fastattn.bias_gelu(x, bias, backend="torch")
    assert len(custom_op_calls) == 1 and out.shape == (5, 24)


def _leaves(*shapes):
    generator = torch.Generator().manual_seed(1)
    return [torch.randn(*shape, generator=generator, requires_grad=True) for shape in shapes]


# op name -> (shapes of its differentiable inputs, the call on them): every public op with autograd.
DIFFERENTIABLE_OPS = {
    "bias_gelu": ([(4, 8), (8,)], lambda x, b: fastattn.bias_gelu(x, b, backend="torch")),
    "layer_norm_residual": ([(4, 8), (4, 8), (8,), (8,)], lambda x, r, w, b:
                            fastattn.layer_norm_residual(x, r, w, b, backend="torch")),
    "masked_softmax": ([(1, 2, 3, 5)], lambda s: fastattn.masked_softmax(s, causal=True,
                                                                           backend="torch")),
    "ffn": ([(4, 8), (16, 8), (16,), (8, 16), (8,)], lambda x, w1, b1, w2, b2:
            fastattn.ffn(x, w1, b1, w2, b2, backend="torch")),
    "attention": ([(1, 2, 5, 16)] * 3, lambda q, k, v: fastattn.attention(q, k, v, causal=True,
                                                                          backend="torch")),
}


@pytest.mark.parametrize("op", list(DIFFERENTIABLE_OPS))
def test_double_backward_raises_instead_of_dropping_second_order_terms(op):
    """A gradient penalty: the gradient taken with create_graph=True, then differentiated. The
    gradients are first order (kernels record no graph; the torch backend's FFN gave wrong second
    derivatives), so this must raise, not return the penalty's gradient without its terms. The
    outer weights below do not require grad: torch's once_differentiable would let this through."""
    shapes, call = DIFFERENTIABLE_OPS[op]
    inputs = _leaves(*shapes)
    out = call(*inputs)
    weights = torch.linspace(-1, 1, out.numel()).view_as(out)
    with pytest.raises(RuntimeError, match=f"fastattn.{op}: fastattn's ops have first-order "
                                           "gradients only"):
        torch.autograd.grad((out * weights).sum(), inputs[0], create_graph=True)
    # First-order gradients are unchanged, the retained graph included.
    (grad,) = torch.autograd.grad((call(*inputs) * weights).sum(), inputs[0])
    assert grad.shape == inputs[0].shape and torch.isfinite(grad).all()


def test_plain_autograd_binds_no_signature_per_call(monkeypatch):
    """An autograd.Function in the form torch.func needs (setup_context apart from forward) binds
    an inspect.Signature on every apply, tens of microseconds of host time; plain autograd takes a
    Function without it, torch.func the other."""
    import inspect

    x = torch.randn(4, 8, requires_grad=True)
    weight, bias = torch.randn(8, requires_grad=True), torch.randn(8)
    fastattn.layer_norm_residual(x, None, weight, bias).sum().backward()  # first-call setup done
    calls = []
    signature = inspect.signature
    monkeypatch.setattr(inspect, "signature", lambda *a, **k: calls.append(a) or signature(*a, **k))
    fastattn.layer_norm_residual(x, None, weight, bias).sum().backward()
    assert not calls
    torch.func.grad(lambda x: fastattn.layer_norm_residual(x, None, weight, bias).sum())(x.detach())
    assert calls  # the torch.func path does bind: the count above would have seen it
