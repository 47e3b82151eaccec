"""csrc/ffn_dropout.cu, kernel and launcher as nvcc builds them, run on the host under
tests/cuda_host_emulator.h: out = in * keep / (1 - p) with keep fastattn.reference.dropout_keep_mask
bit for bit (the stream the triton FFN and the reference share), every dtype, padded row strides,
in place and not, odd sizes that leave the last tiles part full."""

import pytest
import torch

from fastattn import reference
from host_cxx import DTYPE_CODE, build_emulated_driver, padded_rows, run_emulated, unpadded_rows

MAIN = r"""
// IN: int64 dtype, rows, n_cols, row stride, in_place, seed; float64 dropout p; float32 in
// [rows, stride]. OUT: float32 out [rows, stride].
int main(int argc, char** argv) {
  using namespace emulated_driver;
  return emulated_driver::main<6, 1>(argc, argv, [](auto element, fastattn::ElementType dtype,
                                                    FILE* in, FILE* out, const long long* h,
                                                    const double* f) {
    using T = decltype(element);
    const long long rows = h[1], cols = h[2], stride = h[3];
    std::vector<float> values(rows * stride);
    if (!read(in, values)) return 1;
    std::vector<T> source = typed<T>(values), target = unwritten<T>(values.size());
    std::vector<T>& destination = h[4] ? source : target;
    const float p = static_cast<float>(f[0]);
    fastattn::FfnDropoutParams params{source.data(), destination.data(), rows, cols, stride,
                                      stride, p, static_cast<float>(1.0 / (1.0 - f[0])),
                                      static_cast<uint64_t>(h[5])};
    if (fastattn::launch_ffn_dropout(params, dtype, nullptr) != cudaSuccess) return 2;
    write(out, destination);
    return 0;
  });
}
"""
SEED = 2026


@pytest.fixture(scope="module")
def driver(tmp_path_factory):
    return build_emulated_driver(tmp_path_factory, "ffn_dropout", "ffn_dropout.cu", MAIN)


@pytest.mark.parametrize("case", [(torch.float32, 7, 33, 40, False, 0.1),
                                  (torch.float16, 19, 768, 768, True, 0.5),
                                  (torch.bfloat16, 3, 1023, 1024, False, 0.25)],
                         ids=lambda c: f"{str(c[0])[6:]}-{c[1]}x{c[2]}s{c[3]}"
                                       f"{'-inplace' if c[4] else ''}-p{c[5]}")
def test_emulated_ffn_dropout_matches_reference(driver, tmp_path, case):
    dtype, rows, cols, stride, in_place, dropout_p = case
    x = torch.randn(rows, cols, generator=torch.Generator().manual_seed(cols)).to(dtype)
    values = run_emulated(driver, tmp_path, (DTYPE_CODE[dtype], rows, cols, stride, int(in_place),
                                             SEED), (dropout_p,), (padded_rows(x, stride),))
    out = unpadded_rows(values, rows, cols, stride, dtype)
    keep = reference.dropout_keep_mask(SEED, (rows, cols), dropout_p)
    expected = (x.float() * keep * (1.0 / (1.0 - dropout_p))).to(dtype)
    assert torch.equal(out, expected)
