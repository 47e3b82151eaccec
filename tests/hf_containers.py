"""Modules that hold BERT or GPT-2 models, patched as a whole (cpu and gpu tiers): a BERT2BERT and
a BERT2GPT2 EncoderDecoderModel (the decoders with cross-attention), and a user's own wrapper
(a BertModel under a mean-pooling classifier). fastattn.patch(container) patches each outermost
model inside; the results must match the unpatched container: outputs on real tokens, the loss,
every gradient, greedy generation, and unpatch.
"""

import huggingface_hub
import huggingface_hub.errors
import pytest
import torch
import transformers
from transformers import BertLMHeadModel, BertModel, EncoderDecoderModel, GPT2LMHeadModel

import fastattn
import hf_cases
import hf_models
from fastattn.nn import adoption
from numerics import assert_grad_numerics, assert_numerics

BATCH, SOURCE_LEN, TARGET_LEN = 3, 11, 7
DECODERS = ("bert", "gpt2")
# transformers 5.4 with a newer huggingface_hub cannot build an EncoderDecoderModel at all: its
# config fails the hub's strict validation (is_encoder_decoder=True where an int is declared).
_STOCK_CONFIG_ERROR = getattr(huggingface_hub.errors, "StrictDataclassError", ())


def encoder_decoder(decoder):
    """An EncoderDecoderModel with a BERT encoder and a `decoder` ("bert" or "gpt2") decoder."""
    encoder = hf_models.make_model(BertModel, hf_models.bert_config())
    if decoder == "bert":
        config = hf_models.bert_config(is_decoder=True, add_cross_attention=True)
        decoder_model = hf_models.make_model(BertLMHeadModel, config, seed=1)
    else:
        config = hf_models.gpt2_config(add_cross_attention=True)
        decoder_model = hf_models.make_model(GPT2LMHeadModel, config, seed=1)
    try:
        model = EncoderDecoderModel(encoder=encoder, decoder=decoder_model).eval()
    except _STOCK_CONFIG_ERROR as error:  # stock transformers, before fastattn is involved
        pytest.skip(f"transformers {transformers.__version__} with huggingface_hub "
                    f"{huggingface_hub.__version__} cannot build an EncoderDecoderModel: {error}")
    model.config.decoder_start_token_id = 1
    model.config.pad_token_id = 0
    model.generation_config.decoder_start_token_id = 1
    model.generation_config.pad_token_id = 0
    return model


def bert_and_gpt2():
    """The simplest holder: a ModuleDict of a BertModel ("encoder") and a GPT2LMHeadModel
    ("decoder"), for the tests of patch's bookkeeping on every transformers version."""
    return torch.nn.ModuleDict({
        "encoder": hf_models.make_model(BertModel, hf_models.bert_config()),
        "decoder": hf_models.make_model(GPT2LMHeadModel, hf_models.gpt2_config(), seed=1)})


class MeanPooledClassifier(torch.nn.Module):
    """What users write around a BertModel: mean over real tokens, then a linear layer."""

    def __init__(self):
        super().__init__()
        self.encoder = hf_models.make_model(BertModel, hf_models.bert_config())
        self.classifier = torch.nn.Linear(self.encoder.config.hidden_size, 3)

    def forward(self, input_ids, attention_mask):
        hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        weights = attention_mask.unsqueeze(-1).to(hidden.dtype)
        return self.classifier((hidden * weights).sum(1) / weights.sum(1))


def adopted_count(model):
    return sum(adoption.is_adopted(m) for m in model.modules())


def _seq2seq_inputs(device):
    source_mask = hf_models.attention_mask(BATCH, SOURCE_LEN, "holes")
    target_mask = hf_models.attention_mask(BATCH, TARGET_LEN, "right", seed=1)
    labels = torch.where(target_mask.bool(), hf_models.input_ids(BATCH, TARGET_LEN, seed=2), -100)
    kwargs = dict(input_ids=hf_models.input_ids(BATCH, SOURCE_LEN).to(device),
                  attention_mask=source_mask.to(device),
                  decoder_attention_mask=target_mask.to(device), labels=labels.to(device))
    return kwargs, target_mask.bool().to(device)


def _check_grads(models, losses):
    got, ref, eager = (hf_cases.named_grads(m, loss) for m, loss in zip(models, losses))
    assert got and got.keys() == ref.keys()
    for name in got:
        assert_grad_numerics(f"grad {name}", got[name], ref[name], eager[name])


def check_encoder_decoder(decoder, device, dtype, backend):
    """Both halves patched; logits on real target tokens, the loss and every gradient."""
    model = encoder_decoder(decoder)
    ref, eager, patched = hf_models.variants(model, device, dtype, backend)
    # Every block of both halves adopted (the decoder's cross-attention blocks included).
    layers = len(model.encoder.encoder.layer) + model.decoder.config.num_hidden_layers
    assert adopted_count(patched) >= layers
    kwargs, real = _seq2seq_inputs(device)
    outputs = [m(**kwargs) for m in (patched, ref, eager)]
    assert_numerics("logits", *(o.logits[real] for o in outputs))
    assert_numerics("loss", *(o.loss for o in outputs))
    _check_grads((patched, ref, eager), [o.loss for o in outputs])


def check_encoder_decoder_generation(decoder, device, dtype, backend, new_tokens=6):
    """Greedy generation from the encoder's padded batch (float32): the same tokens and logits
    as unpatched."""
    model = encoder_decoder(decoder)
    _, eager, patched = hf_models.variants(model, device, dtype, backend)
    kwargs, _ = _seq2seq_inputs(device)
    inputs = dict(input_ids=kwargs["input_ids"], attention_mask=kwargs["attention_mask"],
                  max_new_tokens=new_tokens, min_new_tokens=new_tokens, do_sample=False,
                  return_dict_in_generate=True, output_logits=True)
    with torch.no_grad():
        expected, got = (m.generate(**inputs) for m in (eager, patched))
    hf_cases.assert_same_generation(got, expected, f"bert2{decoder}")


def check_wrapper_training(device, dtype, backend):
    """A user's module holding a BertModel: outputs and every gradient, the classifier's too."""
    model = MeanPooledClassifier()
    ref, eager, patched = hf_models.variants(model, device, dtype, backend)
    assert adopted_count(patched) >= len(model.encoder.encoder.layer)
    ids = hf_models.input_ids(BATCH, SOURCE_LEN).to(device)
    mask = hf_models.attention_mask(BATCH, SOURCE_LEN, "left").to(device)
    target = torch.tensor([0, 2, 1], device=device)
    logits = [m(ids, mask) for m in (patched, ref, eager)]
    assert_numerics("logits", *logits)
    losses = [torch.nn.functional.cross_entropy(x, target) for x in logits]
    _check_grads((patched, ref, eager), losses)


def check_unpatch_restores(device):
    model = bert_and_gpt2().to(device)
    parts = (model["encoder"], model["decoder"])
    originals = [part.config._attn_implementation for part in parts]
    fastattn.patch(model)
    assert [part.config._attn_implementation for part in parts] == ["fastattn"] * 2
    assert adopted_count(model) > 0
    fastattn.unpatch(model)
    assert adopted_count(model) == 0
    assert [part.config._attn_implementation for part in parts] == originals
