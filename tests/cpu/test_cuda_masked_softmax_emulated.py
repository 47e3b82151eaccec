"""csrc/masked_softmax.cu, kernels and launchers as nvcc builds them, run on the host under
tests/cuda_host_emulator.h, forward and backward against fastattn.reference under the numerics
rule: the warp path (rows of up to 2048 keys, specialised per length) and the block path beyond,
vector and scalar loads (padded row strides), key padding with empty rows, bottom-right causal with
Sq != Sk, and the attention dropout fused in (the keep mask bit for bit
fastattn.reference.attention_dropout_keep_mask, the backward regenerating it). The gpu tier checks
the same kernels on a chip; here a wrong row, mask or Philox counter shows without one."""

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

// IN: int64 dtype, B, H, Sq, Sk, row stride, causal, has_mask, seed; float64 scale, dropout p;
// then float32 scores and grad_out [B * H * Sq, stride], uint8 mask [B, Sk] (with has_mask).
// OUT: float32 out, dropped (forward), grad_in, dropped (backward), each [rows, stride].
template <typename T>
int run(FILE* in, FILE* out, const long long* h, const double* f, fastattn::ElementType dtype) {
  const long long batch = h[1], heads = h[2], queries = h[3], keys = h[4], stride = h[5];
  const long long rows = batch * heads * queries;
  std::vector<float> scores(rows * stride), grad(rows * stride);
  std::vector<uint8_t> mask(h[7] ? batch * keys : 0);
  if (std::fread(scores.data(), 4, scores.size(), in) != scores.size() ||
      std::fread(grad.data(), 4, grad.size(), in) != grad.size() ||
      std::fread(mask.data(), 1, mask.size(), in) != mask.size()) return 1;
  auto typed = [](const std::vector<float>& v) {
    std::vector<T> t(v.size());
    for (size_t i = 0; i < v.size(); ++i) t[i] = fastattn::from_float<T>(v[i]);
    return t;
  };
  std::vector<T> ts = typed(scores), tg = typed(grad);
  const T nan = fastattn::from_float<T>(NAN);
  std::vector<T> ty(rows * stride, nan), tz(ty), tdx(ty), tz2(ty);
  const bool dropout = f[1] > 0.0;
  fastattn::SoftmaxDropout d{};
  if (dropout) {
    d.stride_dropped = stride;
    d.seed = static_cast<uint64_t>(h[8]);
    d.p = static_cast<float>(f[1]);
    d.scale = static_cast<float>(1.0 / (1.0 - f[1]));
  }
  fastattn::MaskedSoftmaxFwdParams fp{};
  fp.scores = ts.data();
  fp.key_padding_mask = h[7] ? mask.data() : nullptr;
  fp.out = ty.data();
  fp.rows = rows;
  fp.shape = fastattn::SoftmaxRowShape{heads * queries, queries, keys, h[6] != 0, nullptr, nullptr};
  fp.stride_scores = fp.stride_out = stride;
  fp.stride_mask = keys;
  fp.scale = static_cast<float>(f[0]);
  fp.dropout = d;
  fp.dropout.dropped = dropout ? tz.data() : nullptr;
  if (fastattn::launch_masked_softmax_fwd(fp, dtype, nullptr) != cudaSuccess) return 2;
  fastattn::MaskedSoftmaxBwdParams bp{};
  bp.grad_out = tg.data();
  bp.out = ty.data();
  bp.grad_in = tdx.data();
  bp.rows = rows;
  bp.n_cols = keys;
  bp.stride_grad_out = bp.stride_out = bp.stride_grad_in = stride;
  bp.scale = fp.scale;
  bp.dropout = d;
  bp.dropout.dropped = dropout ? tz2.data() : nullptr;
  if (fastattn::launch_masked_softmax_bwd(bp, dtype, nullptr) != cudaSuccess) return 3;
  for (const auto* values : {&ty, &tz, &tdx, &tz2}) {
    std::vector<float> v(values->size());
    for (size_t i = 0; i < v.size(); ++i) v[i] = fastattn::to_float((*values)[i]);
    std::fwrite(v.data(), 4, v.size(), out);
  }
  return 0;
}

int main(int argc, char** argv) {
  if (argc != 3) return 1;
  FILE* in = std::fopen(argv[1], "rb");
  FILE* out = std::fopen(argv[2], "wb");
  long long h[9];
  double f[2];
  if (in == nullptr || out == nullptr || std::fread(h, 8, 9, in) != 9 ||
      std::fread(f, 8, 2, in) != 2) return 1;
  int status = 1;
  switch (h[0]) {
    case 0: status = run<float>(in, out, h, f, fastattn::ElementType::kFloat32); break;
    case 1: status = run<__half>(in, out, h, f, fastattn::ElementType::kFloat16); break;
    case 2: status = run<__nv_bfloat16>(in, out, h, f, fastattn::ElementType::kBFloat16); break;
  }
  std::fclose(out);
  return status;
}
"""
DTYPE_CODE = {torch.float32: 0, torch.float16: 1, torch.bfloat16: 2}
SEED = 1234


@pytest.fixture(scope="module")
def driver(tmp_path_factory):
    return build_emulated_driver(tmp_path_factory, "masked_softmax", "masked_softmax.cu", MAIN)


def run_emulated(driver, tmp_path, scores, grad_out, mask, causal, scale, dropout_p, stride):
    """(out, dropped, grad_in, dropped again by the backward), each shaped like scores."""
    batch, heads, queries, keys = scores.shape
    rows = batch * heads * queries

    def padded(t):
        return torch.nn.functional.pad(t.float().reshape(rows, keys), (0, stride - keys))

    header = struct.pack("<9q", DTYPE_CODE[scores.dtype], batch, heads, queries, keys, stride,
                         int(causal), int(mask is not None), SEED)
    payload = [header, struct.pack("<2d", scale, dropout_p), padded(scores).numpy().tobytes(),
               padded(grad_out).numpy().tobytes()]
    if mask is not None:
        payload.append(mask.to(torch.uint8).numpy().tobytes())
    source, target = tmp_path / "in.bin", tmp_path / "out.bin"
    source.write_bytes(b"".join(payload))
    result = subprocess.run([str(driver), str(source), str(target)], capture_output=True, text=True)
    assert result.returncode == 0, f"driver failed ({result.returncode}): {result.stderr}"
    values = torch.frombuffer(bytearray(target.read_bytes()), dtype=torch.float32)
    return [part.view(rows, stride)[:, :keys].reshape(scores.shape).to(scores.dtype)
            for part in values.split(rows * stride)]


def _mask(batch, keys, generator):
    mask = torch.rand(batch, keys, generator=generator) > 0.25  # holes
    mask[0, : keys // 2] = False  # left padding
    mask[-1] = False  # a row that sees no key
    return mask


# (dtype, B, H, Sq, Sk, row stride, causal, masked, dropout p)
CASES = [
    (torch.float16, 2, 2, 3, 1, 1, True, False, 0.0),
    (torch.bfloat16, 2, 1, 5, 17, 17, False, True, 0.0),
    (torch.float32, 1, 2, 4, 300, 300, True, True, 0.0),
    (torch.float16, 2, 1, 3, 256, 264, True, False, 0.3),
    (torch.bfloat16, 3, 1, 2, 77, 80, False, True, 0.5),
    (torch.float32, 1, 1, 2, 2049, 2049, True, False, 0.0),      # the block path
    (torch.float16, 2, 1, 2, 2100, 2104, False, True, 0.2),      # block path, dropout
]


def _case_id(case):
    dtype, batch, heads, queries, keys, stride, causal, masked, p = case
    return (f"{str(dtype)[6:]}-{batch}x{heads}x{queries}x{keys}s{stride}"
            f"{'-causal' if causal else ''}{'-mask' if masked else ''}{f'-p{p}' if p else ''}")


@pytest.mark.parametrize("case", CASES, ids=[_case_id(c) for c in CASES])
def test_emulated_masked_softmax_matches_reference(driver, tmp_path, case):
    dtype, batch, heads, queries, keys, stride, causal, masked, dropout_p = case
    generator = torch.Generator().manual_seed(keys * 3 + queries)
    scores = (4 * torch.randn(batch, heads, queries, keys, generator=generator)).to(dtype)
    grad_out = torch.randn(batch, heads, queries, keys, generator=generator).to(dtype)
    mask = _mask(batch, keys, generator) if masked else None
    scale = 0.7
    out, dropped, grad_in, dropped_again = run_emulated(driver, tmp_path, scores, grad_out, mask,
                                                        causal, scale, dropout_p, stride)
    keep = reference.attention_dropout_keep_mask(SEED, batch, heads, queries, keys, dropout_p)
    drop_scale = 1.0 / (1.0 - dropout_p)

    def forward(s, upcast):
        y = reference.masked_softmax(s, key_padding_mask=mask, causal=causal, scale=scale,
                                     upcast=upcast)
        return y, y * keep.to(y.dtype) * drop_scale

    ref_scores = scores.double().requires_grad_()
    eager_scores = scores.clone().requires_grad_()
    (ref, ref_dropped), (eager, eager_dropped) = forward(ref_scores, True), forward(eager_scores, False)
    assert_numerics("out", out, ref, eager)
    # The gradient arrives at the second GEMM's operand: dropped under dropout, else out itself.
    ref_grad, = torch.autograd.grad(ref_dropped if dropout_p else ref, ref_scores, grad_out.double())
    eager_grad, = torch.autograd.grad(eager_dropped if dropout_p else eager, eager_scores, grad_out)
    assert_grad_numerics("grad_in", grad_in, ref_grad, eager_grad)
    if dropout_p:
        for name, got in (("dropped (forward)", dropped), ("dropped (backward)", dropped_again)):
            assert_numerics(name, got, ref_dropped, eager_dropped)
            assert torch.equal(got != 0, (out != 0) & keep), f"{name}: not the reference keep mask"
