"""The fused FFN test suite. Each tier's test module imports these tests; the tier's conftest.py
supplies the `backend`, `dtype` and `device` parameters it can run."""

import pytest

import ffn_cases

try:
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st
except ImportError:  # the GPU machines have pytest but not hypothesis
    given = None


def _shape_id(case):
    x_shape, hidden, out = case
    return f"{'x'.join(map(str, x_shape))}-{hidden}-{out}"


@pytest.mark.parametrize("case", ffn_cases.SHAPES, ids=_shape_id)
@pytest.mark.parametrize("approximate", ffn_cases.APPROXIMATIONS)
def test_matches_reference(backend, device, dtype, case, approximate):
    ffn_cases.check_case(backend, device, dtype, *case, approximate)


def test_non_contiguous_inputs(backend, device, dtype):
    ffn_cases.check_case(backend, device, dtype, (3, 6, 40), 56, 24, "tanh", layout="transposed")


@pytest.mark.parametrize("approximate", ffn_cases.APPROXIMATIONS)
def test_without_grad(backend, device, dtype, approximate):
    ffn_cases.check_inference_matches_training(backend, device, dtype, approximate)


@pytest.mark.parametrize("approximate", ffn_cases.APPROXIMATIONS)
def test_dropout_matches_reference(backend, device, dtype, approximate):
    ffn_cases.check_dropout_against_reference(backend, device, dtype, approximate)


def test_dropout_mask_is_the_shared_philox_stream(backend, device):
    if backend not in ffn_cases.PHILOX_BACKENDS:
        pytest.skip(f"the {backend} backend draws dropout from torch.Generator, not the Philox stream")
    ffn_cases.check_dropout_uses_shared_philox_stream(backend, device)


def test_dropout_statistics_and_repeatability(backend, device):
    ffn_cases.check_dropout_statistics(backend, device)


def test_empty_batch(backend, device, dtype):
    ffn_cases.check_empty(backend, device, dtype)


if given is None:
    def test_property_random_shapes():
        pytest.skip("hypothesis is not installed: the property-based test needs it")
else:
    @settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(rows=st.integers(1, 24), width=st.integers(1, 80), hidden=st.integers(1, 80),
           out=st.integers(1, 80), approximate=st.sampled_from(ffn_cases.APPROXIMATIONS),
           seed=st.integers(0, 2**16))
    def test_property_random_shapes(backend, device, dtype, rows, width, hidden, out, approximate,
                                    seed):
        ffn_cases.check_case(backend, device, dtype, (rows, width), hidden, out, approximate, seed=seed)
