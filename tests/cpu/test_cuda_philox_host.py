"""The CUDA kernels' dropout RNG (csrc/philox.cuh), compiled for the host with g++, draws bit for bit
the numbers of fastattn.reference.philox_uniform (Triton's tl.rand): a wrong constant or word order
would otherwise show only on a GPU, as a dropout mask differing between the cuda and triton backends.
"""

import pytest
import torch

from fastattn.reference import philox_uniform
from host_cxx import build_driver, run_driver

DRIVER = r"""
#include <cinttypes>
#include <cstdio>
#include <cstring>

#include "philox.cuh"

// Reads "seed offset" pairs, prints the float32 bits of philox_uniform(seed, offset) in hex.
int main() {
  uint64_t seed = 0, offset = 0;
  while (std::scanf("%" SCNu64 " %" SCNu64, &seed, &offset) == 2) {
    const float u = fastattn::philox_uniform(seed, offset);
    uint32_t bits = 0;
    std::memcpy(&bits, &u, sizeof(bits));
    std::printf("%08" PRIx32 "\n", bits);
  }
  return 0;
}
"""

SEEDS = [0, 1, 42, 0xFFFFFFFF, 2**32, 0x0123456789ABCDEF, 2**62 - 1]
OFFSETS = [0, 1, 2, 767, 768, 2**31 - 1, 2**31, 2**32 - 1, 2**32, 2**32 + 5, 10**12, 2**40 + 12345]


@pytest.fixture(scope="module")
def philox_driver(tmp_path_factory):
    return build_driver(tmp_path_factory, "philox", DRIVER)


def host_uniform_bits(driver, pairs):
    lines = "".join(f"{seed} {offset}\n" for seed, offset in pairs)
    stdout = run_driver(driver, lines)
    return [int(word, 16) for word in stdout.split()]


def reference_uniform_bits(seed, offsets):
    values = philox_uniform(seed, torch.tensor(offsets, dtype=torch.int64))
    return [v & 0xFFFFFFFF for v in values.view(torch.int32).tolist()]


@pytest.mark.parametrize("seed", SEEDS)
def test_host_philox_matches_reference(philox_driver, seed):
    generator = torch.Generator().manual_seed(seed % 2**32)
    offsets = OFFSETS + torch.randint(0, 2**40, (64,), generator=generator).tolist()
    got = host_uniform_bits(philox_driver, [(seed, offset) for offset in offsets])
    assert got == reference_uniform_bits(seed, offsets)


def test_host_philox_is_uniform_in_unit_interval(philox_driver):
    bits = host_uniform_bits(philox_driver, [(7, offset) for offset in range(4096)])
    values = torch.tensor(bits, dtype=torch.int64).to(torch.int32).view(torch.float32)
    assert values.min() >= 0.0 and values.max() < 1.0
    assert abs(values.mean().item() - 0.5) < 0.02
