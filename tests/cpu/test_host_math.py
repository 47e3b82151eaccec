"""The launchers' integer helpers agree with Triton's own (which they replace on the host because
each call of those goes through Triton's JIT machinery)."""

import triton

from fastattn.kernels.host_math import ceil_div, next_power_of_2


def test_ceil_div_matches_triton():
    for a in range(0, 600):
        for b in (1, 2, 3, 16, 64, 127, 128):
            assert ceil_div(a, b) == triton.cdiv(a, b), (a, b)


def test_next_power_of_2_matches_triton():
    for n in range(1, 70000, 7):
        assert next_power_of_2(n) == triton.next_power_of_2(n), n
    assert [next_power_of_2(n) for n in (1, 2, 3, 4, 5, 1023, 1024, 1025)] == [1, 2, 4, 4, 8, 1024, 1024, 2048]
