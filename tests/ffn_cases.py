"""Fused FFN checks, written once and run by every tier (cpu, interpret, gpu) on the backends that
tier has. Each check draws fresh random inputs from a fixed seed and compares the backend with
fastattn.reference.ffn under the numerics rule: the output and the gradients of x, w1, b1, w2, b2."""

import torch

import fastattn
from fastattn import reference
from fastattn._rng import draw_dropout_seed
from numerics import assert_grad_numerics, assert_numerics, max_abs_diff

APPROXIMATIONS = ("none", "tanh")
PHILOX_BACKENDS = ("triton", "cuda")
GRAD_NAMES = ("dx", "dw1", "db1", "dw2", "db2")
# (x shape, hidden, out): one row; sizes that are not multiples of 16 (37, 53, 29); a 3D batch;
# a 1023-wide input and output (several K blocks and column tiles, masked edges).
SHAPES = [((1, 16), 32, 16), ((7, 37), 53, 29), ((2, 3, 64), 96, 48), ((9, 1023), 40, 1023)]


def make_inputs(x_shape, hidden, out, dtype, device, seed=0, layout="contiguous"):
    """x, w1, b1, w2, b2, scaled so that activations stay O(1). layout "transposed" gives a
    non-contiguous x and weights that are transposed views (GPT2's Conv1D stores [in, out])."""
    generator = torch.Generator().manual_seed(seed)
    width = x_shape[-1]

    def randn(*shape, scale=1.0):
        return torch.randn(*shape, generator=generator) * scale

    if layout == "transposed":
        x = randn(*x_shape[:-2], width, x_shape[-2]).transpose(-1, -2)
        w1, w2 = randn(width, hidden).t(), randn(hidden, out).t()
    else:
        x, w1, w2 = randn(*x_shape), randn(hidden, width), randn(out, hidden)
    w1, w2 = w1 * width ** -0.5, w2 * hidden ** -0.5
    tensors = (x, w1, 0.5 * randn(hidden), w2, 0.5 * randn(out))
    return tuple(t.to(device, dtype) for t in tensors)


def check_case(backend, device, dtype, x_shape, hidden, out, approximate="none", seed=0,
               layout="contiguous"):
    inputs = make_inputs(x_shape, hidden, out, dtype, device, seed, layout)
    check_against_reference(backend, inputs, approximate)


def check_against_reference(backend, inputs, approximate, keep_mask=None, dropout_p=0.0, run=None):
    """run(*leaves) -> output; by default fastattn.ffn without dropout."""
    if run is None:
        def run(*leaves):
            return fastattn.ffn(*leaves, approximate=approximate, backend=backend)
    leaves = [t.detach().requires_grad_() for t in inputs]
    out = run(*leaves)
    ref_leaves = [t.detach().double().requires_grad_() for t in inputs]
    ref = reference.ffn(*ref_leaves, approximate, keep_mask=keep_mask, dropout_p=dropout_p)
    eager_leaves = [t.detach().clone().requires_grad_() for t in inputs]
    eager = reference.ffn(*eager_leaves, approximate, keep_mask=keep_mask, dropout_p=dropout_p,
                          upcast=False)
    x = inputs[0]
    assert out.dtype == x.dtype and out.shape == (*x.shape[:-1], inputs[3].shape[0])
    assert_numerics("y", out, ref, eager)

    dy = torch.randn(out.shape, generator=torch.Generator().manual_seed(1)).to(x.device, x.dtype)
    got = torch.autograd.grad(out, leaves, dy)
    ref_grads = torch.autograd.grad(ref, ref_leaves, dy.double())
    eager_grads = torch.autograd.grad(eager, eager_leaves, dy)
    for name, g, r, e, leaf in zip(GRAD_NAMES, got, ref_grads, eager_grads, leaves):
        assert g.dtype == leaf.dtype and g.shape == leaf.shape, name
        if name in ("dw1", "dw2"):
            assert_laid_out_as(name, g, leaf)
        assert_grad_numerics(name, g, r, e)


def assert_laid_out_as(name, grad, weight):
    """A weight gradient comes in its weight's layout, row- or column-major (GPT-2's Conv1D weights
    are transposed views): autograd then accumulates it without a transposing copy."""
    assert (grad.is_contiguous(), grad.t().is_contiguous()) == (
        weight.is_contiguous(), weight.t().is_contiguous()), (name, grad.stride(), weight.stride())


def _dropout_call(backend, call_seed, approximate, dropout_p):
    def run(*leaves):
        torch.manual_seed(call_seed)
        return fastattn.ffn(*leaves, approximate=approximate, dropout_p=dropout_p, backend=backend)
    return run


def check_dropout_against_reference(backend, device, dtype, approximate, dropout_p=0.3):
    """Output and gradients under dropout equal the reference given the call's keep mask, read off
    the output (a kept element of a random FFN output is never exactly zero)."""
    inputs = make_inputs((2, 19, 40), 72, 33, dtype, device, seed=3)
    run = _dropout_call(backend, 99, approximate, dropout_p)
    keep = run(*inputs) != 0
    assert 0 < keep.float().mean().item() < 1
    check_against_reference(backend, inputs, approximate, keep_mask=keep, dropout_p=dropout_p, run=run)


def check_dropout_uses_shared_philox_stream(backend, device, dropout_p=0.4):
    """The triton and cuda backends keep output element (row, col) as
    reference.dropout_keep_mask(seed, (rows, out), p) with the seed drawn from torch's generator."""
    x, w1, b1, w2, b2 = make_inputs((3, 7, 24), 40, 37, torch.float32, device, seed=4)
    torch.manual_seed(123)
    keep = fastattn.ffn(x, w1, b1, w2, b2, dropout_p=dropout_p, backend=backend) != 0
    torch.manual_seed(123)
    expected = reference.dropout_keep_mask(int(draw_dropout_seed(dropout_p)), (21, 37), dropout_p, device)
    assert torch.equal(keep.reshape(21, 37), expected)


def check_dropout_statistics(backend, device, dropout_p=0.2):
    """The kept fraction is near 1 - p, kept values are scaled by 1/(1-p), a fixed torch.manual_seed
    repeats the mask, another seed changes it, p = 1 drops everything (with zero gradients)."""
    inputs = make_inputs((64, 32), 48, 128, torch.float32, device, seed=5)
    plain = fastattn.ffn(*inputs, backend=backend)

    def dropped(seed, p=dropout_p):
        torch.manual_seed(seed)
        return fastattn.ffn(*inputs, dropout_p=p, backend=backend)

    out = dropped(7)
    kept = out != 0
    assert abs(kept.float().mean().item() - (1 - dropout_p)) < 0.03
    assert max_abs_diff(out[kept], plain[kept] / (1 - dropout_p)) < 1e-4
    assert torch.equal(dropped(7), out), "same torch.manual_seed, different dropout mask"
    assert not torch.equal(dropped(8), out), "different seeds, same dropout mask"
    leaves = [t.detach().requires_grad_() for t in inputs]
    everything_dropped = fastattn.ffn(*leaves, dropout_p=1.0, backend=backend)
    assert torch.equal(everything_dropped, torch.zeros_like(everything_dropped))
    grads = torch.autograd.grad(everything_dropped.sum(), leaves)
    assert all(torch.equal(g, torch.zeros_like(g)) for g in grads)


def check_empty(backend, device, dtype):
    """No rows: an empty output, zero weight and bias gradients."""
    leaves = [t.requires_grad_() for t in make_inputs((0, 3, 16), 24, 8, dtype, device)]
    out = fastattn.ffn(*leaves, backend=backend)
    assert out.shape == (0, 3, 8)
    grads = torch.autograd.grad(out.sum(), leaves)
    assert all(torch.equal(g, torch.zeros_like(g)) for g in grads)


def check_inference_matches_training(backend, device, dtype, approximate):
    """Without gradients (no pre-activation kept; the cuda backend's fused GELU-tanh epilogue) the
    output is the reference's, as with them."""
    inputs = make_inputs((5, 33), 70, 20, dtype, device, seed=6)
    with torch.no_grad():
        out = fastattn.ffn(*inputs, approximate=approximate, backend=backend)
    ref = reference.ffn(*(t.double() for t in inputs), approximate)
    eager = reference.ffn(*inputs, approximate, upcast=False)
    assert_numerics("y (no grad)", out, ref, eager)
