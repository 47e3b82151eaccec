"""The LayerNorm + residual test suite. Each tier's test module imports these tests; the tier's
conftest.py supplies the `backend`, `dtype` and `device` parameters it can run."""

import pytest

import lnr_cases

try:
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st
except ImportError:  # the GPU machines have pytest but not hypothesis
    given = None


@pytest.mark.parametrize("shape", lnr_cases.SHAPES, ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("return_residual", [False, True], ids=["y", "y_and_h"])
def test_matches_reference(backend, device, dtype, shape, return_residual):
    lnr_cases.check_case(backend, device, dtype, shape, return_residual=return_residual)


@pytest.mark.parametrize("shape", [(7, 33), (2, 3, 1023)], ids=["7x33", "2x3x1023"])
def test_plain_layer_norm_without_residual(backend, device, dtype, shape):
    lnr_cases.check_case(backend, device, dtype, shape, with_residual=False, return_residual=True)


@pytest.mark.parametrize("layout", ["strided_rows", "transposed"])
def test_non_contiguous_inputs(backend, device, dtype, layout):
    lnr_cases.check_case(backend, device, dtype, (4, 9, 130), layout=layout, return_residual=True)


@pytest.mark.parametrize("eps", [1e-12, 0.1])
def test_eps(backend, device, dtype, eps):
    lnr_cases.check_case(backend, device, dtype, (9, 200), eps=eps)


# 9000 columns: wider than rows held in registers (kernels.row_settings), walked in chunks.
@pytest.mark.parametrize("hidden", [40, 9000])
def test_constant_rows_give_bias(backend, device, dtype, hidden):
    lnr_cases.check_constant_rows(backend, device, dtype, hidden)


def test_row_with_drifting_mean(backend, device, dtype):
    lnr_cases.check_row_with_drifting_mean(backend, device, dtype)


@pytest.mark.parametrize("shape", [(37, 300), (3, 9000)], ids=["37x300", "3x9000"])
@pytest.mark.parametrize("with_residual", [False, True], ids=["no_residual", "residual"])
def test_dropout_matches_reference(backend, device, dtype, with_residual, shape):
    lnr_cases.check_dropout_against_reference(backend, device, dtype, with_residual, shape=shape)


def test_dropout_mask_is_the_shared_philox_stream(backend, device):
    if backend not in lnr_cases.PHILOX_BACKENDS:
        pytest.skip(f"the {backend} backend draws dropout from torch.Generator, not the Philox stream")
    lnr_cases.check_dropout_uses_shared_philox_stream(backend, device)


def test_dropout_statistics_and_repeatability(backend, device):
    lnr_cases.check_dropout_statistics(backend, device)


if given is None:
    def test_property_random_shapes():
        pytest.skip("hypothesis is not installed: the property-based test needs it")
else:
    @settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(rows=st.integers(1, 40),
           hidden=st.one_of(st.integers(1, 300), st.sampled_from([511, 768, 1023, 1024, 2049])),
           with_residual=st.booleans(), return_residual=st.booleans(),
           eps=st.sampled_from([1e-5, 1e-6, 1e-3]), seed=st.integers(0, 2**16))
    def test_property_random_shapes(backend, device, dtype, rows, hidden, with_residual,
                                    return_residual, eps, seed):
        lnr_cases.check_case(backend, device, dtype, (rows, hidden), with_residual=with_residual,
                             return_residual=return_residual, eps=eps, seed=seed)
