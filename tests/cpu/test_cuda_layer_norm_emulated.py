"""csrc/layer_norm_residual.cu, kernels and launchers as nvcc builds them, run on the host under
tests/cuda_host_emulator.h, forward and backward against fastattn.reference under the numerics
rule: with and without the residual, the fused dropout (its keep mask fastattn.reference's, drawn
again by the backward), a gradient flowing into h from outside (pre-LN blocks), the vector and the
scalar path (odd widths, padded row strides), the row stage in dynamic shared memory, and the
weight and bias gradients summed over the launcher's row chunks."""

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

// IN: int64 dtype, rows, n_cols, row stride, has_residual, has_dh_out, has_dropout, seed; float64
// eps, dropout p; then float32 [rows, stride] x, residual, dy, dh_out and [n_cols] weight, bias.
// OUT: float32 y, h, dh, dx [rows, stride], mean, rstd [rows], dweight, dbias [n_cols].
template <typename T>
int run(FILE* in, FILE* out, const long long* h, const double* f, fastattn::ElementType dtype) {
  const long long rows = h[1], cols = h[2], stride = h[3];
  std::vector<float> x(rows * stride), res(x), dy(x), dh_out(x), w(cols), b(cols);
  for (auto* v : {&x, &res, &dy, &dh_out, &w, &b}) {
    if (std::fread(v->data(), 4, v->size(), in) != v->size()) return 1;
  }
  auto typed = [](const std::vector<float>& v) {
    std::vector<T> t(v.size());
    for (size_t i = 0; i < v.size(); ++i) t[i] = fastattn::from_float<T>(v[i]);
    return t;
  };
  std::vector<T> tx = typed(x), tr = typed(res), tdy = typed(dy), tdo = typed(dh_out);
  std::vector<T> tw = typed(w), tb = typed(b);
  const T nan = fastattn::from_float<T>(NAN);
  std::vector<T> ty(rows * stride, nan), th(ty), tdh(ty), tdx(ty);
  std::vector<float> mean(rows, NAN), rstd(rows, NAN);
  const bool dropout = h[6] != 0;
  const float keep_scale = static_cast<float>(1.0 / (1.0 - f[1]));

  fastattn::LayerNormResidualFwdParams fp{};
  fp.x = tx.data();
  fp.residual = h[4] ? tr.data() : nullptr;
  fp.weight = tw.data();
  fp.bias = tb.data();
  fp.y = ty.data();
  fp.h = th.data();
  fp.mean = mean.data();
  fp.rstd = rstd.data();
  fp.rows = rows;
  fp.n_cols = static_cast<int>(cols);
  fp.stride_x = fp.stride_residual = fp.stride_y = fp.stride_h = stride;
  fp.eps = static_cast<float>(f[0]);
  fp.has_dropout = dropout;
  fp.dropout_p = static_cast<float>(f[1]);
  fp.dropout_scale = keep_scale;
  fp.seed = static_cast<uint64_t>(h[7]);
  if (fastattn::launch_layer_norm_residual_fwd(fp, dtype, nullptr) != cudaSuccess) return 2;

  const int chunks = fastattn::layer_norm_residual_bwd_chunks(rows, static_cast<int>(cols));
  std::vector<float> dw_partial(chunks * cols, NAN), db_partial(chunks * cols, NAN);
  fastattn::LayerNormResidualBwdParams bp{};
  bp.dy = tdy.data();
  bp.dh_out = h[5] ? tdo.data() : nullptr;
  bp.h = th.data();
  bp.weight = tw.data();
  bp.mean = mean.data();
  bp.rstd = rstd.data();
  bp.dh = tdh.data();
  bp.dx = dropout ? tdx.data() : nullptr;
  bp.dweight_partial = dw_partial.data();
  bp.dbias_partial = db_partial.data();
  bp.chunks = chunks;
  bp.rows = rows;
  bp.n_cols = static_cast<int>(cols);
  bp.stride_dy = bp.stride_dh_out = bp.stride_h = bp.stride_dh = bp.stride_dx = stride;
  bp.has_dropout = dropout;
  bp.dropout_p = fp.dropout_p;
  bp.dropout_scale = keep_scale;
  bp.seed = fp.seed;
  const char* failed = nullptr;
  if (fastattn::launch_layer_norm_residual_bwd(bp, dtype, nullptr, &failed) != cudaSuccess) return 3;

  for (const auto* values : {&ty, &th, &tdh, &tdx}) {
    std::vector<float> v(values->size());
    for (size_t i = 0; i < v.size(); ++i) v[i] = fastattn::to_float((*values)[i]);
    std::fwrite(v.data(), 4, v.size(), out);
  }
  std::fwrite(mean.data(), 4, rows, out);
  std::fwrite(rstd.data(), 4, rows, out);
  std::vector<float> dw(cols, 0.0f), db(cols, 0.0f);
  for (int c = 0; c < chunks; ++c) {
    for (long long j = 0; j < cols; ++j) {
      dw[j] += dw_partial[c * cols + j];
      db[j] += db_partial[c * cols + j];
    }
  }
  std::fwrite(dw.data(), 4, cols, out);
  std::fwrite(db.data(), 4, cols, out);
  return 0;
}

int main(int argc, char** argv) {
  if (argc != 3) return 1;
  FILE* in = std::fopen(argv[1], "rb");
  FILE* out = std::fopen(argv[2], "wb");
  long long h[8];
  double f[2];
  if (in == nullptr || out == nullptr || std::fread(h, 8, 8, in) != 8 ||
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
SEED, EPS = 77, 1e-5


@pytest.fixture(scope="module")
def driver(tmp_path_factory):
    return build_emulated_driver(tmp_path_factory, "layer_norm_residual",
                                 "layer_norm_residual.cu", MAIN)


def run_emulated(driver, tmp_path, tensors, stride, residual, dh_out, dropout_p):
    """(y, h, dh, dx, mean, rstd, dweight, dbias) of the emulated kernels."""
    x = tensors["x"]
    rows, cols = x.shape

    def padded(t):
        return torch.nn.functional.pad(t.float(), (0, stride - cols)).numpy().tobytes()

    header = struct.pack("<8q", DTYPE_CODE[x.dtype], rows, cols, stride, int(residual),
                         int(dh_out), int(dropout_p > 0), SEED)
    payload = [header, struct.pack("<2d", EPS, dropout_p)]
    payload += [padded(tensors[name]) for name in ("x", "residual", "dy", "dh_out")]
    payload += [tensors[name].float().numpy().tobytes() for name in ("weight", "bias")]
    source, target = tmp_path / "in.bin", tmp_path / "out.bin"
    source.write_bytes(b"".join(payload))
    result = subprocess.run([str(driver), str(source), str(target)], capture_output=True, text=True)
    assert result.returncode == 0, f"driver failed ({result.returncode}): {result.stderr}"
    values = torch.frombuffer(bytearray(target.read_bytes()), dtype=torch.float32)
    parts = values.split([rows * stride] * 4 + [rows] * 2 + [cols] * 2)
    matrices = [p.view(rows, stride)[:, :cols].to(x.dtype) for p in parts[:4]]
    return (*matrices, *parts[4:])


# (dtype, rows, cols, row stride, residual, dh_out, dropout p)
CASES = [
    (torch.float16, 37, 64, 64, True, False, 0.0),
    (torch.bfloat16, 20, 768, 776, True, True, 0.1),
    (torch.float32, 9, 1023, 1023, False, False, 0.0),
    (torch.float32, 33, 256, 256, True, True, 0.3),
    (torch.float16, 5, 4104, 4104, False, True, 0.2),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{str(c[0])[6:]}-{c[1]}x{c[2]}s{c[3]}"
                         f"{'-res' if c[4] else ''}{'-dh' if c[5] else ''}{f'-p{c[6]}' if c[6] else ''}")
def test_emulated_layer_norm_matches_reference(driver, tmp_path, case):
    dtype, rows, cols, stride, residual, dh_out, dropout_p = case
    generator = torch.Generator().manual_seed(rows + cols)

    def draw(*shape, scale=1.0, shift=0.0):
        return (scale * torch.randn(*shape, generator=generator) + shift).to(dtype)

    tensors = {"x": draw(rows, cols, scale=2.0, shift=0.5), "residual": draw(rows, cols),
               "dy": draw(rows, cols), "dh_out": draw(rows, cols),
               "weight": draw(cols, scale=0.5, shift=1.0), "bias": draw(cols)}
    y, h, dh, dx, mean, rstd, dweight, dbias = run_emulated(driver, tmp_path, tensors, stride,
                                                            residual, dh_out, dropout_p)
    keep = (reference.dropout_keep_mask(SEED, (rows, cols), dropout_p) if dropout_p else None)
    names = ["x", "residual", "weight", "bias"] if residual else ["x", "weight", "bias"]

    def forward(inputs, upcast):
        return reference.layer_norm_residual(
            inputs["x"], inputs.get("residual"), inputs["weight"], inputs["bias"], EPS,
            keep_mask=keep, dropout_p=dropout_p, upcast=upcast)

    ref_in = {n: tensors[n].double().requires_grad_() for n in names}
    eager_in = {n: tensors[n].clone().requires_grad_() for n in names}
    (ref_y, ref_h), (eager_y, eager_h) = forward(ref_in, True), forward(eager_in, False)
    assert_numerics("y", y, ref_y, eager_y)
    assert_numerics("h", h, ref_h, eager_h)
    assert torch.isfinite(mean).all() and torch.isfinite(rstd).all()

    def grads(y_, h_, inputs, cast):
        outputs, upstream = [y_], [cast(tensors["dy"])]
        if dh_out:
            outputs.append(h_)
            upstream.append(cast(tensors["dh_out"]))
        return dict(zip(names, torch.autograd.grad(outputs, [inputs[n] for n in names], upstream)))

    ref_g = grads(ref_y, ref_h, ref_in, lambda t: t.double())
    eager_g = grads(eager_y, eager_h, eager_in, lambda t: t)
    got = {"x": dx if dropout_p else dh, "weight": dweight.to(dtype), "bias": dbias.to(dtype)}
    if residual:
        got["residual"] = dh
    for name in names:
        assert_grad_numerics(f"d{name}", got[name], ref_g[name], eager_g[name])
