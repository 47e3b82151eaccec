"""torch.func transforms over fastattn's ops (fastattn.ops._fused_op), written once and run by the
cpu tier (torch backend), the interpret tier (the Triton kernels on CPU) and the gpu tier (every
backend): grad, vmap, per-sample gradients (vmap of grad) and jacrev against fastattn.reference
under the numerics rule, and a gradient of a gradient refused loudly. Also forward-mode AD
(torch.autograd.forward_ad), which the kernel backends refuse and the torch backend serves.

torch.func hands an op wrapper tensors (no data pointer a kernel could use), runs every backward
with grad mode on, and needs a vmap rule for each autograd.Function. Before fastattn handled them,
grad raised an error about autograd.Function internals and vmap failed inside the kernels.
"""

import pytest
import torch
import torch.autograd.forward_ad as fwad

import fastattn
from fastattn import BackendUnavailableError, reference
from numerics import assert_grad_numerics, assert_numerics
from op_cases import CASES, draw

MAPPED = 3  # size of the dimension vmap maps over


@pytest.fixture(params=list(CASES))
def case(request, device, dtype):
    return CASES[request.param](torch.Generator().manual_seed(0), device, dtype)


def _loss(output, weights):
    return (output * weights.to(output.dtype)).sum()


def _output_weights(case):
    shape = case.ref(case.x, True).shape
    return torch.randn(shape, generator=torch.Generator().manual_seed(1)).to(case.x.device)


def _mapped(x):
    """x with a leading dimension of MAPPED different inputs (the first is x itself)."""
    others = torch.randn((MAPPED - 1, *x.shape), generator=torch.Generator().manual_seed(2))
    return torch.cat([x[None], others.to(x.device, x.dtype)])


def _reference_grad(case, weights, x, upcast):
    source = x.double() if upcast else x
    return torch.func.grad(lambda x: _loss(case.ref(x, upcast), weights))(source)


def test_grad(backend, case):
    weights = _output_weights(case)
    got = torch.func.grad(lambda x: _loss(case.run(x, backend), weights))(case.x)
    assert got.dtype == case.x.dtype
    assert_grad_numerics("grad", got, _reference_grad(case, weights, case.x, True),
                         _reference_grad(case, weights, case.x, False))


def test_vmap(backend, case):
    xs = _mapped(case.x)
    got = torch.func.vmap(lambda x: case.run(x, backend))(xs)
    for i, x in enumerate(xs):
        assert_numerics(f"vmap[{i}]", got[i], case.ref(x, True), case.ref(x, False))


def test_vmap_and_per_sample_grads_over_an_empty_batch(backend, case):
    """A mapped dimension of size 0 (an empty batch of samples): empty outputs of the right shape
    and dtype, as stock ops give. Failed before: no element to run, and reshape(-1, ...) of an
    empty tensor cannot infer the -1."""
    empty = case.x.new_empty((0, *case.x.shape))
    element_shape = case.ref(case.x, False).shape
    got = torch.func.vmap(lambda x: case.run(x, backend))(empty)
    assert (got.shape, got.dtype) == ((0, *element_shape), case.x.dtype)
    weights = _output_weights(case)
    grads = torch.func.vmap(torch.func.grad(lambda x: _loss(case.run(x, backend), weights)))(empty)
    assert (grads.shape, grads.dtype) == (empty.shape, case.x.dtype)


def test_per_sample_grads(backend, case):
    """vmap of grad: one gradient per mapped input, as per-sample gradient methods compute."""
    weights = _output_weights(case)
    xs = _mapped(case.x)
    got = torch.func.vmap(torch.func.grad(lambda x: _loss(case.run(x, backend), weights)))(xs)
    for i, x in enumerate(xs):
        assert_grad_numerics(f"grad[{i}]", got[i], _reference_grad(case, weights, x, True),
                             _reference_grad(case, weights, x, False))


def test_jacrev(backend, device, dtype):
    """jacrev maps a vjp over the output's elements: the backward ops under vmap."""
    g = torch.Generator().manual_seed(3)
    x, bias = draw(g, device, dtype, 2, 6), draw(g, device, dtype, 6)
    got = torch.func.jacrev(lambda x: fastattn.bias_gelu(x, bias, backend=backend))(x)
    ref = torch.func.jacrev(lambda x: reference.bias_gelu(x, bias))(x.double())
    eager = torch.func.jacrev(lambda x: reference.bias_gelu(x, bias, upcast=False))(x)
    assert_grad_numerics("jacobian", got, ref, eager)


def test_a_gradient_of_a_gradient_raises(backend, case):
    weights = _output_weights(case)

    def grad_norm(x):
        return torch.func.grad(lambda y: _loss(case.run(y, backend), weights))(x).square().sum()

    with pytest.raises(RuntimeError, match="first order"):
        torch.func.grad(grad_norm)(case.x)


def _tangent(fn, x, tangent):
    with fwad.dual_level():
        return fwad.unpack_dual(fn(fwad.make_dual(x, tangent))).tangent


def test_forward_mode_ad(backend, case):
    """A kernel computes no tangent, and an output without one reads as a zero tangent: the
    kernel backends refuse dual inputs by name, and the automatic choice takes the torch backend,
    whose stock ops carry the tangent. torch's SDPA (the torch backend's attention) has no forward
    formula on some devices and says so, as it does for an unpatched model."""
    tangent = torch.randn(case.x.shape, generator=torch.Generator().manual_seed(4))
    tangent = tangent.to(case.x.device, case.x.dtype)
    if backend != "torch":
        with pytest.raises(BackendUnavailableError, match="forward-mode AD"):
            _tangent(lambda x: case.run(x, backend), case.x, tangent)
    try:
        got = _tangent(lambda x: case.run(x, None), case.x, tangent)
    except RuntimeError as error:
        assert "forward AD" in str(error) and case.op == "attention"
        return
    assert got is not None and got.dtype == case.x.dtype
    ref = _tangent(lambda x: case.ref(x, True), case.x.double(), tangent.double())
    eager = _tangent(lambda x: case.ref(x, False), case.x, tangent)
    assert_grad_numerics("tangent", got, ref, eager)


@pytest.mark.parametrize("randomness", ["error", "same", "different"])
def test_vmap_randomness_of_dropout(backend, device, dtype, randomness):
    """vmap's randomness flag holds for fastattn's dropout as for torch's: refused, one mask for
    every mapped element, or a mask each."""
    g = torch.Generator().manual_seed(5)
    x = draw(g, device, dtype, 4, 16).expand(MAPPED, 4, 16)
    weight, bias = draw(g, device, dtype, 16), draw(g, device, dtype, 16)

    def run(x):
        return fastattn.layer_norm_residual(x, None, weight, bias, dropout_p=0.5, backend=backend)

    if randomness == "error":
        with pytest.raises(RuntimeError, match="randomness"):
            torch.func.vmap(run, randomness=randomness)(x)
        return
    out = torch.func.vmap(run, randomness=randomness)(x)
    assert torch.equal(out[0], out[1]) == (randomness == "same")
