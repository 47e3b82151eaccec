"""float64 through every op, written once and run by the cpu tier (torch backend), the interpret
tier (triton) and the gpu tier (every backend). The torch backend computes float64 in float64
(its softmax, GELU and statistics too), so a float64 model (gradcheck, numerical checks) keeps
working after fastattn.patch; the kernels take float32, float16 and bfloat16 and refuse float64 by
name, and the automatic choice gives float64 to the torch backend."""

import pytest
import torch

import fastattn
from fastattn import BackendUnavailableError
from op_cases import CASES, draw

# torch's float64 ops against the reference's: a few rounding steps of float64 apart.
TOLERANCE = 1e-10


@pytest.fixture(params=list(CASES))
def case(request, device):
    return CASES[request.param](torch.Generator().manual_seed(0), device, torch.float64)


def test_float64(backend, case):
    """backend=None takes the torch backend for float64; naming a kernel backend raises."""
    if backend != "torch":
        with pytest.raises(BackendUnavailableError, match="float64"):
            case.run(case.x, backend)
    out = case.run(case.x, None if backend != "torch" else backend)
    assert out.dtype == torch.float64
    torch.testing.assert_close(out, case.ref(case.x, True), rtol=TOLERANCE, atol=TOLERANCE)


def test_gradcheck(case):
    """Finite differences against the backward, which float64 makes tight enough to check."""
    x = case.x[..., :5].contiguous() if case.op == "ffn" else case.x
    if case.op == "ffn":  # a narrow input keeps the number of finite differences small
        g = torch.Generator().manual_seed(1)
        w1, b1 = draw(g, x.device, x.dtype, 6, 5), draw(g, x.device, x.dtype, 6)
        w2, b2 = draw(g, x.device, x.dtype, 4, 6), draw(g, x.device, x.dtype, 4)
        inputs = (x, w1, b1, w2, b2)
        run = fastattn.ffn
    else:
        inputs = (x,)
        run = lambda x: case.run(x, None)  # noqa: E731
    inputs = tuple(t.detach().requires_grad_() for t in inputs)
    assert torch.autograd.gradcheck(run, inputs, eps=1e-6, atol=1e-7, rtol=1e-5)
