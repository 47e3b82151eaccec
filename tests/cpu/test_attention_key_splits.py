"""kernels.attention_settings.key_splits: when the decode path splits a query block's keys over
programs (and pays a second launch to combine them)."""

from fastattn.kernels import attention_settings as settings
from fastattn.kernels.host_math import ceil_div

H100_SLOTS = 132 * 2  # SMs x programs per SM, as the launcher computes it


def _covers(splits, keys_per_split, seqlen_k, block_n):
    return (keys_per_split % block_n == 0 and splits * keys_per_split >= seqlen_k
            and (splits - 1) * keys_per_split < max(seqlen_k, 1))


def test_short_caches_are_not_split():
    """GPT2-small generating at batch 1: 12 heads, a cache of at most 32 + 256 keys."""
    for seqlen_k in (1, 33, 288, 64 * (settings.MIN_KEY_BLOCKS_TO_SPLIT - 1)):
        splits, keys_per_split = settings.key_splits(12, seqlen_k, 64, H100_SLOTS)
        assert splits == 1 and _covers(splits, keys_per_split, seqlen_k, 64), seqlen_k


def test_long_caches_with_few_heads_are_split():
    for block_n in (32, 64):
        splits, keys_per_split = settings.key_splits(32, 4096, block_n, H100_SLOTS)
        assert 1 < splits <= settings.MAX_KEY_SPLITS
        assert keys_per_split >= settings.MIN_BLOCKS_PER_SPLIT * block_n
        assert _covers(splits, keys_per_split, 4096, block_n)


def test_a_full_gpu_is_not_split():
    assert settings.key_splits(16 * 32, 32768, 32, H100_SLOTS)[0] == 1


def test_the_test_suites_decode_cases_still_split_under_the_interpreter():
    """tests/attn_suite.py's decode cases (Sk 1000 at D=64, Sk 700 at D=32) exercise the split
    and combine kernels under the interpreter's pretend GPU of 4 SMs, in float32 and float16."""
    slots = 4 * 2
    for query_programs, seqlen_k, head_dim in ((2, 1000, 64), (4, 700, 32)):
        for is_fp32 in (True, False):
            block_n = settings.decode_tiles(head_dim, is_fp32).block_n
            assert ceil_div(seqlen_k, block_n) >= settings.MIN_KEY_BLOCKS_TO_SPLIT
            assert settings.key_splits(query_programs, seqlen_k, block_n, slots)[0] > 1


def test_splitting_starts_at_the_threshold():
    blocks = settings.MIN_KEY_BLOCKS_TO_SPLIT
    assert settings.key_splits(12, 64 * (blocks - 1), 64, H100_SLOTS)[0] == 1
    assert settings.key_splits(12, 64 * blocks, 64, H100_SLOTS)[0] > 1


def test_the_fronts_copies_of_kernel_constants_match():
    """fastattn.ops.attention cannot import kernels/ (triton may be absent) and keeps copies."""
    from fastattn.ops import attention

    assert attention.TRITON_HEAD_DIMS == settings.HEAD_DIMS
    assert attention.DECODE_QUERIES == settings.DECODE_BLOCK_M
