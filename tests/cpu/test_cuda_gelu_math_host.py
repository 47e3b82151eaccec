"""The CUDA kernels' GELU math (csrc/gelu_math.cuh), compiled for the host with g++, matches torch's
float64 GELU and its derivative within float32 accuracy, for both forms: a wrong constant or
derivative term would otherwise show only on a GPU."""

import pytest
import torch
import torch.nn.functional as F

from host_cxx import build_driver, run_driver

DRIVER = r"""
#include <cstdio>

#include "gelu_math.cuh"

// Reads z values; prints gelu and gelu' for both forms.
int main() {
  float z = 0.0f;
  while (std::scanf("%f", &z) == 1) {
    std::printf("%.9g %.9g %.9g %.9g\n", fastattn::gelu<false>(z), fastattn::gelu_grad<false>(z),
                fastattn::gelu<true>(z), fastattn::gelu_grad<true>(z));
  }
  return 0;
}
"""

Z = [-20.0, -9.0, -5.0, -3.0, -1.5, -1.0, -0.5, -1e-3, -1e-6, 0.0, 1e-6, 1e-3, 0.3, 0.5, 1.0, 2.0,
     4.0, 8.0, 20.0] + torch.linspace(-6, 6, 241).tolist()


@pytest.fixture(scope="module")
def gelu_driver(tmp_path_factory):
    return build_driver(tmp_path_factory, "GELU", DRIVER)


def torch_gelu_and_grad(z, approximate):
    z = z.double().requires_grad_()
    y = F.gelu(z, approximate=approximate)
    (grad,) = torch.autograd.grad(y.sum(), z)
    return y.detach(), grad


def test_host_gelu_matches_torch(gelu_driver):
    # Round to float32 first: that is what the driver reads.
    z = torch.tensor(Z, dtype=torch.float32)
    lines = "".join(f"{v!r}\n" for v in z.tolist())
    stdout = run_driver(gelu_driver, lines)
    got = torch.tensor([[float(w) for w in line.split()] for line in stdout.splitlines()],
                       dtype=torch.float64)
    for column, (approximate, what) in enumerate([("none", "y"), ("none", "grad"),
                                                  ("tanh", "y"), ("tanh", "grad")]):
        expected = torch_gelu_and_grad(z, approximate)[what == "grad"]
        error = (got[:, column] - expected).abs() / expected.abs().clamp_min(1.0)
        assert error.max().item() < 2e-6, f"gelu {approximate} {what}: {error.max().item():.2e}"
