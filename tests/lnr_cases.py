"""LayerNorm + residual checks, written once and run by every tier (cpu, interpret, gpu) on the
backends that tier has. Each check draws fresh random inputs from a fixed seed and compares the
backend with fastattn.reference under the numerics rule."""

import torch

import fastattn
from fastattn import reference
from fastattn._rng import draw_dropout_seed
from numerics import assert_grad_numerics, assert_numerics, max_abs_diff

# Backends whose dropout follows the shared Philox stream (reference.dropout_keep_mask).
PHILOX_BACKENDS = ("triton", "cuda")

# Odd sizes, a 3D batch, BERT/GPT2 widths and the widest row every fused backend takes.
SHAPES = [(0, 16), (1, 1), (7, 33), (3, 5, 96), (113, 1023), (257, 768), (2, 4096), (3, 8192), (2, 16385)]


def make_inputs(shape, dtype, device, with_residual, seed=0, layout="contiguous"):
    """x, residual (or None), weight, bias. layout "strided_rows" gives rows with a gap after
    them (a slice of a wider tensor); "transposed" gives a last dim that is not contiguous."""
    generator = torch.Generator().manual_seed(seed)
    hidden = shape[-1]

    def activation():
        if layout == "strided_rows":
            wide = torch.randn(*shape[:-1], hidden + 5, generator=generator)
            return wide.to(device, dtype)[..., :hidden]
        if layout == "transposed":
            return torch.randn(*shape[:-2], hidden, shape[-2], generator=generator).to(
                device, dtype).transpose(-1, -2)
        return torch.randn(shape, generator=generator).to(device, dtype)

    x = activation()
    residual = activation() if with_residual else None
    weight = (1 + 0.5 * torch.randn(hidden, generator=generator)).to(device, dtype)
    bias = (0.5 * torch.randn(hidden, generator=generator)).to(device, dtype)
    return x, residual, weight, bias


def _leaves(tensors, dtype=None):
    return [None if t is None else t.detach().to(dtype or t.dtype).requires_grad_() for t in tensors]


def _grads(outputs, inputs, grad_outputs):
    present = [t for t in inputs if t is not None]
    grads = iter(torch.autograd.grad(outputs, present, grad_outputs))
    return [None if t is None else next(grads) for t in inputs]


def check_against_reference(backend, x, residual, weight, bias, eps=1e-5, return_residual=False,
                            keep_mask=None, dropout_p=0.0, run=None):
    """Forward outputs and the gradients of every input against the reference.

    `run(x, residual, weight, bias)` calls fastattn (defaults to the plain call); keep_mask and
    dropout_p tell the reference which dropout mask the call used.
    """
    if run is None:
        def run(*args):
            return fastattn.layer_norm_residual(*args, eps, return_residual=True, backend=backend)
    inputs = _leaves((x, residual, weight, bias))
    y, h = run(*inputs)
    ref_inputs = _leaves(inputs, torch.float64)
    ref_y, ref_h = reference.layer_norm_residual(*ref_inputs, eps, keep_mask=keep_mask,
                                                 dropout_p=dropout_p, upcast=True)
    eager_inputs = _leaves(inputs)
    eager_y, eager_h = reference.layer_norm_residual(*eager_inputs, eps, keep_mask=keep_mask,
                                                     dropout_p=dropout_p, upcast=False)
    assert y.dtype == x.dtype and y.shape == x.shape
    assert_numerics("y", y, ref_y, eager_y)
    assert_numerics("h", h, ref_h, eager_h)

    generator = torch.Generator().manual_seed(1)
    dy = torch.randn(y.shape, generator=generator).to(y.device, y.dtype)
    dh = torch.randn(y.shape, generator=generator).to(y.device, y.dtype) if return_residual else None
    outputs = [(y, ref_y, eager_y, dy)] + ([(h, ref_h, eager_h, dh)] if return_residual else [])
    got = _grads([o[0] for o in outputs], inputs, [o[3] for o in outputs])
    ref = _grads([o[1] for o in outputs], ref_inputs, [o[3].double() for o in outputs])
    eager = _grads([o[2] for o in outputs], eager_inputs, [o[3] for o in outputs])
    for name, g, r, e in zip(("dx", "dresidual", "dweight", "dbias"), got, ref, eager):
        if g is None:
            assert r is None, f"{name} missing"
            continue
        assert g.dtype == inputs[("dx", "dresidual", "dweight", "dbias").index(name)].dtype
        assert_grad_numerics(name, g, r, e)


def check_case(backend, device, dtype, shape, with_residual=True, return_residual=False,
               eps=1e-5, layout="contiguous", seed=0):
    x, residual, weight, bias = make_inputs(shape, dtype, device, with_residual, seed, layout)

    def run(*args):
        out = fastattn.layer_norm_residual(*args, eps, return_residual=return_residual,
                                           backend=backend)
        if return_residual:
            return out
        # Without return_residual, h is not an output: compare y alone (h from the reference).
        h = args[0] if args[1] is None else args[0] + args[1]
        return out, h.detach()

    check_against_reference(backend, x, residual, weight, bias, eps, return_residual, run=run)


def check_constant_rows(backend, device, dtype, hidden=40):
    """Rows with zero variance normalise to the bias, not to NaN."""
    x, residual, weight, bias = make_inputs((6, hidden), dtype, device, with_residual=True)
    x = torch.full_like(x, 0.25)
    residual = torch.full_like(residual, -1.5)
    y = fastattn.layer_norm_residual(x, residual, weight, bias, backend=backend)
    ref_y, _ = reference.layer_norm_residual(x, residual, weight, bias, upcast=True)
    eager_y, _ = reference.layer_norm_residual(x, residual, weight, bias, upcast=False)
    assert_numerics("y", y, ref_y, eager_y)


def check_row_with_drifting_mean(backend, device, dtype, hidden=9000):
    """Rows whose mean drifts along the row (a ramp from -4 to 4 under the noise): the chunked
    forward of wide rows must merge its chunks' statistics with the spread of their means, which
    here is most of the variance."""
    x, residual, weight, bias = make_inputs((3, hidden), dtype, device, with_residual=True, seed=5)
    ramp = torch.linspace(-4.0, 4.0, hidden, device=device)
    x = (x.float() + ramp).to(dtype)
    check_against_reference(backend, x, residual, weight, bias, return_residual=True)


def _dropout_call(backend, call_seed, x, residual, weight, bias, dropout_p):
    torch.manual_seed(call_seed)
    return fastattn.layer_norm_residual(x, residual, weight, bias, dropout_p=dropout_p,
                                        return_residual=True, backend=backend)


def dropout_keep_mask_of_call(backend, call_seed, x, weight, bias, dropout_p):
    """The keep mask a call under torch.manual_seed(call_seed) draws for x's shape, read off the
    same call without a residual: a dropped element of h = dropout(x) is then exactly zero."""
    _, h = _dropout_call(backend, call_seed, x, None, weight, bias, dropout_p)
    return h != 0


def check_dropout_against_reference(backend, device, dtype, with_residual, dropout_p=0.3,
                                    shape=(37, 300)):
    """Outputs and gradients under dropout equal the reference given the same keep mask."""
    x, residual, weight, bias = make_inputs(shape, dtype, device, with_residual, seed=3)
    call_seed = 99
    keep = dropout_keep_mask_of_call(backend, call_seed, x, weight, bias, dropout_p)

    def run(*args):
        return _dropout_call(backend, call_seed, *args, dropout_p)

    check_against_reference(backend, x, residual, weight, bias, return_residual=True,
                            keep_mask=keep, dropout_p=dropout_p, run=run)


def check_dropout_uses_shared_philox_stream(backend, device, dropout_p=0.4, shape=(19, 515)):
    """The triton and cuda backends draw reference.dropout_keep_mask(seed), seed taken from torch's
    generator, so the two backends (and the reference) agree element for element."""
    x, _, weight, bias = make_inputs(shape, torch.float32, device, with_residual=False, seed=4)
    keep = dropout_keep_mask_of_call(backend, 123, x, weight, bias, dropout_p)
    torch.manual_seed(123)
    expected = reference.dropout_keep_mask(int(draw_dropout_seed(dropout_p)), shape, dropout_p, device)
    assert torch.equal(keep, expected)


def check_dropout_statistics(backend, device, dropout_p=0.2, shape=(256, 1024)):
    """The kept fraction is within 0.01 of 1 - p, kept values are scaled by 1/(1-p), a fixed
    torch.manual_seed repeats the mask and another seed changes it."""
    x, _, weight, bias = make_inputs(shape, torch.float32, device, with_residual=False, seed=5)

    def dropped_sum(seed):
        torch.manual_seed(seed)
        return fastattn.layer_norm_residual(x, None, weight, bias, dropout_p=dropout_p,
                                            return_residual=True, backend=backend)[1]

    h = dropped_sum(7)
    kept = h != 0
    assert abs(kept.float().mean().item() - (1 - dropout_p)) < 0.01
    assert max_abs_diff(h[kept], x[kept] / (1 - dropout_p)) < 1e-5
    assert torch.equal(dropped_sum(7), h), "same torch.manual_seed, different dropout mask"
    assert not torch.equal(dropped_sum(8), h), "different seeds, same dropout mask"
    everything_dropped = fastattn.layer_norm_residual(x, None, weight, bias, dropout_p=1.0,
                                                      return_residual=True, backend=backend)[1]
    assert torch.equal(everything_dropped, torch.zeros_like(x))
