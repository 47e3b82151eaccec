"""csrc/layer_norm_residual.cu, kernels and launchers as nvcc builds them, run on the host under
tests/cuda_host_emulator.h, forward and backward against fastattn.reference under the numerics
rule: with and without the residual, the fused dropout (its keep mask fastattn.reference's, drawn
again by the backward), a gradient flowing into h from outside (pre-LN blocks), the vector and the
scalar path (odd widths, padded row strides), the row stage in dynamic shared memory, and the
weight and bias gradients summed over the launcher's row chunks."""

import pytest
import torch

from fastattn import reference
from host_cxx import DTYPE_CODE, build_emulated_driver, padded_rows, run_emulated, unpadded_rows
from numerics import assert_grad_numerics, assert_numerics

MAIN = r"""
// IN: int64 dtype, rows, n_cols, row stride, has_residual, has_dh_out, has_dropout, seed; float64
// eps, dropout p; then float32 [rows, stride] x, residual, dy, dh_out and [n_cols] weight, bias.
// OUT: float32 y, h, dh, dx [rows, stride], mean, rstd [rows], dweight, dbias [n_cols].
int main(int argc, char** argv) {
  using namespace emulated_driver;
  return emulated_driver::main<8, 2>(argc, argv, [](auto element, fastattn::ElementType dtype,
                                                    FILE* in, FILE* out, const long long* h,
                                                    const double* f) {
    using T = decltype(element);
    const long long rows = h[1], cols = h[2], stride = h[3];
    std::vector<float> x(rows * stride), res(x), dy(x), dh_out(x), w(cols), b(cols);
    for (auto* v : {&x, &res, &dy, &dh_out, &w, &b}) {
      if (!read(in, *v)) return 1;
    }
    std::vector<T> tx = typed<T>(x), tr = typed<T>(res), tdy = typed<T>(dy);
    std::vector<T> tdo = typed<T>(dh_out), tw = typed<T>(w), tb = typed<T>(b);
    std::vector<T> ty = unwritten<T>(rows * stride), th(ty), tdh(ty), tdx(ty);
    std::vector<float> mean = unwritten<float>(rows), rstd = unwritten<float>(rows);
    const bool dropout = h[6] != 0;

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
    fp.dropout_scale = static_cast<float>(1.0 / (1.0 - f[1]));
    fp.seed = static_cast<uint64_t>(h[7]);
    if (fastattn::launch_layer_norm_residual_fwd(fp, dtype, nullptr) != cudaSuccess) return 2;

    const int chunks = fastattn::layer_norm_residual_bwd_chunks(rows, static_cast<int>(cols));
    std::vector<float> dw_partial = unwritten<float>(chunks * cols), db_partial(dw_partial);
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
    bp.dropout_scale = fp.dropout_scale;
    bp.seed = fp.seed;
    const char* failed = nullptr;
    if (fastattn::launch_layer_norm_residual_bwd(bp, dtype, nullptr, &failed) != cudaSuccess) {
      return 3;
    }
    std::vector<float> dw(cols, 0.0f), db(cols, 0.0f);
    for (int c = 0; c < chunks; ++c) {
      for (long long j = 0; j < cols; ++j) {
        dw[j] += dw_partial[c * cols + j];
        db[j] += db_partial[c * cols + j];
      }
    }
    for (const auto* values : {&ty, &th, &tdh, &tdx}) write(out, *values);
    for (const auto* values : {&mean, &rstd, &dw, &db}) write(out, *values);
    return 0;
  });
}
"""
SEED, EPS = 77, 1e-5


@pytest.fixture(scope="module")
def driver(tmp_path_factory):
    return build_emulated_driver(tmp_path_factory, "layer_norm_residual",
                                 "layer_norm_residual.cu", MAIN)


def run_layer_norm(driver, tmp_path, tensors, stride, residual, dh_out, dropout_p):
    """(y, h, dh, dx, mean, rstd, dweight, dbias) of the emulated kernels."""
    x = tensors["x"]
    rows, cols = x.shape
    ints = (DTYPE_CODE[x.dtype], rows, cols, stride, int(residual), int(dh_out),
            int(dropout_p > 0), SEED)
    arrays = [padded_rows(tensors[name], stride) for name in ("x", "residual", "dy", "dh_out")]
    values = run_emulated(driver, tmp_path, ints, (EPS, dropout_p),
                          arrays + [tensors["weight"], tensors["bias"]])
    parts = values.split([rows * stride] * 4 + [rows] * 2 + [cols] * 2)
    matrices = [unpadded_rows(p, rows, cols, stride, x.dtype) for p in parts[:4]]
    return (*matrices, *parts[4:])


# (dtype, rows, cols, row stride, residual, dh_out, dropout p)
CASES = [
    (torch.float16, 37, 64, 64, True, False, 0.0),
    (torch.bfloat16, 20, 768, 776, True, True, 0.1),
    (torch.float32, 9, 1023, 1023, False, False, 0.0),
    (torch.float32, 33, 256, 256, True, True, 0.3),
    (torch.float16, 5, 4104, 4104, False, True, 0.2),
]


def _case_id(case):
    dtype, rows, cols, stride, residual, dh_out, p = case
    return (f"{str(dtype)[6:]}-{rows}x{cols}s{stride}{'-res' if residual else ''}"
            f"{'-dh' if dh_out else ''}{f'-p{p}' if p else ''}")


@pytest.mark.parametrize("case", CASES, ids=_case_id)
def test_emulated_layer_norm_matches_reference(driver, tmp_path, case):
    dtype, rows, cols, stride, residual, dh_out, dropout_p = case
    generator = torch.Generator().manual_seed(rows + cols)

    def draw(*shape, scale=1.0, shift=0.0):
        return (scale * torch.randn(*shape, generator=generator) + shift).to(dtype)

    tensors = {"x": draw(rows, cols, scale=2.0, shift=0.5), "residual": draw(rows, cols),
               "dy": draw(rows, cols), "dh_out": draw(rows, cols),
               "weight": draw(cols, scale=0.5, shift=1.0), "bias": draw(cols)}
    y, h, dh, dx, mean, rstd, dweight, dbias = run_layer_norm(
        driver, tmp_path, tensors, stride, residual, dh_out, dropout_p)
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
