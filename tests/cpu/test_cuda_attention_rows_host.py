"""The cuda attention backend's row indexing (csrc/softmax_rows.cuh), compiled for the host with g++:
which keys each query row sees (bottom-right causal, varlen sequence bounds) equals
fastattn.reference, and the dropout keep mask it draws through csrc/philox.cuh is
fastattn.reference.attention_dropout_keep_mask bit for bit. A wrong causal offset or Philox counter
would otherwise show only on a GPU."""

import pytest
import torch

from fastattn import reference
from host_cxx import build_driver, run_driver

DRIVER = r"""
#include <cinttypes>
#include <cstdio>
#include <vector>

#include "softmax_rows.cuh"

// Reads "B H Sq Sk causal varlen seed p" and, when varlen, B + 1 cu_seqlens_q then B + 1
// cu_seqlens_k values. Prints one line per row of [B, H, Sq, Sk] scores: its visible end, then the
// keep bits of its Sk scores as 0/1 characters.
int main() {
  int64_t batch, heads, queries, keys;
  int causal, varlen;
  uint64_t seed;
  float p;
  if (std::scanf("%" SCNd64 " %" SCNd64 " %" SCNd64 " %" SCNd64 " %d %d %" SCNu64 " %f", &batch,
                 &heads, &queries, &keys, &causal, &varlen, &seed, &p) != 8) return 1;
  std::vector<int32_t> cu_q(batch + 1), cu_k(batch + 1);
  if (varlen) {
    for (auto& v : cu_q) if (std::scanf("%d", &v) != 1) return 1;
    for (auto& v : cu_k) if (std::scanf("%d", &v) != 1) return 1;
  }
  fastattn::SoftmaxRowShape shape{heads * queries, queries, keys, causal != 0,
                                  varlen ? cu_q.data() : nullptr, varlen ? cu_k.data() : nullptr};
  for (int64_t row = 0; row < batch * heads * queries; ++row) {
    std::printf("%" PRId64 " ", fastattn::softmax_row_visible_end(shape, row));
    for (int64_t col = 0; col < keys; ++col) {
      std::putchar(fastattn::attention_dropout_uniform(seed, row, keys, col) >= p ? '1' : '0');
    }
    std::putchar('\n');
  }
  return 0;
}
"""


@pytest.fixture(scope="module")
def rows_driver(tmp_path_factory):
    return build_driver(tmp_path_factory, "softmax_rows", DRIVER)


def host_rows(driver, batch, heads, queries, keys, causal, seed, p, cu_q=None, cu_k=None):
    """(visible [B, H, Sq, Sk] bool for keys below each row's visible end, keep [B, H, Sq, Sk])."""
    text = f"{batch} {heads} {queries} {keys} {int(causal)} {int(cu_q is not None)} {seed} {p!r}\n"
    if cu_q is not None:
        text += " ".join(map(str, cu_q)) + "\n" + " ".join(map(str, cu_k)) + "\n"
    ends, keeps = [], []
    for line in run_driver(driver, text).splitlines():
        end, _, bits = line.partition(" ")
        ends.append(int(end))
        keeps.append([c == "1" for c in bits])
    visible = torch.arange(keys)[None, :] < torch.tensor(ends)[:, None]
    keep = torch.tensor(keeps, dtype=torch.bool).reshape(batch, heads, queries, keys)
    return visible.reshape(batch, heads, queries, keys), keep


# (B, H, Sq, Sk): Sq == Sk, more keys (decoding), more queries (the first see nothing), one key.
DENSE = [(2, 3, 5, 5), (1, 2, 3, 17), (2, 1, 9, 4), (1, 1, 4, 1)]


@pytest.mark.parametrize("causal", [False, True], ids=["full", "causal"])
@pytest.mark.parametrize("shape", DENSE, ids=lambda s: "B{}H{}q{}k{}".format(*s))
def test_dense_rows_match_reference(rows_driver, shape, causal):
    batch, heads, queries, keys = shape
    seed, p = 0x0123456789ABCDEF, 0.3
    visible, keep = host_rows(rows_driver, batch, heads, queries, keys, causal, seed, p)
    expected = reference.attention_visible_keys(queries, keys, causal=causal)
    assert torch.equal(visible, expected.expand_as(visible))
    assert torch.equal(keep, reference.attention_dropout_keep_mask(seed, batch, heads, queries, keys, p))


@pytest.mark.parametrize("causal", [False, True], ids=["full", "causal"])
def test_varlen_rows_match_reference(rows_driver, causal):
    """Sequences of odd lengths, an empty one, more queries than keys in one: each row sees the keys
    of its own sequence (bottom-right causal inside it); padding rows past a sequence see none."""
    lengths_q, lengths_k = [7, 0, 13, 5, 1], [7, 0, 9, 11, 1]
    heads, max_q, max_k, seed, p = 2, max(lengths_q), max(lengths_k), 42, 0.5
    cu_q = [0] + torch.tensor(lengths_q).cumsum(0).tolist()
    cu_k = [0] + torch.tensor(lengths_k).cumsum(0).tolist()
    visible, keep = host_rows(rows_driver, len(lengths_q), heads, max_q, max_k, causal, seed, p,
                              cu_q, cu_k)
    for b, (len_q, len_k) in enumerate(zip(lengths_q, lengths_k)):
        expected = torch.zeros(max_q, max_k, dtype=torch.bool)
        expected[:len_q, :len_k] = reference.attention_visible_keys(len_q, len_k, causal=causal)[0, 0]
        assert torch.equal(visible[b], expected.expand(heads, max_q, max_k)), f"sequence {b}"
    assert torch.equal(keep, reference.attention_dropout_keep_mask(seed, len(lengths_q), heads,
                                                                   max_q, max_k, p))


def test_varlen_key_count_is_clamped_to_the_row(rows_driver):
    """A max_seqlen_k smaller than a sequence (unchecked while torch.compile traces) must not let a
    kernel read past its row."""
    visible, _ = host_rows(rows_driver, 1, 1, 2, 3, False, 1, 0.1, [0, 2], [0, 5])
    assert visible.all()
