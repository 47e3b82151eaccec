"""A model on cuda:1 while cuda:0 is the current device (torch's default): every backend computes on
the tensors' GPU (Triton alone would launch on the current one: fastattn.backends._device.
on_inputs_device). Needs two GPUs; skipped with the reason on one."""

import pytest
import torch

import hf_cases


@pytest.fixture
def second_gpu(device):  # device: skips a backend this machine cannot run, with its reason
    if torch.cuda.device_count() < 2:
        pytest.skip(f"needs two GPUs, this machine has {torch.cuda.device_count()}")
    previous = torch.cuda.current_device()
    torch.cuda.set_device(0)
    yield torch.device("cuda", 1)
    assert torch.cuda.current_device() == 0, "an op left another GPU current"
    torch.cuda.set_device(previous)


def test_bert_on_the_second_gpu(second_gpu, backend):
    hf_cases.check_bert_outputs(second_gpu, torch.bfloat16, backend, "holes", 113, batch=4)
    hf_cases.check_bert_grads(second_gpu, torch.bfloat16, backend, seqlen=113)


def test_gpt2_on_the_second_gpu(second_gpu, backend):
    hf_cases.check_gpt2_grads(second_gpu, torch.bfloat16, backend, seqlen=113)
    hf_cases.check_greedy_generation(second_gpu, torch.float32, backend, batch=4, new_tokens=8)
