"""Cross-entropy checks (fastattn.nn.cross_entropy), written once and run by the interpret tier (the
Triton kernels on CPU) and the gpu tier (every backend). Losses and logit gradients against
fastattn.reference.cross_entropy under the numerics rule: odd vocabulary sizes (one chunk, several,
one column), ignored targets, rows whose logits are a strided view, all rows ignored."""

import pytest
import torch

from fastattn import reference
from fastattn.nn.cross_entropy import per_token_cross_entropy
from numerics import assert_grad_numerics, assert_numerics

IGNORE = -100


def make_case(rows, n_cols, dtype, device, seed=0, ignored=(), row_stride=None):
    """(logits [rows, n_cols], target [rows]): logits spread like an LM head's (std 3), some rows'
    targets set to IGNORE; row_stride > n_cols makes the logits a column slice of a wider tensor
    (the padded LM head's view)."""
    g = torch.Generator().manual_seed(seed)
    wide = (3 * torch.randn(rows, row_stride or n_cols, generator=g)).to(device, dtype)
    logits = wide[:, :n_cols]
    target = torch.randint(0, n_cols, (rows,), generator=g)
    target[list(ignored)] = IGNORE
    return logits, target.to(device)


def check_against_reference(backend, logits, target):
    leaves = [logits.detach().clone().requires_grad_(), logits.detach().double().requires_grad_(),
              logits.detach().clone().requires_grad_()]
    out = per_token_cross_entropy(leaves[0], target, IGNORE, backend=backend)
    ref = reference.cross_entropy(leaves[1], target, IGNORE, upcast=True)
    eager = reference.cross_entropy(leaves[2], target, IGNORE, upcast=False)
    assert out.dtype == torch.float32
    assert_numerics("loss", out, ref, eager.to(torch.float32))
    grad = torch.rand(out.shape, generator=torch.Generator().manual_seed(1)).to(out.device)
    got, = torch.autograd.grad(out, leaves[0], grad)
    expected, = torch.autograd.grad(ref, leaves[1], grad.double())
    eager_grad, = torch.autograd.grad(eager, leaves[2], grad.to(eager.dtype))
    assert got.dtype == logits.dtype and got.shape == logits.shape
    assert_grad_numerics("dlogits", got, expected, eager_grad)
    return out, got


@pytest.mark.parametrize("rows,n_cols", [(1, 1), (5, 7), (33, 1000), (9, 4097), (4, 9001)])
def test_matches_reference(backend, device, dtype, rows, n_cols):
    check_against_reference(backend, *make_case(rows, n_cols, dtype, device, ignored=[0]))


def test_strided_logits_as_the_padded_lm_head_gives_them(backend, device, dtype):
    check_against_reference(backend, *make_case(6, 1001, dtype, device, row_stride=1008))


def test_ignored_rows_give_zero_loss_and_zero_gradient(backend, device, dtype):
    logits, target = make_case(4, 50, dtype, device, ignored=[1, 3])
    out, grad = check_against_reference(backend, logits, target)
    assert torch.equal(out[[1, 3]].cpu(), torch.zeros(2))
    assert not grad[[1, 3]].any()


def test_all_rows_ignored(backend, device, dtype):
    logits, target = make_case(3, 20, dtype, device, ignored=[0, 1, 2])
    out, grad = check_against_reference(backend, logits, target)
    assert not out.any() and not grad.any()


def test_double_backward_raises_on_the_triton_path(backend, device, dtype):
    """The Triton kernels' gradient is first order: differentiating it again raises
    (fastattn.ops._fused_op.first_order_only) instead of treating it as a constant. torch's
    cross-entropy, the path of the other backends, has second derivatives of its own."""
    logits, target = make_case(3, 11, dtype, device)
    logits = logits.detach().requires_grad_()
    loss = per_token_cross_entropy(logits, target, IGNORE, backend=backend).sum()
    if backend == "triton":
        with pytest.raises(RuntimeError, match="cross-entropy loss: fastattn's ops have "
                                               "first-order gradients only"):
            torch.autograd.grad(loss, logits, create_graph=True)
    else:
        (grad,) = torch.autograd.grad(loss, logits, create_graph=True)
        assert grad.requires_grad


def test_a_jit_trace_replays_the_loss_on_new_logits(backend, device, dtype):
    """torch.jit.trace records tensor ops; a Triton launch is none, so the record would replay
    whatever the traced call left in its output buffer. Under jit.trace the loss takes torch's ops
    (fastattn._tracing)."""
    import warnings

    traced_logits, target = make_case(5, 37, dtype, device)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # jit.trace is deprecated
        traced = torch.jit.trace(
            lambda logits, target: per_token_cross_entropy(logits, target, IGNORE, backend=backend),
            (traced_logits, target))
    logits, _ = make_case(5, 37, dtype, device, seed=1)
    ref = reference.cross_entropy(logits.double(), target, IGNORE, upcast=True)
    eager = reference.cross_entropy(logits, target, IGNORE, upcast=False)
    assert_numerics("loss", traced(logits, target), ref, eager.to(torch.float32))


def test_torch_func_grad(backend, device, dtype):
    """Under torch.func the loss takes torch's cross-entropy (the Triton path's autograd.Function
    is not in the form torch.func accepts)."""
    logits, target = make_case(4, 29, dtype, device)
    weights = torch.rand(4, generator=torch.Generator().manual_seed(3)).to(device)

    def grad(loss_fn, logits):
        return torch.func.grad(lambda x: (loss_fn(x) * weights.to(x.dtype)).sum())(logits)

    got = grad(lambda x: per_token_cross_entropy(x, target, IGNORE, backend=backend), logits)
    ref = grad(lambda x: reference.cross_entropy(x, target, IGNORE, upcast=True), logits.double())
    eager = grad(lambda x: reference.cross_entropy(x, target, IGNORE, upcast=False), logits)
    assert_grad_numerics("dlogits", got, ref, eager)
