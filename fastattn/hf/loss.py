"""The causal-LM loss of patched models: Hugging Face's ForCausalLMLoss without its float32 copy of
the logits (fastattn.nn.cross_entropy), the same labels shift, ignore_index and reductions."""

import functools

import torch.nn.functional as F

from ..nn.cross_entropy import per_token_cross_entropy

MARKER = "_fastattn_loss"


def causal_lm_loss(logits, labels, vocab_size, num_items_in_batch=None, ignore_index=-100,
                   shift_labels=None, *, backend=None, **kwargs):
    """Mean cross-entropy of token t's logits against token t + 1 (shift_labels, when given, are
    the targets already shifted); summed and divided by num_items_in_batch when that is given."""
    if shift_labels is None:
        shift_labels = F.pad(labels, (0, 1), value=ignore_index)[..., 1:]
    target = shift_labels.reshape(-1).to(logits.device)
    losses = per_token_cross_entropy(logits.reshape(-1, vocab_size), target, ignore_index, backend)
    if num_items_in_batch is None:
        return losses.sum() / (target != ignore_index).sum()
    if hasattr(num_items_in_batch, "to"):
        num_items_in_batch = num_items_in_batch.to(losses.device)
    return losses.sum() / num_items_in_batch


def adopt_loss(model, backend):
    """Give a causal LM whose loss is transformers' ForCausalLMLoss this module's loss instead."""
    from transformers.loss.loss_utils import ForCausalLMLoss

    current = getattr(model, "_loss_function", None)
    if current is None:
        if (getattr(model, "loss_type", None) not in (None, "ForCausalLM")
                or getattr(model, "get_output_embeddings", lambda: None)() is None):
            return  # not a language model head, or another loss (masked LM, classification)
        chooser = getattr(type(model), "loss_function", None)  # a property in transformers 5.x
        if not isinstance(chooser, property) or chooser.fget(model) is not ForCausalLMLoss:
            return
    elif not getattr(current, MARKER, False):
        return  # the user's own loss function stays
    loss = functools.partial(causal_lm_loss, backend=backend)
    setattr(loss, MARKER, True)
    model.loss_function = loss


def release_loss(model):
    if getattr(getattr(model, "_loss_function", None), MARKER, False):
        del model._loss_function
