"""csrc/ffn_dropout.cu, kernel and launcher as nvcc builds them, run on the host under
tests/cuda_host_emulator.h: out = in * keep / (1 - p) with keep fastattn.reference.dropout_keep_mask
bit for bit (the stream the triton FFN and the reference share), every dtype, padded row strides,
in place and not, odd sizes that leave the last tiles part full."""

import struct
import subprocess

import pytest
import torch

from fastattn import reference
from host_cxx import build_emulated_driver

MAIN = r"""
#include <cstdio>
#include <vector>

// IN: int64 dtype, rows, n_cols, row stride, in_place, seed; float64 dropout p; float32 in
// [rows, stride]. OUT: float32 out [rows, stride].
template <typename T>
int run(FILE* in, FILE* out, const long long* h, double p, fastattn::ElementType dtype) {
  const long long rows = h[1], cols = h[2], stride = h[3];
  std::vector<float> values(rows * stride);
  if (std::fread(values.data(), 4, values.size(), in) != values.size()) return 1;
  std::vector<T> source(values.size()), target(values.size(), fastattn::from_float<T>(NAN));
  for (size_t i = 0; i < values.size(); ++i) source[i] = fastattn::from_float<T>(values[i]);
  T* destination = h[4] ? source.data() : target.data();
  fastattn::FfnDropoutParams params{source.data(), destination, rows, cols, stride, stride,
                                    static_cast<float>(p), static_cast<float>(1.0 / (1.0 - p)),
                                    static_cast<uint64_t>(h[5])};
  if (fastattn::launch_ffn_dropout(params, dtype, nullptr) != cudaSuccess) return 2;
  for (size_t i = 0; i < values.size(); ++i) values[i] = fastattn::to_float(destination[i]);
  std::fwrite(values.data(), 4, values.size(), out);
  return 0;
}

int main(int argc, char** argv) {
  if (argc != 3) return 1;
  FILE* in = std::fopen(argv[1], "rb");
  FILE* out = std::fopen(argv[2], "wb");
  long long h[6];
  double p;
  if (in == nullptr || out == nullptr || std::fread(h, 8, 6, in) != 6 ||
      std::fread(&p, 8, 1, in) != 1) return 1;
  int status = 1;
  switch (h[0]) {
    case 0: status = run<float>(in, out, h, p, fastattn::ElementType::kFloat32); break;
    case 1: status = run<__half>(in, out, h, p, fastattn::ElementType::kFloat16); break;
    case 2: status = run<__nv_bfloat16>(in, out, h, p, fastattn::ElementType::kBFloat16); break;
  }
  std::fclose(out);
  return status;
}
"""
DTYPE_CODE = {torch.float32: 0, torch.float16: 1, torch.bfloat16: 2}
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
    source, target = tmp_path / "in.bin", tmp_path / "out.bin"
    source.write_bytes(struct.pack("<6q", DTYPE_CODE[dtype], rows, cols, stride, int(in_place), SEED)
                       + struct.pack("<d", dropout_p)
                       + torch.nn.functional.pad(x.float(), (0, stride - cols)).numpy().tobytes())
    result = subprocess.run([str(driver), str(source), str(target)], capture_output=True, text=True)
    assert result.returncode == 0, f"driver failed ({result.returncode}): {result.stderr}"
    out = torch.frombuffer(bytearray(target.read_bytes()), dtype=torch.float32)
    out = out.view(rows, stride)[:, :cols].to(dtype)
    keep = reference.dropout_keep_mask(SEED, (rows, cols), dropout_p)
    expected = (x.float() * keep * (1.0 / (1.0 - dropout_p))).to(dtype)
    assert torch.equal(out, expected)
