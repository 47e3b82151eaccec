"""csrc/bias_gelu.cu, kernels and launchers as nvcc builds them, run on the host under
tests/cuda_host_emulator.h, against fastattn.reference under the numerics rule: erf and tanh, every
dtype, the 16-byte vector path and the scalar one (odd widths, padded row strides), rows that leave
each kernel's row batches (4 a thread forward, 2 backward) and the bias gradient's chunks part
full. The gpu tier checks the same kernels on a chip; this is where a wrong row or column index
shows without one."""

import struct
import subprocess

import pytest
import torch

from fastattn import reference
from host_cxx import build_emulated_driver
from numerics import assert_grad_numerics, assert_numerics

MAIN = r"""
#include <cstdio>
#include <vector>

// IN: int64 dtype (0 float32, 1 float16, 2 bfloat16), rows, n_cols, row stride, tanh, chunks; then
// float32 x [rows, stride], bias [n_cols], grad_out [rows, stride].
// OUT: float32 out [rows, stride], grad_in [rows, stride], bias_grad_partial [chunks, n_cols].
template <typename T>
int run(FILE* in, FILE* out, const long long* h, fastattn::ElementType dtype) {
  const long long rows = h[1], cols = h[2], stride = h[3], chunks = h[5];
  std::vector<float> x(rows * stride), bias(cols), grad_out(rows * stride);
  if (std::fread(x.data(), 4, x.size(), in) != x.size() ||
      std::fread(bias.data(), 4, bias.size(), in) != bias.size() ||
      std::fread(grad_out.data(), 4, grad_out.size(), in) != grad_out.size()) return 1;
  auto typed = [](const std::vector<float>& v) {
    std::vector<T> t(v.size());
    for (size_t i = 0; i < v.size(); ++i) t[i] = fastattn::from_float<T>(v[i]);
    return t;
  };
  std::vector<T> tx = typed(x), tb = typed(bias), tg = typed(grad_out);
  std::vector<T> ty(rows * stride, fastattn::from_float<T>(NAN)), tdx(ty);
  std::vector<float> partial(chunks * cols, NAN);
  fastattn::BiasGeluFwdParams f{tx.data(), tb.data(), ty.data(), rows, cols, stride, stride,
                                h[4] != 0};
  if (fastattn::launch_bias_gelu_fwd(f, dtype, nullptr) != cudaSuccess) return 2;
  fastattn::BiasGeluBwdParams b{tg.data(), tx.data(), tb.data(), tdx.data(), partial.data(),
                                static_cast<int>(chunks), rows, cols, stride, stride, stride,
                                h[4] != 0};
  if (fastattn::launch_bias_gelu_bwd(b, dtype, nullptr) != cudaSuccess) return 3;
  for (const auto* values : {&ty, &tdx}) {
    std::vector<float> v(values->size());
    for (size_t i = 0; i < v.size(); ++i) v[i] = fastattn::to_float((*values)[i]);
    std::fwrite(v.data(), 4, v.size(), out);
  }
  std::fwrite(partial.data(), 4, partial.size(), out);
  return 0;
}

int main(int argc, char** argv) {
  if (argc != 3) return 1;
  FILE* in = std::fopen(argv[1], "rb");
  FILE* out = std::fopen(argv[2], "wb");
  long long h[6];
  if (in == nullptr || out == nullptr || std::fread(h, 8, 6, in) != 6) return 1;
  int status = 1;
  switch (h[0]) {
    case 0: status = run<float>(in, out, h, fastattn::ElementType::kFloat32); break;
    case 1: status = run<__half>(in, out, h, fastattn::ElementType::kFloat16); break;
    case 2: status = run<__nv_bfloat16>(in, out, h, fastattn::ElementType::kBFloat16); break;
  }
  std::fclose(out);
  return status;
}
"""
DTYPE_CODE = {torch.float32: 0, torch.float16: 1, torch.bfloat16: 2}


@pytest.fixture(scope="module")
def driver(tmp_path_factory):
    return build_emulated_driver(tmp_path_factory, "bias_gelu", "bias_gelu.cu", MAIN)


def run_emulated(driver, tmp_path, x, bias, grad_out, stride, tanh, chunks):
    rows, cols = x.shape
    padded = [torch.nn.functional.pad(t.float(), (0, stride - cols)) for t in (x, grad_out)]
    source, target = tmp_path / "in.bin", tmp_path / "out.bin"
    source.write_bytes(struct.pack("<6q", DTYPE_CODE[x.dtype], rows, cols, stride, int(tanh), chunks)
                       + padded[0].numpy().tobytes() + bias.float().numpy().tobytes()
                       + padded[1].numpy().tobytes())
    result = subprocess.run([str(driver), str(source), str(target)], capture_output=True, text=True)
    assert result.returncode == 0, f"driver failed ({result.returncode}): {result.stderr}"
    values = torch.frombuffer(bytearray(target.read_bytes()), dtype=torch.float32)
    out, grad_in, partial = values.split([rows * stride, rows * stride, chunks * cols])
    unpad = lambda t: t.view(rows, stride)[:, :cols].to(x.dtype)  # noqa: E731
    return unpad(out), unpad(grad_in), partial.view(chunks, cols)


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
@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{str(c[0])[6:]}-{c[1]}x{c[2]}s{c[3]}c{c[4]}")
def test_emulated_bias_gelu_matches_reference(driver, tmp_path, case, approximate):
    dtype, rows, cols, stride, chunks = case
    generator = torch.Generator().manual_seed(rows * cols)
    x, grad_out = (3 * torch.randn(rows, cols, generator=generator)).to(dtype), \
        torch.randn(rows, cols, generator=generator).to(dtype)
    bias = torch.randn(cols, generator=generator).to(dtype)
    out, grad_in, partial = run_emulated(driver, tmp_path, x, bias, grad_out, stride,
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
