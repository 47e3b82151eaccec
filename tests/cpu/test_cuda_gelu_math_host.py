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

// Reads z values; prints gelu and gelu' for the erf form (with erff, then with the fast erfc of
// 16-bit outputs) and the tanh form.
int main() {
  float z = 0.0f;
  while (std::scanf("%f", &z) == 1) {
    std::printf("%.9g %.9g %.9g %.9g %.9g %.9g\n", fastattn::gelu<false>(z),
                fastattn::gelu_grad<false>(z), fastattn::gelu<false, false>(z),
                fastattn::gelu_grad<false, false>(z), fastattn::gelu<true>(z),
                fastattn::gelu_grad<true>(z));
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


# (form, value, bound on |got - torch's float64| / max(1, |expected|)), one per driver column. The
# fast erf form is for 16-bit outputs: its erfc approximation is within 1.5e-7 of erf, far under
# float16's 2^-11 and bfloat16's 2^-8, and float32 arithmetic adds a few ulps (3e-7 measured).
COLUMNS = [("none", "y", 2e-6), ("none", "grad", 2e-6), ("none", "y", 1e-6),
           ("none", "grad", 1e-6), ("tanh", "y", 2e-6), ("tanh", "grad", 2e-6)]


def test_host_gelu_matches_torch(gelu_driver):
    # Round to float32 first: that is what the driver reads.
    z = torch.tensor(Z, dtype=torch.float32)
    lines = "".join(f"{v!r}\n" for v in z.tolist())
    stdout = run_driver(gelu_driver, lines)
    got = torch.tensor([[float(w) for w in line.split()] for line in stdout.splitlines()],
                       dtype=torch.float64)
    assert got.shape == (len(Z), len(COLUMNS))
    for column, (approximate, what, bound) in enumerate(COLUMNS):
        expected = torch_gelu_and_grad(z, approximate)[what == "grad"]
        error = (got[:, column] - expected).abs() / expected.abs().clamp_min(1.0)
        assert error.max().item() < bound, (
            f"column {column}, gelu {approximate} {what}: {error.max().item():.2e}")


def test_fast_erf_form_is_exact_in_the_limits(gelu_driver):
    """Phi(z) -> 0 and 1 at the tails and Phi(0) = 1/2: gelu(z) = z and gelu'(z) = 1 for z >= 12,
    both about 0 for z <= -12, gelu(0) = 0 and gelu'(0) = 1/2."""
    z = [-40.0, -12.0, 0.0, 12.0, 40.0]
    stdout = run_driver(gelu_driver, "".join(f"{v!r}\n" for v in z))
    fast = [tuple(float(w) for w in line.split()[2:4]) for line in stdout.splitlines()]
    assert max(abs(v) for v in fast[0] + fast[1]) < 1e-25
    assert fast[2] == (0.0, 0.5)
    assert fast[3] == (12.0, 1.0) and fast[4] == (40.0, 1.0)
