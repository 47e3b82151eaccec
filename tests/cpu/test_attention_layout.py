"""fastattn.backends._attention_layout: the host-side facts the Triton attention launchers pass to
the kernels (key bounds of a padding mask, the longest-first batch order)."""

import torch

from fastattn.backends import _attention_layout as layout


def test_longest_first_orders_rows_by_decreasing_length_ties_in_batch_order():
    order = layout.longest_first(torch.tensor([7, 0, 90, 57, 1, 57]))
    assert order.dtype == torch.int32
    assert order.tolist() == [2, 3, 5, 0, 4, 1]


def test_longest_first_of_equal_lengths_keeps_the_batch_order():
    assert layout.longest_first(torch.full((5,), 19)).tolist() == [0, 1, 2, 3, 4]


def test_padding_mask_order_goes_by_the_span_of_real_keys():
    """What the launcher orders a key-padding batch by: last real key - first real key (the key
    blocks the kernels visit), so a left-padded row ranks by its real tokens."""
    mask = torch.zeros(3, 10, dtype=torch.bool)
    mask[0, :3] = True  # right padded, 3 keys
    mask[1, 2:] = True  # left padded, 8 keys
    mask[2, [1, 6]] = True  # holes: a span of 6 keys
    bounds = layout.key_bounds(mask)
    assert bounds.tolist() == [[0, 3], [2, 10], [1, 7]]
    assert layout.longest_first(bounds[:, 1] - bounds[:, 0]).tolist() == [1, 2, 0]
