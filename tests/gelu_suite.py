"""The bias + GELU test suite. Each tier's test module imports these tests; the tier's conftest.py
supplies the `backend`, `dtype` and `device` parameters it can run."""

import pytest

import gelu_cases

try:
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st
except ImportError:  # the GPU machines have pytest but not hypothesis
    given = None


@pytest.mark.parametrize("shape", gelu_cases.SHAPES, ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("approximate", gelu_cases.APPROXIMATIONS)
def test_matches_reference(backend, device, dtype, shape, approximate):
    gelu_cases.check_case(backend, device, dtype, shape, approximate)


@pytest.mark.parametrize("layout", ["strided_rows", "transposed"])
def test_non_contiguous_inputs(backend, device, dtype, layout):
    gelu_cases.check_case(backend, device, dtype, (4, 6, 40), "tanh", layout=layout)


def test_bias_grad_is_deterministic(backend, device, dtype):
    gelu_cases.check_bias_grad_is_deterministic(backend, device, dtype)


def test_empty_batch(backend, device, dtype):
    gelu_cases.check_empty(backend, device, dtype)


if given is None:
    def test_property_random_shapes():
        pytest.skip("hypothesis is not installed: the property-based test needs it")
else:
    @settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(rows=st.integers(1, 40),
           hidden=st.one_of(st.integers(1, 300), st.sampled_from([511, 768, 1023, 1024, 2049])),
           approximate=st.sampled_from(gelu_cases.APPROXIMATIONS), seed=st.integers(0, 2**16))
    def test_property_random_shapes(backend, device, dtype, rows, hidden, approximate, seed):
        gelu_cases.check_case(backend, device, dtype, (rows, hidden), approximate, seed=seed)
