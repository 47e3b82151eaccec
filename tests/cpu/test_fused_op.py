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
