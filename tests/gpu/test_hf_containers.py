"""Modules holding BERT or GPT-2 models (EncoderDecoderModel, a user's wrapper), patched as a
whole on a GPU: every backend, every dtype (tests/hf_containers.py)."""

import pytest
import torch

import hf_containers


@pytest.mark.parametrize("decoder", hf_containers.DECODERS)
def test_encoder_decoder_outputs_loss_and_gradients(decoder, device, dtype, backend):
    hf_containers.check_encoder_decoder(decoder, device, dtype, backend)


@pytest.mark.parametrize("decoder", hf_containers.DECODERS)
def test_encoder_decoder_greedy_generation(decoder, device, backend):
    # float32 only, as for GPT-2 alone: in 16-bit types a near-tie of two logits may round
    # either way
    hf_containers.check_encoder_decoder_generation(decoder, device, torch.float32, backend)


def test_a_users_wrapper_trains_the_same(device, dtype, backend):
    hf_containers.check_wrapper_training(device, dtype, backend)
