"""The masked softmax test suite. Each tier's test module imports these tests; the tier's
conftest.py supplies the `backend`, `dtype` and `device` parameters it can run."""

import pytest

import softmax_cases

try:
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st
except ImportError:  # the GPU machines have pytest but not hypothesis
    given = None


def shape_id(shape):
    return "x".join(map(str, shape))


@pytest.mark.parametrize("shape", softmax_cases.SHAPES, ids=shape_id)
def test_matches_reference(backend, device, dtype, shape):
    softmax_cases.check_case(backend, device, dtype, shape)


@pytest.mark.parametrize("shape", [(3, 2, 4, 37), (2, 1, 2, 4097)], ids=shape_id)
@pytest.mark.parametrize("pattern", softmax_cases.MASK_PATTERNS)
def test_key_padding_mask(backend, device, dtype, shape, pattern):
    softmax_cases.check_case(backend, device, dtype, shape, mask_pattern=pattern)


# Sq == Sk; Sq < Sk (KV-cache decoding); Sq > Sk (the first queries see nothing); long rows.
@pytest.mark.parametrize("queries,keys", [(7, 7), (3, 17), (9, 4), (2, 4097), (1, 16385)])
def test_causal(backend, device, dtype, queries, keys):
    softmax_cases.check_case(backend, device, dtype, (2, 2, queries, keys), causal=True)


@pytest.mark.parametrize("shape", [(3, 2, 6, 33), (2, 1, 2, 4097)], ids=shape_id)
def test_causal_with_holes_in_mask(backend, device, dtype, shape):
    softmax_cases.check_case(backend, device, dtype, shape, mask_pattern="holes", causal=True)


@pytest.mark.parametrize("layout", ["heads_last", "keys_strided"])
def test_non_contiguous_scores(backend, device, dtype, layout):
    softmax_cases.check_case(backend, device, dtype, (2, 3, 4, 40), mask_pattern="holes",
                             layout=layout)


@pytest.mark.parametrize("scale", [1.0, 0.0, -0.5, 2.5])
def test_scale(backend, device, dtype, scale):
    softmax_cases.check_case(backend, device, dtype, (2, 2, 3, 24), mask_pattern="right",
                             scale=scale)


def test_fully_hidden_rows_give_zeros(backend, device, dtype):
    softmax_cases.check_fully_hidden_rows(backend, device, dtype)


def test_empty_shapes(backend, device, dtype):
    softmax_cases.check_empty(backend, device, dtype)


if given is None:
    def test_property_random_shapes():
        pytest.skip("hypothesis is not installed: the property-based test needs it")
else:
    @settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(batch=st.integers(1, 3), heads=st.integers(1, 3), queries=st.integers(1, 9),
           keys=st.one_of(st.integers(1, 80), st.sampled_from([127, 256, 513, 2047, 2049])),
           pattern=st.sampled_from((None,) + softmax_cases.MASK_PATTERNS), causal=st.booleans(),
           scale=st.floats(-2.0, 2.0), seed=st.integers(0, 2**16))
    def test_property_random_shapes(backend, device, dtype, batch, heads, queries, keys, pattern,
                                    causal, scale, seed):
        softmax_cases.check_case(backend, device, dtype, (batch, heads, queries, keys),
                                 mask_pattern=pattern, causal=causal, scale=scale, seed=seed)
