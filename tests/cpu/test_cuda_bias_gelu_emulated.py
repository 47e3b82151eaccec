"""csrc/bias_gelu.cu, kernels and launchers as nvcc builds them, run on the host under
tests/cuda_host_emulator.h, against fastattn.reference under the numerics rule: erf and tanh, every
dtype, the 16-byte vector path and the scalar one (odd widths, padded row strides), rows that leave
each kernel's row batches (4 a thread forward, 2 backward) and the bias gradient's chunks part
full. The gpu tier checks the same kernels on a chip; this is where a wrong row or column index
shows without one."""

import pytest
import torch

from fastattn import reference
from host_cxx import DTYPE_CODE, build_emulated_driver, padded_rows, run_emulated, unpadded_rows
from numerics import assert_grad_numerics, assert_numerics

MAIN = r"""
// IN: int64 dtype, rows, n_cols, row stride, tanh, chunks; float32 x [rows, stride], bias
// [n_cols], grad_out [rows, stride].
// OUT: float32 out [rows, stride], grad_in [rows, stride], bias_grad_partial [chunks, n_cols].
int main(int argc, char** argv) {
  using namespace emulated_driver;
  return emulated_driver::main<6, 0>(argc, argv, [](auto element, fastattn::ElementType dtype,
                                                    FILE* in, FILE* out, const long long* h,
                                                    const double*) {
    using T = decltype(element);
    const long long rows = h[1], cols = h[2], stride = h[3], chunks = h[5];
    std::vector<float> x(rows * stride), bias(cols), grad_out(rows * stride);
    if (!read(in, x) || !read(in, bias) || !read(in, grad_out)) return 1;
    std::vector<T> tx = typed<T>(x), tb = typed<T>(bias), tg = typed<T>(grad_out);
    std::vector<T> ty = unwritten<T>(rows * stride), tdx = unwritten<T>(rows * stride);
    std::vector<float> partial = unwritten<float>(chunks * cols);
    fastattn::BiasGeluFwdParams f{tx.data(), tb.data(), ty.data(), rows, cols, stride, stride,
                                  h[4] != 0};
    if (fastattn::launch_bias_gelu_fwd(f, dtype, nullptr) != cudaSuccess) return 2;
    fastattn::BiasGeluBwdParams b{tg.data(), tx.data(), tb.data(), tdx.data(), partial.data(),
                                  static_cast<int>(chunks), rows, cols, stride, stride, stride,
                                  h[4] != 0};
    if (fastattn::launch_bias_gelu_bwd(b, dtype, nullptr) != cudaSuccess) return 3;
    write(out, ty);
    write(out, tdx);
    write(out, partial);
    return 0;
  });
}
"""


@pytest.fixture(scope="module")
def driver(tmp_path_factory):
    return build_emulated_driver(tmp_path_factory, "bias_gelu", "bias_gelu.cu", MAIN)


def run_bias_gelu(driver, tmp_path, x, bias, grad_out, stride, tanh, chunks):
    rows, cols = x.shape
    values = run_emulated(driver, tmp_path, (DTYPE_CODE[x.dtype], rows, cols, stride, int(tanh),
                                             chunks),
                          arrays=(padded_rows(x, stride), bias, padded_rows(grad_out, stride)))
    out, grad_in, partial = values.split([rows * stride, rows * stride, chunks * cols])
    return (unpadded_rows(out, rows, cols, stride, x.dtype),
            unpadded_rows(grad_in, rows, cols, stride, x.dtype), partial.view(chunks, cols))


# (dtype, rows, cols, row stride, chunks): 16-bit widths of whole 16-byte vectors take the vector
# path; odd widths and strides the scalar one.
CASES = [
    (torch.float16, 37, 64, 64, 3),
    (torch.bfloat16, 130, 512, 520, 4),
    (torch.float32, 9, 100, 100, 1),
    (torch.float16, 21, 1023, 1023, 2),
    (torch.bfloat16, 5, 8, 8, 5),
    (torch.float32, 66, 300, 304, 7),
]


@pytest.mark.parametrize("approximate", ["none", "tanh"])
@pytest.mark.parametrize("case", CASES,
                         ids=lambda c: f"{str(c[0])[6:]}-{c[1]}x{c[2]}s{c[3]}c{c[4]}")
def test_emulated_bias_gelu_matches_reference(driver, tmp_path, case, approximate):
    dtype, rows, cols, stride, chunks = case
    generator = torch.Generator().manual_seed(rows * cols)
    x, grad_out = (3 * torch.randn(rows, cols, generator=generator)).to(dtype), \
        torch.randn(rows, cols, generator=generator).to(dtype)
    bias = torch.randn(cols, generator=generator).to(dtype)
    out, grad_in, partial = run_bias_gelu(driver, tmp_path, x, bias, grad_out, stride,
                                          approximate == "tanh", chunks)

    def forward(x, bias, upcast):
        return reference.bias_gelu(x, bias, approximate=approximate, upcast=upcast)

    ref_inputs = [t.double().requires_grad_() for t in (x, bias)]
    eager_inputs = [t.clone().requires_grad_() for t in (x, bias)]
    ref, eager = forward(*ref_inputs, True), forward(*eager_inputs, False)
    assert_numerics("out", out, ref, eager)
    ref_dx, ref_db = torch.autograd.grad(ref, ref_inputs, grad_out.double())
    eager_dx, eager_db = torch.autograd.grad(eager, eager_inputs, grad_out)
    assert_grad_numerics("grad_in", grad_in, ref_dx, eager_dx)
    assert_grad_numerics("bias grad (chunks summed)", partial.sum(0).to(dtype), ref_db, eager_db)
