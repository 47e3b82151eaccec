"""compile tier: kernels built ahead of time for sm_80 and sm_90 without a GPU. No torch here."""

import os
import sys

import pytest

# The Triton kernels are imported from the source folder as the top-level package `kernels`.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))


@pytest.fixture(scope="module")
def variant_reports(request):
    """Futures of the builds of every test of the requesting module, started at once in worker
    processes: the module's build_variant(key) makes each report, keyed by the test parameters
    the module's BUILD_KEY names (default: variant, dtype, arch)."""
    from triton_aot import module_builds

    names = getattr(request.module, "BUILD_KEY", ("variant", "dtype", "arch"))
    with module_builds(request, request.module.build_variant, names) as futures:
        yield futures
