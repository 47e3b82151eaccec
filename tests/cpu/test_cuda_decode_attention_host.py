"""The cuda backend's fused decode attention kernels (csrc/decode_attention_kernels.cuh), run on the
host: g++ builds the very kernels nvcc builds, under tests/cuda_host_emulator.h (one coroutine per
CUDA thread, switching at barriers and shuffles), and their outputs meet the numerics rule against
fastattn.reference. The split count comes from csrc/decode_attention.h's rule for a given SM count,
so both paths run: one split (the split kernel writes the output) and several (partial outputs and
the combine kernel). Without a GPU this is where a wrong index, mask or softmax merge shows; the gpu
tier checks the same kernels on the chip (tests/gpu/test_cuda_decode_attention_gpu.py)."""

import os

import pytest
import torch

from fastattn import reference
from host_cxx import DTYPE_CODE, TESTS, build_cuda_driver, run_emulated
from numerics import assert_numerics



@pytest.fixture(scope="module")
def driver(tmp_path_factory):
    with open(os.path.join(TESTS, "decode_attention_driver.cpp")) as f:
        return build_cuda_driver(tmp_path_factory, "decode_attention", f.read())


def run_decode(driver, tmp_path, q, k, v, *, keys, causal, mask, scale, sm_count):
    """(splits, out): the emulated kernels' output for q [B, H, Sq, D] against the first `keys`
    keys of k, v [B, Hkv, capacity, D]."""
    batch, heads, queries, head_dim = q.shape
    ints = (DTYPE_CODE[q.dtype], batch, heads, k.shape[1], queries, keys, head_dim, int(causal),
            int(mask is not None), k.shape[2], sm_count)
    values = run_emulated(driver, tmp_path, ints, (scale,),
                          [q, k, v] + ([] if mask is None else [mask]))
    return int(values[0]), values[1:].view(q.shape).to(q.dtype)


def _mask(batch, keys, pattern, generator):
    if pattern is None:
        return None
    mask = torch.rand(batch, keys, generator=generator) > 0.3  # holes
    if pattern == "left padded, one row empty":
        mask[0, : keys // 3] = False
        mask[-1] = False
    elif pattern == "tail hidden":  # a static cache's unwritten tail
        mask[:, keys - keys // 4:] = False
    return mask


# (dtype, B, H, Hkv, Sq, Sk, D, causal, mask pattern, sm_count, cache capacity beyond Sk)
CASES = [
    (torch.bfloat16, 2, 4, 4, 1, 300, 64, False, None, 8, 0),
    (torch.float16, 2, 8, 2, 1, 257, 128, False, "left padded, one row empty", 4, 0),
    (torch.float32, 1, 3, 1, 2, 113, 32, True, None, 2, 0),
    (torch.bfloat16, 1, 2, 2, 3, 7, 80, True, None, 132, 0),
    (torch.float16, 1, 2, 1, 1, 1, 256, False, None, 132, 0),
    (torch.float32, 2, 2, 2, 1, 129, 16, False, "holes", 1, 0),
    (torch.bfloat16, 1, 2, 2, 1, 40, 8, False, None, 132, 0),
    (torch.float16, 2, 4, 4, 1, 200, 96, False, "tail hidden", 16, 56),
    (torch.float32, 1, 2, 2, 4, 2, 128, True, None, 132, 0),
    (torch.bfloat16, 1, 12, 1, 1, 520, 64, False, "holes", 4, 0),
]


def _case_id(case):
    dtype, batch, heads, kv_heads, queries, keys, head_dim, causal, pattern, sms, extra = case
    return (f"{str(dtype).replace('torch.', '')}-{batch}x{heads}/{kv_heads}x{queries}x{keys}"
            f"-d{head_dim}{'-causal' if causal else ''}-{pattern or 'nomask'}-sm{sms}"
            f"{'-cap+' + str(extra) if extra else ''}").replace(" ", "_").replace(",", "")


def _poisoned(cache, mask):
    """The cache as the kernels get it: NaN at every hidden key (what an unwritten cache may hold)
    and in the capacity past the keys, which must neither be read nor reach the output (the
    reference gets the finite values)."""
    cache = cache.clone()
    keys = cache.shape[2] if mask is None else mask.shape[1]
    cache[:, :, keys:] = float("nan")
    if mask is not None:
        cache[:, :, :keys].masked_fill_(~mask[:, None, :, None], float("nan"))
    return cache


@pytest.mark.parametrize("case", CASES, ids=[_case_id(c) for c in CASES])
def test_emulated_decode_kernels_match_reference(driver, tmp_path, case):
    dtype, batch, heads, kv_heads, queries, keys, head_dim, causal, pattern, sms, extra = case
    generator = torch.Generator().manual_seed(keys * 7 + head_dim)
    q = torch.randn(batch, heads, queries, head_dim, generator=generator).to(dtype)
    k_cache = torch.randn(batch, kv_heads, keys + extra, head_dim, generator=generator).to(dtype)
    v_cache = torch.randn(batch, kv_heads, keys + extra, head_dim, generator=generator).to(dtype)
    mask = _mask(batch, keys, pattern, generator)
    scale = head_dim ** -0.5
    k, v = k_cache[:, :, :keys], v_cache[:, :, :keys]
    k_given, v_given = _poisoned(k_cache, mask), _poisoned(v_cache, mask)
    splits, out = run_decode(driver, tmp_path, q, k_given, v_given, keys=keys, causal=causal,
                             mask=mask, scale=scale, sm_count=sms)
    ref = reference.attention(q.double(), k.double(), v.double(), causal=causal,
                              key_padding_mask=mask, scale=scale)
    eager = reference.attention(q, k, v, causal=causal, key_padding_mask=mask, scale=scale,
                                upcast=False)
    assert_numerics(f"emulated decode ({splits} splits)", out, ref, eager)
    visible = reference.attention_visible_keys(queries, keys, causal=causal, key_padding_mask=mask)
    blind = ~visible.any(-1).expand(batch, heads, queries)
    assert (out[blind] == 0).all(), "a row that sees no key must be zeros"


def test_cases_cover_one_and_several_splits(driver, tmp_path):
    """The split rule, run on the host: short caches or few SMs give one split (the split kernel
    writes the output), long ones on many SMs several (the combine kernel runs)."""
    counts = {}
    for sms, keys in ((132, 40), (132, 4096)):
        q = torch.randn(1, 4, 1, 64).half()
        k = v = torch.randn(1, 4, keys, 64).half()
        splits, out = run_decode(driver, tmp_path, q, k, v, keys=keys, causal=False, mask=None,
                                   scale=0.125, sm_count=sms)
        counts[keys] = splits
        ref = reference.attention(q.double(), k.double(), v.double(), scale=0.125)
        eager = reference.attention(q, k, v, scale=0.125, upcast=False)
        assert_numerics(f"{keys} keys", out, ref, eager)
    assert counts[40] == 1 and counts[4096] > 1, counts
