"""The fused FFN suite on the Triton kernels, interpreted on CPU (see tests/ffn_suite.py), once with
the pointer kernel's tiles and once with every 16-bit GEMM on the persistent TMA kernel
(kernels/ffn_matmul_tma.py, a tuning candidate for sm_90): small TMA tiles, so that each of the
interpreter's few programs walks several output tiles and the edges are partial."""

import pytest

from fastattn.backends import triton_ffn
from fastattn.kernels import ffn_settings
from ffn_suite import *  # noqa: F401,F403

SMALL_TMA_TILES = ffn_settings.Tiles(32, 32, 16, 2, 4, 2, tma=True)


@pytest.fixture(autouse=True, params=["pointer", "tma"])
def _kernel(request, monkeypatch):
    if request.param == "tma":
        monkeypatch.setenv("FASTATTN_INTERPRET_ARCH", "90")
        monkeypatch.setattr(ffn_settings, "matmul_tiles", lambda *args, **kwargs: SMALL_TMA_TILES)
    return request.param


def test_the_tma_kernel_takes_every_16_bit_gemm(_kernel, count_launches):
    """With TMA tiles on sm_90 the six GEMMs of a forward + backward in float16 all launch the TMA
    kernel, transposed operands too; float32 keeps the pointer kernel."""
    import torch

    import fastattn

    tma = count_launches(triton_ffn, "ffn_matmul_tma_kernel")
    pointer = count_launches(triton_ffn, "ffn_matmul_kernel")
    for dtype in (torch.float16, torch.float32):
        x = torch.randn(37, 48, dtype=dtype).t().contiguous().t().requires_grad_()  # column-major
        weights = [torch.randn(*shape, dtype=dtype, requires_grad=True)
                   for shape in ((64, 48), (64,), (48, 64), (48,))]
        out = fastattn.ffn(x, *weights, backend="triton")
        torch.autograd.grad(out, [x, *weights], torch.ones_like(out))
    expected_tma = 6 if _kernel == "tma" else 0
    assert (len(tma), len(pointer)) == (expected_tma, 12 - expected_tma)
