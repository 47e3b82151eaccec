"""Real sizes on the GPU, the backends against each other, and the automatic choice."""

import pytest
import torch

import fastattn
import lnr_cases
from numerics import max_abs_diff

# BERT/GPT2 widths at training batch sizes, the wide-row Triton backward (> 4096), the widest rows
# the Triton forward holds in registers (kernels.row_settings.MAX_ROW_BLOCK) and wider ones (its
# chunked forward).
REAL_SHAPES = [(32768, 768), (32768, 1024), (8192, 4096), (4096, 8192), (1024, 16384)]


@pytest.mark.parametrize("shape", REAL_SHAPES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_real_sizes(backend, device, dtype, shape):
    lnr_cases.check_case(backend, device, dtype, shape, return_residual=True)


@pytest.mark.parametrize("backend_name", ["triton", "cuda"])
def test_at_the_cuda_limit(device, dtype, backend_name):
    status = fastattn.available_backends()[backend_name]
    if not status["available"]:
        pytest.skip(f"{backend_name} backend unavailable: {status['detail']}")
    lnr_cases.check_case(backend_name, device, dtype, (64, 32768), return_residual=True)


def test_triton_and_cuda_draw_the_same_dropout_mask(device):
    status = fastattn.available_backends()
    missing = [name for name in ("triton", "cuda") if not status[name]["available"]]
    if missing:
        pytest.skip(f"needs both fused backends, missing {missing}: {status[missing[0]]['detail']}")
    x, residual, weight, bias = lnr_cases.make_inputs((333, 1000), torch.float32, device, True)
    results = {}
    for name in ("triton", "cuda"):
        torch.manual_seed(21)
        results[name] = fastattn.layer_norm_residual(x, residual, weight, bias, dropout_p=0.1,
                                                     return_residual=True, backend=name)
    (y_t, h_t), (y_c, h_c) = results["triton"], results["cuda"]
    assert torch.equal(h_t == residual, h_c == residual), "different dropout masks"
    # h may differ by the last bit where one compiler fuses x * scale + residual into an FMA.
    torch.testing.assert_close(h_t, h_c, rtol=1e-6, atol=1e-6)
    assert max_abs_diff(y_t, y_c) <= 1e-4


def test_automatic_choice_on_gpu_is_a_fused_backend(device):
    x, residual, weight, bias = lnr_cases.make_inputs((4, 64), torch.float16, device, True)
    from fastattn import _dispatch
    chosen = _dispatch.resolve_backend("layer_norm_residual", x.device)
    assert chosen in ("triton", "cuda"), chosen
    fastattn.layer_norm_residual(x, residual, weight, bias)
