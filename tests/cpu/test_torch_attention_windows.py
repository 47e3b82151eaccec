"""Padded batches on the torch backend: key columns no query sees are cut, and buckets by length
when the cost rule says so; results equal the reference (padded query rows still attend to their
row's real keys, rows without keys give zeros), forward and backward."""

import pytest
import torch

import attn_cases
import fastattn
from fastattn.backends import torch_attention, torch_attention_windows as windows

SEQLEN_K = 37
COSTS = windows.COSTS  # as shipped, before plans_every_call


def _mask(pattern, batch=4):
    """bool [batch, 37] masks in which the planner has something to cut."""
    mask = torch.zeros(batch, SEQLEN_K, dtype=torch.bool)
    for b in range(batch):
        length = 3 + 5 * b
        if pattern == "right":
            mask[b, :length] = True
        elif pattern == "left":
            mask[b, SEQLEN_K - length:] = True
        elif pattern == "holes":
            mask[b, 4 + b:4 + b + length:2] = True
        elif pattern == "empty_rows":
            mask[b, :length] = b % 2 == 1
    return mask


@pytest.fixture(autouse=True)
def plans_every_call(monkeypatch):
    """These shapes are below the CPU's planning cost, which would leave them unplanned (the last
    tests check that); planning is made free so that the planner runs on them."""
    monkeypatch.setattr(windows, "COSTS", {device: costs._replace(planning=0.0)
                                           for device, costs in windows.COSTS.items()})


@pytest.fixture
def sdpa_key_lengths(monkeypatch):
    """The (rows, key count) the forward calls SDPA with. The backward's recompute (under autograd)
    follows the same plan; its gradients are checked against the reference."""
    lengths = []
    sdpa = torch_attention._sdpa

    def recording(q, k, v, visible, is_causal, scale):
        if not torch.is_grad_enabled():
            lengths.append((q.shape[0], k.shape[2]))
        return sdpa(q, k, v, visible, is_causal, scale)

    monkeypatch.setattr(torch_attention, "_sdpa", recording)
    return lengths


@pytest.fixture(params=["cut", "buckets"])
def rule(request, monkeypatch):
    """"buckets": gathering made free, so the planner splits whenever widths differ."""
    if request.param == "buckets":
        free = windows.DeviceCosts(1e11, float("inf"), 0.0, 0.0)
        monkeypatch.setattr(windows, "COSTS", {"cpu": free, "cuda": free})
        monkeypatch.setattr(windows, "KEY_BLOCK", 1)
    return request.param


@pytest.mark.parametrize("causal", [False, True], ids=["full", "causal"])
@pytest.mark.parametrize("pattern", ["right", "left", "holes", "empty_rows"])
@pytest.mark.parametrize("seqlen_q", [1, 29, SEQLEN_K])
def test_cut_and_buckets_match_reference(sdpa_key_lengths, rule, dtype, pattern, causal, seqlen_q):
    q, k, v = attn_cases.make_qkv(4, 4, 2, seqlen_q, SEQLEN_K, 16, dtype, "cpu", seed=31)
    attn_cases.check_dense("torch", q, k, v, causal=causal, mask=_mask(pattern))
    assert sdpa_key_lengths and all(keys < SEQLEN_K for _rows, keys in sdpa_key_lengths)
    if rule == "buckets":
        assert len(sdpa_key_lengths) == 2 and sum(rows for rows, _ in sdpa_key_lengths) <= 4


def test_every_row_without_keys_gives_zeros(sdpa_key_lengths, dtype):
    q, k, v = attn_cases.make_qkv(2, 2, 2, 5, SEQLEN_K, 16, dtype, "cpu", seed=32)
    attn_cases.check_dense("torch", q, k, v, mask=torch.zeros(2, SEQLEN_K, dtype=torch.bool))
    assert not sdpa_key_lengths


def _plan(bounds, seqlen_q, seqlen_k, device_type="cuda"):
    return windows.plan(bounds, 12, seqlen_q, seqlen_k, 64, 2, device_type)


def test_plan_cuts_to_the_real_span_and_leaves_full_batches_alone():
    assert _plan([(0, 512), (0, 100)], 512, 512) is None
    assert _plan([(0, 300), (0, 100), (0, 0)], 512, 512) == [windows.Piece(None, slice(0, 300))]
    assert _plan([(200, 512), (100, 512)], 512, 512) == [windows.Piece(None, slice(100, 512))]
    assert _plan([(0, 0), (0, 0)], 512, 512) == []


def test_plan_splits_only_long_batches_with_far_apart_lengths():
    """BERT sizes never pay for a gather; 8k keys with one long row among short ones do."""
    assert _plan([(0, 512)] + [(0, 40)] * 15, 512, 512) is None
    pieces = _plan([(0, 8192)] + [(0, 500)] * 15, 8192, 8192)
    assert [(piece.rows, piece.keys) for piece in pieces] == [(list(range(1, 16)), slice(0, 500)),
                                                              ([0], slice(0, 8192))]
    assert _plan([(0, 8192)] + [(0, 7900)] * 15, 8192, 8192) is None  # 256 columns saved: too few


def test_key_bounds_read_once_per_mask(monkeypatch, facts_kept_as_on_a_gpu):
    reads = []
    tolist = torch.Tensor.tolist

    def counting(self):
        reads.append(self.shape)
        return tolist(self)

    monkeypatch.setattr(torch.Tensor, "tolist", counting)
    q, k, v = attn_cases.make_qkv(4, 2, 2, 8, SEQLEN_K, 16, torch.float32, "cpu")
    mask = _mask("right")
    for _layer in range(12):
        fastattn.attention(q, k, v, key_padding_mask=mask, backend="torch")
    mask[0, -1] = True
    fastattn.attention(q, k, v, key_padding_mask=mask, backend="torch")
    assert reads == [torch.Size([4, 2])] * 2


def test_small_problems_are_not_planned_on_the_cpu(monkeypatch, sdpa_key_lengths):
    """A decoding step of a left-padded batch: the whole attention costs less than its plan, so
    SDPA gets every key column and the mask's bounds are never read."""
    monkeypatch.setattr(windows, "COSTS", COSTS)
    monkeypatch.setattr(torch_attention, "key_bounds", _unexpected_read)
    q, k, v = attn_cases.make_qkv(4, 4, 2, 1, SEQLEN_K, 16, torch.float32, "cpu", seed=33)
    attn_cases.check_dense("torch", q, k, v, causal=True, mask=_mask("left"))
    assert sdpa_key_lengths == [(4, SEQLEN_K)]


def _unexpected_read(mask):
    raise AssertionError("key bounds read for a problem too small to plan")


def test_worth_planning_weighs_the_attention_against_the_planning_cost(monkeypatch):
    monkeypatch.setattr(windows, "COSTS", COSTS)
    assert not windows.worth_planning(4, 12, 1, 50, 64, "cpu")  # a decoding step
    assert windows.worth_planning(4, 12, 128, 128, 64, "cpu")  # a prompt
    assert windows.worth_planning(4, 12, 1, 50, 64, "cuda")  # free on GPUs until measured
