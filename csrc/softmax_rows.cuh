// Where a row of attention scores sits: scores [B, H, Sq, Sk] are rows = B * H * Sq rows of Sk
// elements, row r being query r % Sq of batch r / (H * Sq). Shared by the masked softmax kernels
// and, through FASTATTN_HOST_DEVICE, by tests/cpu, which checks this indexing with g++ against
// fastattn.reference (a wrong causal offset or dropout counter would otherwise show only on a GPU).
#pragma once

#include <stdint.h>

#include "philox.cuh"  // FASTATTN_HOST_DEVICE

namespace fastattn {

struct SoftmaxRowShape {
  int64_t rows_per_batch;       // H * Sq
  int64_t queries;              // Sq (max_seqlen_q for varlen)
  int64_t n_cols;               // Sk (max_seqlen_k for varlen)
  bool causal;
  // Varlen (scores padded to [B, H, max_seqlen_q, max_seqlen_k]): int32 [B + 1] offsets whose
  // differences are each batch row's query and key counts. nullptr: every batch row has Sq, Sk.
  const int32_t* cu_seqlens_q;
  const int32_t* cu_seqlens_k;
};

// One past the last key `row`'s query may see (the padding mask may hide some before it): the
// batch row's key count, cut under causal to j <= i + len_k - len_q (bottom-right aligned), and 0
// for a varlen query past its sequence's end. Clamped to n_cols, so a wrong max_seqlen_k (not
// checked while torch.compile traces) never makes a kernel read past its row. The shape is taken by
// value: a reference into a kernel's parameter struct cost the fp32 2048-column kernel a stack frame.
FASTATTN_HOST_DEVICE int64_t softmax_row_visible_end(SoftmaxRowShape s, int64_t row) {
  // The 64-bit divisions only where needed: they are calls that can cost a hot kernel a stack frame.
  if (s.cu_seqlens_q == nullptr && !s.causal) return s.n_cols;
  const int64_t query = row % s.queries;
  int64_t len_q = s.queries, len_k = s.n_cols;
  if (s.cu_seqlens_q != nullptr) {
    const int64_t batch = row / s.rows_per_batch;
    len_q = s.cu_seqlens_q[batch + 1] - s.cu_seqlens_q[batch];
    len_k = s.cu_seqlens_k[batch + 1] - s.cu_seqlens_k[batch];
    len_k = len_k < s.n_cols ? len_k : s.n_cols;
  }
  if (query >= len_q) return 0;
  if (!s.causal) return len_k;
  const int64_t end = query + len_k - len_q + 1;
  return end < 0 ? 0 : (end < len_k ? end : len_k);
}

// The uniform that decides whether score (row, col) of rows of n_cols scores survives attention
// dropout (fastattn.reference.attention_dropout_keep_mask): keys in groups of eight, one Philox
// evaluation a group at counter row * ceil(n_cols / 8) + col / 8, whose words' 16-bit halves (low
// first) decide the group: key col takes half col % 2 of word (col % 8) / 2, as u / 2^16 (exact
// in float32). The triton kernels draw a whole group from one evaluation; here each score
// computes its own.
FASTATTN_HOST_DEVICE float attention_dropout_uniform(uint64_t seed, int64_t row, int64_t n_cols,
                                                     int64_t col) {
  const int64_t groups = (n_cols + 7) / 8;
  const PhiloxWords words = philox_words(seed, static_cast<uint64_t>(row * groups + col / 8));
  const uint32_t word = philox_word(words, (col % 8) / 2);
  const uint32_t half = (col % 2) ? (word >> 16) : (word & 0xFFFFu);
  return static_cast<float>(half) * (1.0f / 65536.0f);
}

}  // namespace fastattn
