"""The triton backend's split-key decode path with many splits (up to settings.MAX_KEY_SPLITS),
written once and run by the interpret and gpu tiers. The combine kernel loads every split of its
rows in one tile, masks the splits past the count (BLOCK_SPLITS is the next power of two) and
weighs out the splits that saw no key of a row. The attention suite's decode cases split only a few
ways (the interpreter's pretend GPU has 8 program slots, and on a GPU their few keys limit the
splits); here the launcher is told of a GPU with as many slots as the case needs.

Forward against fastattn.reference, and the gradients: the backward recomputes the probabilities
from the log-sum-exp that the combine wrote, so they check it too."""

import pytest
import torch

import attn_cases
import fastattn.backends.triton_attention as triton_attention
from fastattn.kernels import attention_settings as settings

BATCH, HEADS = 2, 1


@pytest.fixture
def splits_taken(monkeypatch):
    """Records the split count of every launch's key_splits."""
    taken = []
    choose = settings.key_splits

    def key_splits(*args):
        result = choose(*args)
        taken.append(result[0])
        return result

    monkeypatch.setattr(settings, "key_splits", key_splits)
    return taken


# (splits, queries, head dim): 37 leaves 27 masked splits in its 64-split tile; 80 columns are
# masked in a 128-column tile; 3 queries make rows of one program in the combine.
CASES = [(3, 3, 16), (37, 1, 80), (settings.MAX_KEY_SPLITS, 3, 16)]


@pytest.mark.parametrize("splits, queries, head_dim", CASES,
                         ids=[f"{s}splits-{q}q-d{d}" for s, q, d in CASES])
def test_many_key_splits_combine_to_the_reference(monkeypatch, splits_taken, device, dtype, splits,
                                                   queries, head_dim):
    block_n = settings.decode_tiles(head_dim, dtype == torch.float32).block_n
    key_blocks = max(settings.MIN_BLOCKS_PER_SPLIT * splits, settings.MIN_KEY_BLOCKS_TO_SPLIT)
    seqlen_k = key_blocks * block_n - 5  # a partial last key block
    monkeypatch.setattr(triton_attention, "_program_slots", lambda device: splits * BATCH * HEADS)
    q, k, v = attn_cases.make_qkv(BATCH, HEADS, HEADS, queries, seqlen_k, head_dim, dtype, device,
                                  seed=splits)
    mask = torch.zeros(BATCH, seqlen_k, dtype=torch.bool, device=device)
    # Row 0: real keys at both ends only, so the splits in between see none of its keys; row 1
    # sees no key at all (its output and gradients are zeros).
    mask[0, :7] = True
    mask[0, -block_n:] = True
    attn_cases.check_dense("triton", q, k, v, causal=True, mask=mask)
    assert splits_taken and splits_taken[0] == splits
