"""benchmarks/harness.py: what a case does when its implementation cannot run at the size asked."""

import pytest
import torch

import bench_fakes  # noqa: F401  (puts the checkout's benchmarks/ on sys.path)
from benchmarks import harness


def test_out_of_device_memory_is_a_visible_skip_not_a_failed_suite():
    def materialises_too_much():
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 17.00 GiB")

    with pytest.raises(pytest.skip.Exception, match="cuda ran out of device memory.*17.00 GiB"):
        harness.time_case(None, "cuda", torch.device("cpu"), materialises_too_much)


def test_other_errors_of_a_fastattn_backend_still_fail_the_case():
    def broken():
        raise RuntimeError("illegal memory access")

    with pytest.raises(RuntimeError, match="illegal memory access"):
        harness.time_case(None, "triton", torch.device("cpu"), broken)
