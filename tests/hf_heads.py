"""Every task head of BERT, of the other BERT-style families (RoBERTa, XLM-RoBERTa, CamemBERT,
ELECTRA, ERNIE, DistilBERT), of GPT2 and of GPTBigCode that the installed transformers has, patched
against unpatched: the outputs and every parameter's gradient (cpu and gpu tiers).

fastattn.patch swaps the blocks under any head, so each head must come out the same: the heads
reshape their inputs (multiple choice: [B, choices, S] folded into the batch), pool position 0
(BERT's pooler), pick a token by index (GPT2's sequence classification and double heads) or
return per-token outputs. The heads are looked up by name in the installed transformers, so a head
that a later version adds is checked too.

Masks have holes with position 0 real: BERT's pooler reads position 0, and what a padded position
holds differs by design (patched BERT writes zeros there), so per-token outputs are compared on
real tokens only.
"""

import pytest
import torch
import transformers

import hf_models
from numerics import assert_grad_numerics, assert_numerics

BATCH, SEQLEN, CHOICES, LABELS = 3, 11, 2, 3
# Heads every transformers version the package supports has: the lookup below must find them.
KNOWN_HEADS = ("BertForMaskedLM", "BertForSequenceClassification", "BertForMultipleChoice",
               "BertForTokenClassification", "BertForQuestionAnswering",
               "BertForNextSentencePrediction", "BertForPreTraining", "BertLMHeadModel",
               "GPT2LMHeadModel", "GPT2DoubleHeadsModel", "GPT2ForSequenceClassification",
               "GPT2ForTokenClassification", "GPT2ForQuestionAnswering")


KNOWN_HEADS += tuple(prefix + head for prefix in ("Roberta", "XLMRoberta", "Camembert")
                     for head in ("ForMaskedLM", "ForSequenceClassification", "ForCausalLM"))
KNOWN_HEADS += ("ElectraForMaskedLM", "ElectraForPreTraining", "ElectraForSequenceClassification",
                "DistilBertForMaskedLM", "DistilBertForSequenceClassification",
                "DistilBertForQuestionAnswering", "ErnieForMaskedLM", "ErnieForCausalLM",
                "ErnieForSequenceClassification", "GPTBigCodeForCausalLM",
                "GPTBigCodeForSequenceClassification", "GPTBigCodeForTokenClassification")


def head_names(other_families=True):
    """Names of the BERT-style and GPT2-style models with a task head in the installed
    transformers; other_families=False: BERT's and GPT2's only."""
    names = [name for name in dir(transformers)
             if name.startswith(("BertFor", "GPT2For"))
             or name in ("BertLMHeadModel", "GPT2LMHeadModel", "GPT2DoubleHeadsModel")]
    if other_families:
        others = tuple(prefix + "For" for family, prefix in hf_models.ENCODER_FAMILIES.items()
                       if family != "bert") + ("GPTBigCodeFor",)
        names += [name for name in dir(transformers) if name.startswith(others)]
    return sorted(names)


def _config(name):
    overrides = {"num_labels": 2 if "QuestionAnswering" in name else LABELS}
    if name.startswith(("GPT2", "GPTBigCode")):
        # Dropout in the heads' own layers (the summary and classifier dropouts) off too: the
        # patched and unpatched models would draw different masks.
        overrides.update(summary_first_dropout=0.0, classifier_dropout=0.0)
        family = "gpt2" if name.startswith("GPT2") else "gpt_bigcode"
        return hf_models.decoder_config(family, **overrides)
    family = next(family for family, prefix in hf_models.ENCODER_FAMILIES.items()
                  if name.startswith(prefix + "For") or name == prefix + "LMHeadModel")
    if family != "distilbert":  # DistilBERT's head dropouts are off in encoder_config
        overrides.update(classifier_dropout=0.0)
    return hf_models.encoder_config(family, **overrides)


def _inputs(name, device):
    """kwargs for the head, and the bool mask of real tokens in the layout of its per-token outputs."""
    ids = hf_models.input_ids(BATCH, SEQLEN)
    mask = hf_models.attention_mask(BATCH, SEQLEN, "holes")
    kwargs = {}
    if "MultipleChoice" in name or "DoubleHeads" in name:  # [B, choices, S]
        ids = torch.stack([ids, hf_models.input_ids(BATCH, SEQLEN, seed=1)], dim=1)
        mask = torch.stack([mask, hf_models.attention_mask(BATCH, SEQLEN, "holes", seed=1)], dim=1)
    if "DoubleHeads" in name:  # the token each choice is classified from; may be a padded one
        kwargs["mc_token_ids"] = torch.tensor([[SEQLEN - 1, 4]] * BATCH, device=device)
    kwargs.update(input_ids=ids.to(device), attention_mask=mask.to(device))
    return kwargs, mask.bool().to(device)


def _real_part(tensor, real):
    """Per-token outputs ([*mask.shape, ...]) at real tokens only; other outputs whole."""
    if tensor.shape[:real.dim()] == real.shape:
        return tensor[real]
    return tensor


def _outputs(model, kwargs, real):
    """name -> float output tensor (real tokens only) of model(**kwargs)."""
    out = model(**kwargs)
    return {key: _real_part(value, real) for key, value in out.items()
            if isinstance(value, torch.Tensor) and value.is_floating_point()}


def _weighted_sum(outputs):
    """A loss that gives every output element its own gradient."""
    total = 0
    for value in outputs.values():
        weights = torch.linspace(-1, 1, value.numel(), device=value.device, dtype=value.dtype)
        total = total + (value * weights.reshape(value.shape)).sum()
    return total


def check_head(name, device, dtype, backend):
    model = hf_models.make_model(getattr(transformers, name), _config(name))
    kwargs, real = _inputs(name, device)
    ref, eager, patched = hf_models.variants(model, device, dtype, backend)
    for m in (ref, eager, patched):
        m.train()  # the configs have no dropout: train mode only turns on autograd's saving
    try:
        expected = _outputs(ref, kwargs, real)
    except Exception as error:  # noqa: BLE001 - whatever transformers raises, it is not fastattn's
        # transformers 5.4's XLM-RoBERTa and CamemBERT multiple-choice heads read a pooler output
        # their base model was built without (IndexError), patched or not.
        pytest.skip(f"the unpatched {name} fails in transformers {transformers.__version__}: "
                    f"{type(error).__name__}: {error}")
    results = [_outputs(patched, kwargs, real), expected, _outputs(eager, kwargs, real)]
    got, expected, eager_outputs = results
    assert got.keys() == expected.keys() and got, f"{name}: outputs {sorted(got)} vs {sorted(expected)}"
    for key in got:
        assert_numerics(f"{name} {key}", got[key], expected[key], eager_outputs[key])
    grads = []
    for m, outputs in zip((patched, ref, eager), results):
        params = [(n, p) for n, p in m.named_parameters() if p.requires_grad]
        values = torch.autograd.grad(_weighted_sum(outputs), [p for _, p in params],
                                     allow_unused=True)
        grads.append({n: g for (n, _), g in zip(params, values) if g is not None})
    assert grads[0].keys() == grads[1].keys(), f"{name}: parameters that got gradients differ"
    for param in grads[0]:
        assert_grad_numerics(f"{name} grad {param}", grads[0][param], grads[1][param], grads[2][param])
