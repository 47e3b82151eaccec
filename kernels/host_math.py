"""Integer arithmetic for the launchers' host code.

triton.cdiv and triton.next_power_of_2 are Triton constexpr functions: called from Python they go
through JITFunction.__call__, about 5 microseconds a call on our CPU machine (triton 3.8), and an
attention launch computed nine of them.
"""


def ceil_div(a, b):
    """ceil(a / b) for integers, b > 0."""
    return -(-a // b)


def next_power_of_2(n):
    """The smallest power of two >= n (1 for n <= 1); triton.next_power_of_2 without its JIT call."""
    return 1 if n <= 1 else 1 << (n - 1).bit_length()
