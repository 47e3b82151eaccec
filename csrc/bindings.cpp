// fastattn._C: the torch-facing side of the CUDA kernels, and the only file that includes torch.
//
// Each op section checks its arguments and the output buffers the Python host side allocated (the
// front has already validated user input; these checks keep any caller from reaching a kernel with
// bad pointers), picks the element type and launches on the current stream of the tensors' device.
// The kernels themselves live in csrc/*.cu behind raw-pointer launch_* functions.

#include <torch/extension.h>

#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <cuda_runtime.h>
#include <pybind11/stl.h>

#include <atomic>
#include <map>
#include <optional>
#include <string>
#include <tuple>

#include "bias_gelu.h"
#include "decode_attention.h"
#include "ffn_cublaslt.h"
#include "ffn_dropout.h"
#include "layer_norm_residual.h"
#include "masked_softmax.h"

// setup.py passes the SM targets it builds for; a build without it says so.
#ifndef FASTATTN_CUDA_ARCHS
#define FASTATTN_CUDA_ARCHS "unknown"
#endif
// setup.py defines FASTATTN_WITH_CUBLASLT when it found cublasLt.h and the library (and then
// compiles csrc/ffn_cublaslt.cpp); without it the FFN's GEMMs all go through ATen.

namespace {

// ---------------------------------------------------------------------------------------------
// Shared helpers

fastattn::ElementType element_type(const char* op, const char* name, const at::Tensor& t) {
  switch (t.scalar_type()) {
    case at::kFloat: return fastattn::ElementType::kFloat32;
    case at::kHalf: return fastattn::ElementType::kFloat16;
    case at::kBFloat16: return fastattn::ElementType::kBFloat16;
    default:
      TORCH_CHECK_TYPE(false, "fastattn._C.", op, ": ", name,
                       " must be float32, float16 or bfloat16, got ", t.scalar_type());
  }
  return fastattn::ElementType::kFloat32;  // unreachable
}

void check_on_device(const char* op, const char* name, const at::Tensor& t, const at::Device& device) {
  TORCH_CHECK_VALUE(t.is_cuda(), "fastattn._C.", op, ": ", name, " must be a CUDA tensor, got ",
                    t.device());
  TORCH_CHECK_VALUE(t.device() == device, "fastattn._C.", op, ": ", name, " is on ", t.device(),
                    " but the first input is on ", device);
}

// A [rows, n_cols] matrix with unit column stride, of `like`'s dtype.
void check_rows(const char* op, const char* name, const at::Tensor& t, const at::Tensor& like) {
  check_on_device(op, name, t, like.device());
  TORCH_CHECK_TYPE(t.scalar_type() == like.scalar_type(), "fastattn._C.", op, ": ", name,
                   " must have dtype ", like.scalar_type(), ", got ", t.scalar_type());
  TORCH_CHECK_VALUE(t.dim() == 2 && t.size(0) == like.size(0) && t.size(1) == like.size(1),
                    "fastattn._C.", op, ": ", name, " must have shape ", like.sizes(), ", got ",
                    t.sizes());
  TORCH_CHECK_VALUE(t.stride(1) == 1, "fastattn._C.", op, ": ", name,
                    " must have a contiguous last dimension, got strides ", t.strides());
}

// A contiguous [size] vector of `dtype`.
void check_vector(const char* op, const char* name, const at::Tensor& t, const at::Device& device,
                  at::ScalarType dtype, int64_t size) {
  check_on_device(op, name, t, device);
  TORCH_CHECK_TYPE(t.scalar_type() == dtype, "fastattn._C.", op, ": ", name, " must have dtype ",
                   dtype, ", got ", t.scalar_type());
  TORCH_CHECK_VALUE(t.dim() == 1 && t.size(0) == size && t.is_contiguous(), "fastattn._C.", op,
                    ": ", name, " must be a contiguous vector of ", size, " elements, got shape ",
                    t.sizes(), " and strides ", t.strides());
}

void check_launch(cudaError_t err, const char* kernel) {
  TORCH_CHECK(err == cudaSuccess, "fastattn._C: launching ", kernel, " failed: ",
              cudaGetErrorName(err), " (", cudaGetErrorString(err), ")");
}

std::string cuda_version_string() {
  return std::to_string(CUDART_VERSION / 1000) + "." + std::to_string(CUDART_VERSION % 1000 / 10);
}

// ---------------------------------------------------------------------------------------------
// layer_norm_residual: y = LN(dropout(x) + residual)

void check_layer_norm_input(const char* op, const at::Tensor& x) {
  TORCH_CHECK_VALUE(x.is_cuda(), "fastattn._C.", op, ": expects CUDA tensors, got ", x.device());
  element_type(op, "the input", x);
  TORCH_CHECK_VALUE(x.dim() == 2 && x.stride(1) == 1, "fastattn._C.", op,
                    ": expects a 2D [rows, hidden] input with a contiguous last dimension, got shape ",
                    x.sizes(), " and strides ", x.strides());
  TORCH_CHECK_VALUE(x.size(1) >= 1 && x.size(1) <= fastattn::kLayerNormMaxCols, "fastattn._C.", op,
                    ": hidden size must be in [1, ", fastattn::kLayerNormMaxCols, "], got ", x.size(1));
}

// Outputs come from the Python side (fastattn._alloc, which can poison them for tests); h is None
// when it is not to be written.
void layer_norm_residual_fwd(const at::Tensor& x, const std::optional<at::Tensor>& residual,
                             const at::Tensor& weight, const at::Tensor& bias, const at::Tensor& y,
                             const std::optional<at::Tensor>& h, const at::Tensor& mean,
                             const at::Tensor& rstd, double eps, double dropout_p,
                             double dropout_scale, std::optional<int64_t> seed) {
  const char* op = "layer_norm_residual_fwd";
  check_layer_norm_input(op, x);
  const int64_t rows = x.size(0), n_cols = x.size(1);
  if (residual.has_value()) check_rows(op, "residual", *residual, x);
  check_vector(op, "weight", weight, x.device(), x.scalar_type(), n_cols);
  check_vector(op, "bias", bias, x.device(), x.scalar_type(), n_cols);
  check_rows(op, "y", y, x);
  if (h.has_value()) check_rows(op, "h", *h, x);
  check_vector(op, "mean", mean, x.device(), at::kFloat, rows);
  check_vector(op, "rstd", rstd, x.device(), at::kFloat, rows);

  const c10::cuda::CUDAGuard guard(x.device());
  fastattn::LayerNormResidualFwdParams p{};
  p.x = x.data_ptr();
  p.residual = residual.has_value() ? residual->data_ptr() : nullptr;
  p.weight = weight.data_ptr();
  p.bias = bias.data_ptr();
  p.y = y.data_ptr();
  p.h = h.has_value() ? h->data_ptr() : nullptr;
  p.mean = mean.data_ptr<float>();
  p.rstd = rstd.data_ptr<float>();
  p.rows = rows;
  p.n_cols = static_cast<int>(n_cols);
  p.stride_x = x.stride(0);
  p.stride_residual = residual.has_value() ? residual->stride(0) : 0;
  p.stride_y = y.stride(0);
  p.stride_h = h.has_value() ? h->stride(0) : 0;
  p.eps = static_cast<float>(eps);
  p.has_dropout = seed.has_value();
  p.dropout_p = static_cast<float>(dropout_p);
  p.dropout_scale = static_cast<float>(dropout_scale);
  p.seed = static_cast<uint64_t>(seed.value_or(0));
  check_launch(fastattn::launch_layer_norm_residual_fwd(p, element_type(op, "x", x),
                                                        c10::cuda::getCurrentCUDAStream().stream()),
               "layer_norm_residual_fwd_kernel");
}

// Writes dh and (under dropout, seed given) dx into the given buffers; returns (dweight, dbias)
// in weight's dtype, summed from float32 per-chunk partials.
std::tuple<at::Tensor, at::Tensor> layer_norm_residual_bwd(
    const at::Tensor& dy, const std::optional<at::Tensor>& dh_out, const at::Tensor& h,
    const at::Tensor& weight, const at::Tensor& mean, const at::Tensor& rstd, const at::Tensor& dh,
    const std::optional<at::Tensor>& dx, double dropout_p, double dropout_scale,
    std::optional<int64_t> seed) {
  const char* op = "layer_norm_residual_bwd";
  check_layer_norm_input(op, h);
  const int64_t rows = h.size(0), n_cols = h.size(1);
  check_rows(op, "dy", dy, h);
  if (dh_out.has_value()) check_rows(op, "dh_out", *dh_out, h);
  check_vector(op, "weight", weight, h.device(), h.scalar_type(), n_cols);
  check_vector(op, "mean", mean, h.device(), at::kFloat, rows);
  check_vector(op, "rstd", rstd, h.device(), at::kFloat, rows);
  check_rows(op, "dh", dh, h);
  TORCH_CHECK_VALUE(dx.has_value() == seed.has_value(), "fastattn._C.", op,
                    ": dx must be given exactly when seed is (dropout)");
  if (dx.has_value()) check_rows(op, "dx", *dx, h);

  const c10::cuda::CUDAGuard guard(h.device());
  if (rows == 0) return {at::zeros_like(weight), at::zeros_like(weight)};
  const int chunks = fastattn::layer_norm_residual_bwd_chunks(rows, static_cast<int>(n_cols));
  // Every element is written by the kernel, so no zero fill.
  at::Tensor dweight_partial = at::empty({chunks, n_cols}, h.options().dtype(at::kFloat));
  at::Tensor dbias_partial = at::empty({chunks, n_cols}, h.options().dtype(at::kFloat));

  fastattn::LayerNormResidualBwdParams p{};
  p.dy = dy.data_ptr();
  p.dh_out = dh_out.has_value() ? dh_out->data_ptr() : nullptr;
  p.h = h.data_ptr();
  p.weight = weight.data_ptr();
  p.mean = mean.data_ptr<float>();
  p.rstd = rstd.data_ptr<float>();
  p.dh = dh.data_ptr();
  p.dx = dx.has_value() ? dx->data_ptr() : nullptr;
  p.dweight_partial = dweight_partial.data_ptr<float>();
  p.dbias_partial = dbias_partial.data_ptr<float>();
  p.chunks = chunks;
  p.rows = rows;
  p.n_cols = static_cast<int>(n_cols);
  p.stride_dy = dy.stride(0);
  p.stride_dh_out = dh_out.has_value() ? dh_out->stride(0) : 0;
  p.stride_h = h.stride(0);
  p.stride_dh = dh.stride(0);
  p.stride_dx = dx.has_value() ? dx->stride(0) : 0;
  p.has_dropout = seed.has_value();
  p.dropout_p = static_cast<float>(dropout_p);
  p.dropout_scale = static_cast<float>(dropout_scale);
  p.seed = static_cast<uint64_t>(seed.value_or(0));
  const char* failed_kernel = nullptr;
  const cudaError_t err = fastattn::launch_layer_norm_residual_bwd(
      p, element_type(op, "h", h), c10::cuda::getCurrentCUDAStream().stream(), &failed_kernel);
  check_launch(err, failed_kernel != nullptr ? failed_kernel : "layer_norm_residual_bwd");
  return {dweight_partial.sum(0).to(weight.scalar_type()),
          dbias_partial.sum(0).to(weight.scalar_type())};
}

// ---------------------------------------------------------------------------------------------
// masked_softmax and bias_gelu: row-wise ops on [rows, n_cols] matrices with a contiguous last dim

void check_row_input(const char* op, const char* name, const at::Tensor& t) {
  TORCH_CHECK_VALUE(t.is_cuda(), "fastattn._C.", op, ": expects CUDA tensors, got ", t.device());
  element_type(op, name, t);
  TORCH_CHECK_VALUE(t.dim() == 2 && t.stride(1) == 1, "fastattn._C.", op, ": ", name,
                    " must be 2D [rows, n_cols] with a contiguous last dimension, got shape ",
                    t.sizes(), " and strides ", t.strides());
}

// A key padding mask as the kernels read it: 0/1 bytes (torch.bool) and the row stride; nullptr
// for none.
struct MaskBytes {
  const uint8_t* data;
  int64_t row_stride;
};

// Checks an optional key_padding_mask: bool [batch, keys] on `device`, unit stride in its last
// dimension.
MaskBytes key_padding_mask_bytes(const char* op, const std::optional<at::Tensor>& key_padding_mask,
                                 const at::Device& device, int64_t batch, int64_t keys) {
  if (!key_padding_mask.has_value()) return MaskBytes{nullptr, 0};
  const at::Tensor& mask = *key_padding_mask;
  check_on_device(op, "key_padding_mask", mask, device);
  TORCH_CHECK_TYPE(mask.scalar_type() == at::kBool, "fastattn._C.", op,
                   ": key_padding_mask must be bool, got ", mask.scalar_type());
  TORCH_CHECK_VALUE(mask.dim() == 2 && mask.size(0) == batch && mask.size(1) == keys &&
                    mask.stride(1) == 1, "fastattn._C.", op, ": key_padding_mask must be [",
                    batch, ", ", keys, "] with a contiguous last dimension, got shape ",
                    mask.sizes(), " and strides ", mask.strides());
  return MaskBytes{reinterpret_cast<const uint8_t*>(mask.data_ptr<bool>()), mask.stride(0)};
}

// scores: [B * H * Sq, Sk] rows; key_padding_mask: bool [B, Sk] with a contiguous last dim. Checks
// the arguments and fills the params; the caller holds the device guard and launches.
fastattn::MaskedSoftmaxFwdParams masked_softmax_fwd_params(
    const char* op, const at::Tensor& scores, const std::optional<at::Tensor>& key_padding_mask,
    const at::Tensor& out, int64_t rows_per_batch, int64_t queries, bool causal, double scale) {
  check_row_input(op, "scores", scores);
  check_rows(op, "out", out, scores);
  const int64_t rows = scores.size(0), n_cols = scores.size(1);
  TORCH_CHECK_VALUE(queries >= 1 && rows_per_batch >= queries && rows_per_batch % queries == 0 &&
                    rows % rows_per_batch == 0, "fastattn._C.", op, ": rows (", rows,
                    ") must be batches of rows_per_batch (", rows_per_batch,
                    ") rows, a multiple of queries (", queries, ")");
  const MaskBytes mask =
      key_padding_mask_bytes(op, key_padding_mask, scores.device(), rows / rows_per_batch, n_cols);

  fastattn::MaskedSoftmaxFwdParams p{};
  p.scores = scores.data_ptr();
  p.key_padding_mask = mask.data;
  p.out = out.data_ptr();
  p.rows = rows;
  p.shape.n_cols = n_cols;
  p.shape.rows_per_batch = rows_per_batch;
  p.shape.queries = queries;
  p.shape.causal = causal;
  p.stride_scores = scores.stride(0);
  p.stride_mask = mask.row_stride;
  p.stride_out = out.stride(0);
  p.scale = static_cast<float>(scale);
  return p;
}

void launch_masked_softmax_fwd(const char* op, const fastattn::MaskedSoftmaxFwdParams& p,
                               const at::Tensor& scores) {
  const c10::cuda::CUDAGuard guard(scores.device());
  check_launch(fastattn::launch_masked_softmax_fwd(p, element_type(op, "scores", scores),
                                                   c10::cuda::getCurrentCUDAStream().stream()), op);
}

void masked_softmax_fwd(const at::Tensor& scores, const std::optional<at::Tensor>& key_padding_mask,
                        const at::Tensor& out, int64_t rows_per_batch, int64_t queries, bool causal,
                        double scale) {
  const char* op = "masked_softmax_fwd";
  launch_masked_softmax_fwd(op, masked_softmax_fwd_params(op, scores, key_padding_mask, out,
                                                          rows_per_batch, queries, causal, scale),
                            scores);
}

fastattn::MaskedSoftmaxBwdParams masked_softmax_bwd_params(const char* op, const at::Tensor& grad_out,
                                                           const at::Tensor& out,
                                                           const at::Tensor& grad_in, double scale) {
  check_row_input(op, "out", out);
  check_rows(op, "grad_out", grad_out, out);
  check_rows(op, "grad_in", grad_in, out);
  fastattn::MaskedSoftmaxBwdParams p{};
  p.grad_out = grad_out.data_ptr();
  p.out = out.data_ptr();
  p.grad_in = grad_in.data_ptr();
  p.rows = out.size(0);
  p.n_cols = out.size(1);
  p.stride_grad_out = grad_out.stride(0);
  p.stride_out = out.stride(0);
  p.stride_grad_in = grad_in.stride(0);
  p.scale = static_cast<float>(scale);
  return p;
}

void launch_masked_softmax_bwd(const char* op, const fastattn::MaskedSoftmaxBwdParams& p,
                               const at::Tensor& out) {
  const c10::cuda::CUDAGuard guard(out.device());
  check_launch(fastattn::launch_masked_softmax_bwd(p, element_type(op, "out", out),
                                                   c10::cuda::getCurrentCUDAStream().stream()), op);
}

void masked_softmax_bwd(const at::Tensor& grad_out, const at::Tensor& out, const at::Tensor& grad_in,
                        double scale) {
  const char* op = "masked_softmax_bwd";
  launch_masked_softmax_bwd(op, masked_softmax_bwd_params(op, grad_out, out, grad_in, scale), out);
}

// ---------------------------------------------------------------------------------------------
// attention_softmax: the cuda attention backend's masked softmax, with varlen rows and the
// attention dropout fused (see masked_softmax.h). `dropped` is given exactly when `seed` is.

fastattn::SoftmaxDropout softmax_dropout(const char* op, const std::optional<at::Tensor>& dropped,
                                         const at::Tensor& like, double dropout_p,
                                         double dropout_scale, std::optional<int64_t> seed) {
  TORCH_CHECK_VALUE(dropped.has_value() == seed.has_value(), "fastattn._C.", op,
                    ": dropped must be given exactly when seed is (dropout)");
  fastattn::SoftmaxDropout d{};
  if (!dropped.has_value()) return d;
  check_rows(op, "dropped", *dropped, like);
  d.dropped = dropped->data_ptr();
  d.stride_dropped = dropped->stride(0);
  d.seed = static_cast<uint64_t>(*seed);
  d.p = static_cast<float>(dropout_p);
  d.scale = static_cast<float>(dropout_scale);
  return d;
}

// cu_seqlens_q/k: int32 [batch + 1] (both or neither) for scores padded from packed sequences.
void attention_softmax_fwd(const at::Tensor& scores, const std::optional<at::Tensor>& key_padding_mask,
                           const std::optional<at::Tensor>& cu_seqlens_q,
                           const std::optional<at::Tensor>& cu_seqlens_k, const at::Tensor& probs,
                           const std::optional<at::Tensor>& dropped, int64_t rows_per_batch,
                           int64_t queries, bool causal, double scale, double dropout_p,
                           double dropout_scale, std::optional<int64_t> seed) {
  const char* op = "attention_softmax_fwd";
  fastattn::MaskedSoftmaxFwdParams p = masked_softmax_fwd_params(
      op, scores, key_padding_mask, probs, rows_per_batch, queries, causal, scale);
  TORCH_CHECK_VALUE(cu_seqlens_q.has_value() == cu_seqlens_k.has_value(), "fastattn._C.", op,
                    ": cu_seqlens_q and cu_seqlens_k must be given together");
  if (cu_seqlens_q.has_value()) {
    const int64_t batch = scores.size(0) / rows_per_batch;
    check_vector(op, "cu_seqlens_q", *cu_seqlens_q, scores.device(), at::kInt, batch + 1);
    check_vector(op, "cu_seqlens_k", *cu_seqlens_k, scores.device(), at::kInt, batch + 1);
    p.shape.cu_seqlens_q = cu_seqlens_q->data_ptr<int32_t>();
    p.shape.cu_seqlens_k = cu_seqlens_k->data_ptr<int32_t>();
  }
  p.dropout = softmax_dropout(op, dropped, scores, dropout_p, dropout_scale, seed);
  launch_masked_softmax_fwd(op, p, scores);
}

// grad_dropped: the gradient of `dropped` (of probs without dropout); grad_scores may be it (in place).
void attention_softmax_bwd(const at::Tensor& grad_dropped, const at::Tensor& probs,
                           const at::Tensor& grad_scores, const std::optional<at::Tensor>& dropped,
                           double scale, double dropout_p, double dropout_scale,
                           std::optional<int64_t> seed) {
  const char* op = "attention_softmax_bwd";
  fastattn::MaskedSoftmaxBwdParams p =
      masked_softmax_bwd_params(op, grad_dropped, probs, grad_scores, scale);
  p.dropout = softmax_dropout(op, dropped, probs, dropout_p, dropout_scale, seed);
  launch_masked_softmax_bwd(op, p, probs);
}

// ---------------------------------------------------------------------------------------------
// decode_attention: fused attention of a few queries against a KV cache (decode_attention.h).

// A [B, heads, S, D] tensor of q's dtype on q's device, unit stride in D, its other strides and
// its pointer whole 16-byte vectors (the kernels' loads and stores).
void check_decode_operand(const char* op, const char* name, const at::Tensor& t,
                          const at::Tensor& q) {
  check_on_device(op, name, t, q.device());
  TORCH_CHECK_TYPE(t.scalar_type() == q.scalar_type(), "fastattn._C.", op, ": ", name,
                   " must have dtype ", q.scalar_type(), ", got ", t.scalar_type());
  TORCH_CHECK_VALUE(t.dim() == 4 && t.size(0) == q.size(0) && t.size(3) == q.size(3),
                    "fastattn._C.", op, ": ", name, " must be [", q.size(0), ", heads, seq, ",
                    q.size(3), "], got shape ", t.sizes());
  const int64_t bytes = t.element_size();
  bool aligned = t.stride(3) == 1 && reinterpret_cast<uintptr_t>(t.data_ptr()) % 16 == 0;
  for (int d = 0; d < 3; ++d) aligned = aligned && (t.stride(d) * bytes) % 16 == 0;
  TORCH_CHECK_VALUE(aligned, "fastattn._C.", op, ": ", name, " must have unit stride in its last "
                    "dimension, other strides and its address in whole 16 bytes, got strides ",
                    t.strides());
}

int multiprocessor_count(const at::Device& device) {
  return at::cuda::getDeviceProperties(device.index())->multiProcessorCount;
}

// out: [B, H, Sq, D], allocated by the Python side. Returns the number of key splits it ran (for
// tests and benchmarks).
int64_t decode_attention_fwd(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                             const std::optional<at::Tensor>& key_padding_mask,
                             const at::Tensor& out, bool causal, double scale) {
  const char* op = "decode_attention_fwd";
  TORCH_CHECK_VALUE(q.is_cuda() && q.dim() == 4, "fastattn._C.", op,
                    ": q must be a 4D CUDA tensor [B, H, Sq, D], got ", q.sizes(), " on ",
                    q.device());
  const fastattn::ElementType dtype = element_type(op, "q", q);
  check_decode_operand(op, "q", q, q);
  check_decode_operand(op, "k", k, q);
  check_decode_operand(op, "v", v, q);
  check_decode_operand(op, "out", out, q);
  TORCH_CHECK_VALUE(v.sizes() == k.sizes(), "fastattn._C.", op, ": v must have k's shape ",
                    k.sizes(), ", got ", v.sizes());
  TORCH_CHECK_VALUE(out.sizes() == q.sizes(), "fastattn._C.", op, ": out must have q's shape ",
                    q.sizes(), ", got ", out.sizes());
  const int64_t heads = q.size(1), kv_heads = k.size(1), head_dim = q.size(3);
  TORCH_CHECK_VALUE(kv_heads > 0 && heads % kv_heads == 0, "fastattn._C.", op, ": k's heads (",
                    kv_heads, ") must divide q's (", heads, ")");
  TORCH_CHECK_VALUE(fastattn::decode_attention_supports(head_dim, q.element_size()),
                    "fastattn._C.", op, ": head dim ", head_dim, " must be a multiple of ",
                    16 / q.element_size(), " and at most ", 512 / q.element_size(), " for ",
                    q.scalar_type());
  const MaskBytes mask =
      key_padding_mask_bytes(op, key_padding_mask, q.device(), q.size(0), k.size(2));

  const c10::cuda::CUDAGuard guard(q.device());
  fastattn::DecodeAttentionParams p{};
  p.q = q.data_ptr();
  p.k = k.data_ptr();
  p.v = v.data_ptr();
  p.out = out.data_ptr();
  p.key_padding_mask = mask.data;
  p.stride_mask_b = mask.row_stride;
  p.batch = q.size(0);
  p.heads = heads;
  p.kv_heads = kv_heads;
  p.queries = q.size(2);
  p.keys = k.size(2);
  p.head_dim = head_dim;
  p.stride_q_b = q.stride(0), p.stride_q_h = q.stride(1), p.stride_q_s = q.stride(2);
  p.stride_k_b = k.stride(0), p.stride_k_h = k.stride(1), p.stride_k_s = k.stride(2);
  p.stride_v_b = v.stride(0), p.stride_v_h = v.stride(1), p.stride_v_s = v.stride(2);
  p.stride_out_b = out.stride(0), p.stride_out_h = out.stride(1), p.stride_out_s = out.stride(2);
  p.causal = causal;
  p.scale_log2 = static_cast<float>(scale * 1.4426950408889634);
  const int64_t rows = p.batch * heads * p.queries;
  if (rows == 0) return 0;
  if (p.keys == 0) {  // no key to see: every row is zeros
    out.zero_();
    return 0;
  }
  fastattn::plan_decode_attention(p, static_cast<int>(q.element_size()),
                                  multiprocessor_count(q.device()));
  at::Tensor partial_out, partial_lse;
  if (p.splits > 1) {
    const auto options = q.options().dtype(at::kFloat);
    partial_out = at::empty({p.splits, rows, head_dim}, options);
    partial_lse = at::empty({p.splits, rows}, options);
    p.partial_out = partial_out.data_ptr<float>();
    p.partial_lse = partial_lse.data_ptr<float>();
  }
  check_launch(fastattn::launch_decode_attention(p, dtype,
                                                 c10::cuda::getCurrentCUDAStream().stream()),
               op);
  return p.splits;
}

void bias_gelu_fwd(const at::Tensor& x, const at::Tensor& bias, const at::Tensor& out,
                   bool tanh_approximation) {
  const char* op = "bias_gelu_fwd";
  check_row_input(op, "x", x);
  check_vector(op, "bias", bias, x.device(), x.scalar_type(), x.size(1));
  check_rows(op, "out", out, x);

  const c10::cuda::CUDAGuard guard(x.device());
  fastattn::BiasGeluFwdParams p{};
  p.x = x.data_ptr();
  p.bias = bias.data_ptr();
  p.out = out.data_ptr();
  p.rows = x.size(0);
  p.n_cols = x.size(1);
  p.stride_x = x.stride(0);
  p.stride_out = out.stride(0);
  p.tanh_approximation = tanh_approximation;
  check_launch(fastattn::launch_bias_gelu_fwd(p, element_type(op, "x", x),
                                              c10::cuda::getCurrentCUDAStream().stream()),
               "bias_gelu_fwd");
}

// Writes grad_in and one float32 row of bias-gradient partial sums per chunk of rows (the caller
// chose the chunk count as bias_grad_partial's first dimension, and sums over it).
void bias_gelu_bwd(const at::Tensor& grad_out, const at::Tensor& x, const at::Tensor& bias,
                   const at::Tensor& grad_in, const at::Tensor& bias_grad_partial,
                   bool tanh_approximation) {
  const char* op = "bias_gelu_bwd";
  check_row_input(op, "x", x);
  check_rows(op, "grad_out", grad_out, x);
  check_vector(op, "bias", bias, x.device(), x.scalar_type(), x.size(1));
  check_rows(op, "grad_in", grad_in, x);
  check_on_device(op, "bias_grad_partial", bias_grad_partial, x.device());
  TORCH_CHECK_TYPE(bias_grad_partial.scalar_type() == at::kFloat, "fastattn._C.", op,
                   ": bias_grad_partial must be float32, got ", bias_grad_partial.scalar_type());
  TORCH_CHECK_VALUE(bias_grad_partial.dim() == 2 && bias_grad_partial.size(1) == x.size(1) &&
                    bias_grad_partial.size(0) >= 1 &&
                    bias_grad_partial.size(0) <= fastattn::kBiasGeluMaxChunks &&
                    bias_grad_partial.is_contiguous(), "fastattn._C.", op,
                    ": bias_grad_partial must be a contiguous [chunks, ", x.size(1), "] with 1 <= chunks <= ",
                    fastattn::kBiasGeluMaxChunks, ", got shape ", bias_grad_partial.sizes());

  const c10::cuda::CUDAGuard guard(x.device());
  fastattn::BiasGeluBwdParams p{};
  p.grad_out = grad_out.data_ptr();
  p.x = x.data_ptr();
  p.bias = bias.data_ptr();
  p.grad_in = grad_in.data_ptr();
  p.bias_grad_partial = bias_grad_partial.data_ptr<float>();
  p.chunks = static_cast<int>(bias_grad_partial.size(0));
  p.rows = x.size(0);
  p.n_cols = x.size(1);
  p.stride_grad_out = grad_out.stride(0);
  p.stride_x = x.stride(0);
  p.stride_grad_in = grad_in.stride(0);
  p.tanh_approximation = tanh_approximation;
  check_launch(fastattn::launch_bias_gelu_bwd(p, element_type(op, "x", x),
                                              c10::cuda::getCurrentCUDAStream().stream()),
               "bias_gelu_bwd");
}

// ---------------------------------------------------------------------------------------------
// ffn: the GEMMs of the feed-forward network go to cuBLASLt with its epilogues (ffn_gemm, in
// csrc/ffn_cublaslt.cpp, when the build found cuBLASLt) and, for calls it cannot take, to ATen's
// cuBLAS(Lt) GEMMs (ffn_linear); the output dropout is our kernel.

// a [M, K] and weight [N, K] of one dtype on one device, out a contiguous [M, N] of that dtype.
void check_linear_operands(const char* op, const at::Tensor& a, const at::Tensor& weight,
                           const at::Tensor& out) {
  TORCH_CHECK_VALUE(a.is_cuda(), "fastattn._C.", op, ": expects CUDA tensors, got ", a.device());
  element_type(op, "a", a);
  TORCH_CHECK_VALUE(a.dim() == 2 && weight.dim() == 2 && weight.size(1) == a.size(1), "fastattn._C.",
                    op, ": a [M, K] and weight [N, K] expected, got ", a.sizes(), " and ", weight.sizes());
  check_on_device(op, "weight", weight, a.device());
  TORCH_CHECK_TYPE(weight.scalar_type() == a.scalar_type(), "fastattn._C.", op,
                   ": weight must have a's dtype ", a.scalar_type(), ", got ", weight.scalar_type());
  check_on_device(op, "out", out, a.device());
  TORCH_CHECK_TYPE(out.scalar_type() == a.scalar_type(), "fastattn._C.", op,
                   ": out must have a's dtype ", a.scalar_type(), ", got ", out.scalar_type());
  TORCH_CHECK_VALUE(out.dim() == 2 && out.size(0) == a.size(0) && out.size(1) == weight.size(0) &&
                    out.is_contiguous(), "fastattn._C.", op, ": out must be a contiguous [",
                    a.size(0), ", ", weight.size(0), "], got ", out.sizes());
}

// out = a @ weight^T (+ bias), optionally with GELU (tanh form) fused. at::addmm and
// at::_addmm_activation run cuBLASLt with its BIAS / GELU_BIAS epilogue where ATen can (1-D bias,
// 16-bit or float32, contiguous out), else a GEMM followed by the same math. a and weight may be
// transposed views (the gradients' operands): cuBLAS reads them in place. out is the caller's
// (fastattn._alloc) buffer.
void ffn_linear(const at::Tensor& a, const at::Tensor& weight, const std::optional<at::Tensor>& bias,
                const at::Tensor& out, bool gelu_tanh) {
  const char* op = "ffn_linear";
  check_linear_operands(op, a, weight, out);
  TORCH_CHECK_VALUE(!gelu_tanh || bias.has_value(), "fastattn._C.", op, ": the GELU epilogue needs a bias");
  if (bias.has_value()) {
    check_vector(op, "bias", *bias, a.device(), a.scalar_type(), weight.size(0));
  }
  const c10::cuda::CUDAGuard guard(a.device());
  at::Tensor out_view = out;  // the at::*_out functions take a non-const reference
  if (gelu_tanh) {
    at::_addmm_activation_out(out_view, *bias, a, weight.t(), 1, 1, /*use_gelu=*/true);
  } else if (bias.has_value()) {
    at::addmm_out(out_view, *bias, a, weight.t());
  } else {
    at::mm_out(out_view, a, weight.t());
  }
}

// The epilogue names ffn_gemm takes, in fastattn::FfnEpilogue's order.
constexpr const char* kFfnEpilogueNames[] = {"none", "bias", "gelu_bias", "gelu_aux_bias",
                                              "dgelu_bgrad", "bgradb"};
static_assert(sizeof(kFfnEpilogueNames) / sizeof(kFfnEpilogueNames[0]) ==
              static_cast<size_t>(fastattn::FfnEpilogue::kCount), "one name per FfnEpilogue");

// Per epilogue: calls cuBLASLt ran, and calls that went back to the caller. The gpu tier reads them
// to check that the fused paths are really taken.
struct FfnGemmCounts {
  std::atomic<int64_t> ran[static_cast<size_t>(fastattn::FfnEpilogue::kCount)]{};
  std::atomic<int64_t> declined[static_cast<size_t>(fastattn::FfnEpilogue::kCount)]{};
};
FfnGemmCounts ffn_gemm_counts_;

fastattn::FfnEpilogue ffn_epilogue(const char* op, const std::string& name) {
  for (size_t i = 0; i < static_cast<size_t>(fastattn::FfnEpilogue::kCount); ++i) {
    if (name == kFfnEpilogueNames[i]) return static_cast<fastattn::FfnEpilogue>(i);
  }
  TORCH_CHECK_VALUE(false, "fastattn._C.", op, ": unknown epilogue '", name,
                    "' (none, bias, gelu_bias, gelu_aux_bias, dgelu_bgrad, bgradb)");
  return fastattn::FfnEpilogue::kNone;  // unreachable
}

fastattn::FfnMatrix ffn_matrix(const at::Tensor& t) {
  return {t.data_ptr(), t.size(0), t.size(1), t.stride(0), t.stride(1)};
}

// out = a @ weight^T with one of cuBLASLt's epilogues (the contract is fastattn::FfnEpilogue's, in
// csrc/ffn_cublaslt.h). Returns None when cuBLASLt ran, else why this call cannot take it (the
// extension was built without cuBLASLt, or a requirement of the epilogue is not met): nothing was
// written and the caller takes its other path. bias is an input for bias/gelu_bias/gelu_aux_bias,
// an output for dgelu_bgrad ([N]) and bgradb ([M]); aux is a [M, N] output for gelu_aux_bias, an
// input for dgelu_bgrad. allow_tf32 is torch.backends.cuda.matmul.allow_tf32 (float32 only).
std::optional<std::string> ffn_gemm(const at::Tensor& a, const at::Tensor& weight, const at::Tensor& out,
                                    const std::string& epilogue_name,
                                    const std::optional<at::Tensor>& bias,
                                    const std::optional<at::Tensor>& aux, bool allow_tf32) {
  const char* op = "ffn_gemm";
  check_linear_operands(op, a, weight, out);
  const fastattn::FfnEpilogue epilogue = ffn_epilogue(op, epilogue_name);
  const size_t index = static_cast<size_t>(epilogue);
  const bool needs_aux = epilogue == fastattn::FfnEpilogue::kGeluAuxBias ||
                         epilogue == fastattn::FfnEpilogue::kDGeluBGrad;
  TORCH_CHECK_VALUE(bias.has_value() == (epilogue != fastattn::FfnEpilogue::kNone), "fastattn._C.",
                    op, ": epilogue '", epilogue_name, "' ", bias.has_value() ? "takes no" : "needs a",
                    " bias");
  TORCH_CHECK_VALUE(aux.has_value() == needs_aux, "fastattn._C.", op, ": epilogue '", epilogue_name,
                    "' ", aux.has_value() ? "takes no" : "needs an", " aux matrix");
  if (bias.has_value()) {
    const int64_t size = epilogue == fastattn::FfnEpilogue::kBGradB ? a.size(0) : weight.size(0);
    check_vector(op, "bias", *bias, a.device(), a.scalar_type(), size);
  }
  if (aux.has_value()) check_rows(op, "aux", *aux, out);
#ifdef FASTATTN_WITH_CUBLASLT
  const c10::cuda::CUDAGuard guard(a.device());
  fastattn::FfnGemmParams p{};
  p.a = ffn_matrix(a);
  p.w = ffn_matrix(weight);
  p.out = out.data_ptr();
  p.stride_out = out.stride(0);
  p.bias = bias.has_value() ? bias->data_ptr() : nullptr;
  p.aux = aux.has_value() ? aux->data_ptr() : nullptr;
  p.stride_aux = aux.has_value() ? aux->stride(0) : 0;
  p.epilogue = epilogue;
  p.allow_tf32 = allow_tf32;
  const size_t workspace_bytes = fastattn::ffn_gemm_workspace_bytes();
  // From torch's caching allocator: freed when this returns, reused only by work queued after
  // this GEMM on the same stream.
  const at::Tensor workspace =
      at::empty({static_cast<int64_t>(workspace_bytes)}, a.options().dtype(at::kByte));
  const fastattn::FfnGemmResult result = fastattn::run_ffn_gemm(
      p, element_type(op, "a", a), workspace.data_ptr(), workspace_bytes,
      c10::cuda::getCurrentCUDAStream().stream());
  TORCH_CHECK(result.status != fastattn::FfnGemmStatus::kFailed, "fastattn._C.", op,
              ": cublasLtMatmul (epilogue ", epilogue_name, ") failed: ", result.detail);
  if (result.status == fastattn::FfnGemmStatus::kDone) {
    ++ffn_gemm_counts_.ran[index];
    return std::nullopt;
  }
  ++ffn_gemm_counts_.declined[index];
  return std::string(result.detail);
#else
  (void)allow_tf32;
  ++ffn_gemm_counts_.declined[index];
  return std::string("fastattn._C was built without cuBLASLt (setup.py found no cublasLt.h)");
#endif
}

// {epilogue: (calls cuBLASLt ran, calls it declined)} since the extension was loaded.
std::map<std::string, std::tuple<int64_t, int64_t>> ffn_gemm_counts() {
  std::map<std::string, std::tuple<int64_t, int64_t>> counts;
  for (size_t i = 0; i < static_cast<size_t>(fastattn::FfnEpilogue::kCount); ++i) {
    counts[kFfnEpilogueNames[i]] = {ffn_gemm_counts_.ran[i].load(), ffn_gemm_counts_.declined[i].load()};
  }
  return counts;
}

// out = in * keep * dropout_scale with the Philox keep mask of the output element (row, col).
void ffn_dropout(const at::Tensor& in, const at::Tensor& out, double dropout_p, double dropout_scale,
                 int64_t seed) {
  const char* op = "ffn_dropout";
  check_row_input(op, "in", in);
  check_rows(op, "out", out, in);
  const c10::cuda::CUDAGuard guard(in.device());
  fastattn::FfnDropoutParams p{};
  p.in = in.data_ptr();
  p.out = out.data_ptr();
  p.rows = in.size(0);
  p.n_cols = in.size(1);
  p.stride_in = in.stride(0);
  p.stride_out = out.stride(0);
  p.dropout_p = static_cast<float>(dropout_p);
  p.dropout_scale = static_cast<float>(dropout_scale);
  p.seed = static_cast<uint64_t>(seed);
  check_launch(fastattn::launch_ffn_dropout(p, element_type(op, "in", in),
                                            c10::cuda::getCurrentCUDAStream().stream()),
               "ffn_dropout");
}

}  // namespace

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.doc() = "fastattn CUDA C++ kernels";
  m.attr("cuda_archs") = std::string(FASTATTN_CUDA_ARCHS);
  m.attr("cuda_version") = cuda_version_string();

  // layer_norm_residual
  m.def("layer_norm_residual_fwd", &layer_norm_residual_fwd,
        "writes y = LN(h), h = dropout(x) + residual (when h is given), mean and rstd",
        py::arg("x"), py::arg("residual"), py::arg("weight"), py::arg("bias"), py::arg("y"),
        py::arg("h"), py::arg("mean"), py::arg("rstd"), py::arg("eps"), py::arg("dropout_p"),
        py::arg("dropout_scale"), py::arg("seed"));
  m.def("layer_norm_residual_bwd", &layer_norm_residual_bwd,
        "writes dh (and dx under dropout) of layer_norm_residual_fwd; returns (dweight, dbias)",
        py::arg("dy"), py::arg("dh_out"), py::arg("h"), py::arg("weight"), py::arg("mean"),
        py::arg("rstd"), py::arg("dh"), py::arg("dx"), py::arg("dropout_p"),
        py::arg("dropout_scale"), py::arg("seed"));

  // masked_softmax
  m.def("masked_softmax_fwd", &masked_softmax_fwd,
        "writes out = softmax(scale * scores) over the keys each row sees (zeros where none)",
        py::arg("scores"), py::arg("key_padding_mask"), py::arg("out"), py::arg("rows_per_batch"),
        py::arg("queries"), py::arg("causal"), py::arg("scale"));
  m.def("masked_softmax_bwd", &masked_softmax_bwd,
        "writes grad_in = scale * out * (grad_out - sum(grad_out * out))",
        py::arg("grad_out"), py::arg("out"), py::arg("grad_in"), py::arg("scale"));

  // attention_softmax (the cuda attention backend)
  m.def("attention_softmax_fwd", &attention_softmax_fwd,
        "writes probs = masked softmax (varlen rows too) and, under dropout, dropped = probs * keep * dropout_scale",
        py::arg("scores"), py::arg("key_padding_mask"), py::arg("cu_seqlens_q"),
        py::arg("cu_seqlens_k"), py::arg("probs"), py::arg("dropped"), py::arg("rows_per_batch"),
        py::arg("queries"), py::arg("causal"), py::arg("scale"), py::arg("dropout_p"),
        py::arg("dropout_scale"), py::arg("seed"));
  m.def("attention_softmax_bwd", &attention_softmax_bwd,
        "writes grad_scores of attention_softmax_fwd from the gradient of dropped (probs without "
        "dropout), and dropped again under dropout",
        py::arg("grad_dropped"), py::arg("probs"), py::arg("grad_scores"), py::arg("dropped"),
        py::arg("scale"), py::arg("dropout_p"), py::arg("dropout_scale"), py::arg("seed"));

  // decode_attention (the cuda attention backend's path for decoding)
  m.def("decode_attention_fwd", &decode_attention_fwd,
        "writes out = attention of a few queries against a KV cache (fused, split over the keys); "
        "returns the number of key splits",
        py::arg("q"), py::arg("k"), py::arg("v"), py::arg("key_padding_mask"), py::arg("out"),
        py::arg("causal"), py::arg("scale"));

  // bias_gelu
  m.def("bias_gelu_fwd", &bias_gelu_fwd, "writes out = gelu(x + bias)", py::arg("x"),
        py::arg("bias"), py::arg("out"), py::arg("tanh_approximation"));
  m.def("bias_gelu_bwd", &bias_gelu_bwd,
        "writes grad_in and the float32 per-chunk partial sums of the bias gradient",
        py::arg("grad_out"), py::arg("x"), py::arg("bias"), py::arg("grad_in"),
        py::arg("bias_grad_partial"), py::arg("tanh_approximation"));

  // ffn
  m.def("ffn_linear", &ffn_linear,
        "writes out = a @ weight^T (+ bias) through ATen's cuBLAS(Lt) GEMMs, GELU (tanh) fused if asked",
        py::arg("a"), py::arg("weight"), py::arg("bias"), py::arg("out"), py::arg("gelu_tanh"));
  m.def("ffn_gemm", &ffn_gemm,
        "writes out = a @ weight^T through cuBLASLt with an epilogue; returns None, or why this call "
        "cannot take cuBLASLt (nothing written)",
        py::arg("a"), py::arg("weight"), py::arg("out"), py::arg("epilogue"), py::arg("bias"),
        py::arg("aux"), py::arg("allow_tf32"));
  m.def("ffn_gemm_counts", &ffn_gemm_counts,
        "{epilogue: (calls cuBLASLt ran, calls it declined)} since the extension was loaded");
#ifdef FASTATTN_WITH_CUBLASLT
  m.attr("ffn_gemm_path") = std::string("cublaslt");
  const size_t lt_version = fastattn::ffn_cublaslt_version();
  m.attr("cublaslt_version") = std::to_string(lt_version / 10000) + "." +
                               std::to_string(lt_version / 100 % 100) + "." +
                               std::to_string(lt_version % 100);
#else
  m.attr("ffn_gemm_path") = std::string("aten");
  m.attr("cublaslt_version") = py::none();
#endif
  m.def("ffn_dropout", &ffn_dropout, "writes out = in * keep * dropout_scale (Philox keep mask)",
        py::arg("in"), py::arg("out"), py::arg("dropout_p"), py::arg("dropout_scale"), py::arg("seed"));
}
