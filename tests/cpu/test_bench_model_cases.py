"""The model benchmark's cases ask for what their names say (benchmarks/test_models.py)."""

import pytest

import bench_fakes  # noqa: F401  (puts the checkout's benchmarks/ on sys.path)
from benchmarks import test_models as model_cases

GENERATION_VARIANTS = [variant for _model, direction, variant in model_cases.CASES
                       if direction == "generate"]


@pytest.mark.parametrize("variant", GENERATION_VARIANTS)
def test_a_generation_case_runs_the_batch_its_name_gives(variant):
    # "B=16 static" once ran at B=1: the batch was looked up with startswith("B=1").
    named = int(variant.split()[0].removeprefix("B="))
    assert model_cases.generation_batch(variant, model_cases.GPU_SIZES) == named
    cpu_batch = model_cases.generation_batch(variant, model_cases.CPU_SIZES)
    assert cpu_batch == (1 if named == 1 else max(model_cases.CPU_SIZES["generate_batches"]))


@pytest.mark.parametrize("direction,variant,padding", [
    ("fwd", "padded", "right"), ("fwd", "padded compiled", "right"), ("fwd", "latency", None),
    ("generate", "B=16 padded", "left"), ("generate", "B=16", None), ("train", "train", None)])
def test_each_case_pads_where_its_name_says(direction, variant, padding):
    assert model_cases.case_padding(direction, variant) == padding


def test_padded_generation_prompts_are_left_padded():
    ids, mask, lengths = model_cases.padded_batch(16, 32, "cpu", "left")
    assert ids.shape == mask.shape == (16, 32) and min(lengths) < 32
    for row, length in zip(mask.tolist(), lengths):
        assert row == [0] * (32 - length) + [1] * length


def test_the_padded_bert_batch_is_right_padded():
    _ids, mask, lengths = model_cases.padded_batch(16, 64, "cpu", "right")
    assert min(lengths) < 64
    for row, length in zip(mask.tolist(), lengths):
        assert row == [1] * length + [0] * (64 - length)
