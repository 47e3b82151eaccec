"""csrc/masked_softmax.cu, kernels and launchers as nvcc builds them, run on the host under
tests/cuda_host_emulator.h, forward and backward against fastattn.reference under the numerics
rule: the warp path (rows of up to 2048 keys, specialised per length) and the block path beyond,
vector and scalar loads (padded row strides), key padding with empty rows, bottom-right causal with
Sq != Sk, varlen rows (cu_seqlens: the cuda backend's packed attention), and the attention dropout
fused in (the keep mask bit for bit
fastattn.reference.attention_dropout_keep_mask, the backward regenerating it). The gpu tier checks
the same kernels on a chip; here a wrong row, mask or Philox counter shows without one."""

import pytest
import torch

from fastattn import reference
from host_cxx import DTYPE_CODE, build_emulated_driver, padded_rows, run_emulated, unpadded_rows
from numerics import assert_grad_numerics, assert_numerics

MAIN = r"""
// IN: int64 dtype, B, H, Sq, Sk, row stride, causal, has_mask, seed, varlen; float64 scale,
// dropout p; then float32 scores and grad_out [B * H * Sq, stride], uint8 mask [B, Sk] (with
// has_mask), int32 cu_seqlens_q and cu_seqlens_k [B + 1] (with varlen: Sq, Sk are the maxima).
// OUT: float32 out, dropped (forward), grad_in, dropped (backward), each [rows, stride].
int main(int argc, char** argv) {
  using namespace emulated_driver;
  return emulated_driver::main<10, 2>(argc, argv, [](auto element, fastattn::ElementType dtype,
                                                    FILE* in, FILE* out, const long long* h,
                                                    const double* f) {
    using T = decltype(element);
    const long long batch = h[1], heads = h[2], queries = h[3], keys = h[4], stride = h[5];
    const long long rows = batch * heads * queries;
    std::vector<float> scores(rows * stride), grad(rows * stride);
    std::vector<uint8_t> mask(h[7] ? batch * keys : 0);
    std::vector<int32_t> cu_q(h[9] ? batch + 1 : 0), cu_k(cu_q.size());
    if (!read(in, scores) || !read(in, grad) || !read(in, mask) || !read(in, cu_q) ||
        !read(in, cu_k)) {
      return 1;
    }
    std::vector<T> ts = typed<T>(scores), tg = typed<T>(grad);
    std::vector<T> ty = unwritten<T>(rows * stride), tz(ty), tdx(ty), tz2(ty);
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
    fp.shape = fastattn::SoftmaxRowShape{heads * queries, queries, keys, h[6] != 0,
                                         h[9] ? cu_q.data() : nullptr,
                                         h[9] ? cu_k.data() : nullptr};
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
    for (const auto* values : {&ty, &tz, &tdx, &tz2}) write(out, *values);
    return 0;
  });
}
"""
SEED = 1234


@pytest.fixture(scope="module")
def driver(tmp_path_factory):
    return build_emulated_driver(tmp_path_factory, "masked_softmax", "masked_softmax.cu", MAIN)


def _cu_seqlens(lengths):
    return torch.tensor([0] + torch.tensor(lengths).cumsum(0).tolist(), dtype=torch.int32)


def run_masked_softmax(driver, tmp_path, scores, grad_out, mask, causal, scale, dropout_p,
                       stride, lengths):
    """(out, dropped, grad_in, dropped again by the backward), each shaped like scores.
    lengths: None, or (query, key) lengths per batch row (varlen rows padded to Sq, Sk)."""
    batch, heads, queries, keys = scores.shape
    rows = batch * heads * queries
    ints = (DTYPE_CODE[scores.dtype], batch, heads, queries, keys, stride, int(causal),
            int(mask is not None), SEED, int(lengths is not None))
    arrays = [padded_rows(t.reshape(rows, keys), stride) for t in (scores, grad_out)]
    if mask is not None:
        arrays.append(mask)
    if lengths is not None:
        arrays += [_cu_seqlens([q for q, _ in lengths]), _cu_seqlens([k for _, k in lengths])]
    values = run_emulated(driver, tmp_path, ints, (scale, dropout_p), arrays)
    return [unpadded_rows(part, rows, keys, stride, scores.dtype).reshape(scores.shape)
            for part in values.split(rows * stride)]


def _mask(batch, keys, generator):
    mask = torch.rand(batch, keys, generator=generator) > 0.25  # holes
    mask[0, : keys // 2] = False  # left padding
    mask[-1] = False  # a row that sees no key
    return mask


def reference_softmax(scores, mask, causal, scale, upcast, lengths):
    """fastattn.reference.masked_softmax, per sequence for varlen rows (zeros past each one)."""
    if lengths is None:
        return reference.masked_softmax(scores, key_padding_mask=mask, causal=causal, scale=scale,
                                        upcast=upcast)
    out = torch.zeros(scores.shape, dtype=torch.float64 if upcast else scores.dtype)
    for b, (len_q, len_k) in enumerate(lengths):
        out[b, :, :len_q, :len_k] = reference.masked_softmax(
            scores[b:b + 1, :, :len_q, :len_k], causal=causal, scale=scale, upcast=upcast)[0]
    return out


# (dtype, B, H, Sq, Sk, row stride, causal, masked, dropout p, varlen (query, key) lengths)
CASES = [
    (torch.float16, 2, 2, 3, 1, 1, True, False, 0.0, None),
    (torch.bfloat16, 2, 1, 5, 17, 17, False, True, 0.0, None),
    (torch.float32, 1, 2, 4, 300, 300, True, True, 0.0, None),
    (torch.float16, 2, 1, 3, 256, 264, True, False, 0.3, None),
    (torch.bfloat16, 3, 1, 2, 77, 80, False, True, 0.5, None),
    (torch.float32, 1, 1, 2, 2049, 2049, True, False, 0.0, None),      # the block path
    (torch.float16, 2, 1, 2, 2100, 2104, False, True, 0.2, None),      # block path, dropout
    (torch.float32, 3, 2, 9, 12, 12, True, False, 0.0, [(9, 12), (4, 4), (0, 3)]),  # varlen
    (torch.bfloat16, 2, 2, 7, 40, 40, False, False, 0.25, [(7, 40), (3, 11)]),
]


def _case_id(case):
    dtype, batch, heads, queries, keys, stride, causal, masked, p, lengths = case
    return (f"{str(dtype)[6:]}-{batch}x{heads}x{queries}x{keys}s{stride}"
            f"{'-causal' if causal else ''}{'-mask' if masked else ''}{f'-p{p}' if p else ''}"
            f"{'-varlen' if lengths else ''}")


@pytest.mark.parametrize("case", CASES, ids=[_case_id(c) for c in CASES])
def test_emulated_masked_softmax_matches_reference(driver, tmp_path, case):
    dtype, batch, heads, queries, keys, stride, causal, masked, dropout_p, lengths = case
    generator = torch.Generator().manual_seed(keys * 3 + queries)
    scores = (4 * torch.randn(batch, heads, queries, keys, generator=generator)).to(dtype)
    grad_out = torch.randn(batch, heads, queries, keys, generator=generator).to(dtype)
    mask = _mask(batch, keys, generator) if masked else None
    scale = 0.7
    out, dropped, grad_in, dropped_again = run_masked_softmax(
        driver, tmp_path, scores, grad_out, mask, causal, scale, dropout_p, stride, lengths)
    keep = reference.attention_dropout_keep_mask(SEED, batch, heads, queries, keys, dropout_p)
    drop_scale = 1.0 / (1.0 - dropout_p)

    def forward(s, upcast):
        y = reference_softmax(s, mask, causal, scale, upcast, lengths)
        return y, y * keep.to(y.dtype) * drop_scale

    ref_scores = scores.double().requires_grad_()
    eager_scores = scores.clone().requires_grad_()
    ref, ref_dropped = forward(ref_scores, True)
    eager, eager_dropped = forward(eager_scores, False)
    assert_numerics("out", out, ref, eager)
    # The gradient arrives at the second GEMM's operand: dropped under dropout, else out itself.
    ref_grad, = torch.autograd.grad(ref_dropped if dropout_p else ref, ref_scores,
                                    grad_out.double())
    eager_grad, = torch.autograd.grad(eager_dropped if dropout_p else eager, eager_scores,
                                      grad_out)
    assert_grad_numerics("grad_in", grad_in, ref_grad, eager_grad)
    if dropout_p:
        for name, got in (("dropped (forward)", dropped), ("dropped (backward)", dropped_again)):
            assert_numerics(name, got, ref_dropped, eager_dropped)
            assert torch.equal(got != 0, (out != 0) & keep), f"{name}: not the reference keep mask"
