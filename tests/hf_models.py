"""Tiny Hugging Face BERT-style and GPT2-style models and padded batches for the patching tests
(cpu and gpu tiers).

Sizes follow transformers' own model testers (hidden 32, 4 heads, odd intermediate size) except
the hidden size: 64, so the head dim is 16, the smallest fastattn's attention takes (the testers'
head dim 8 is refused by fastattn.patch, which a test checks).
"""

import copy

import torch
import transformers
from transformers import BertConfig, GPT2Config

import fastattn

VOCAB = 99
MASK_PATTERNS = ("none", "right", "left", "holes")


def bert_config(**overrides):
    values = dict(vocab_size=VOCAB, hidden_size=64, num_hidden_layers=3, num_attention_heads=4,
                  intermediate_size=37, max_position_embeddings=512, type_vocab_size=2,
                  hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0, pad_token_id=0)
    values.update(overrides)
    return BertConfig(**values)


# The BERT-style families fastattn.patch takes (their encoder layers compute BERT's layer), by the
# prefix of their transformers class names.
ENCODER_FAMILIES = {"bert": "Bert", "roberta": "Roberta", "xlm_roberta": "XLMRoberta",
                    "camembert": "Camembert", "electra": "Electra", "ernie": "Ernie",
                    "distilbert": "DistilBert"}


def encoder_config(family, **overrides):
    """bert_config's sizes in the family's config class (ELECTRA: with its embedding projection,
    embeddings narrower than the hidden size; DistilBERT: under its own names)."""
    if family == "distilbert":
        values = dict(vocab_size=VOCAB, dim=64, n_layers=3, n_heads=4, hidden_dim=37,
                      max_position_embeddings=512, dropout=0.0, attention_dropout=0.0,
                      activation="gelu", pad_token_id=0, qa_dropout=0.0, seq_classif_dropout=0.0)
        values.update(overrides)
        return transformers.DistilBertConfig(**values)
    values = bert_config().to_dict()
    values = {key: values[key] for key in ("vocab_size", "hidden_size", "num_hidden_layers",
                                           "num_attention_heads", "intermediate_size",
                                           "max_position_embeddings", "type_vocab_size",
                                           "hidden_dropout_prob", "attention_probs_dropout_prob",
                                           "pad_token_id")}
    if family == "electra":
        values["embedding_size"] = 48
    values.update(overrides)
    return getattr(transformers, ENCODER_FAMILIES[family] + "Config")(**values)


def encoder_class(family, suffix="Model"):
    """transformers' `<family prefix><suffix>` class: the base model, or a head such as
    "ForMaskedLM"."""
    return getattr(transformers, ENCODER_FAMILIES[family] + suffix)


def gpt2_config(**overrides):
    values = dict(vocab_size=VOCAB, n_embd=64, n_layer=3, n_head=4, n_positions=512,
                  resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0, pad_token_id=0,
                  bos_token_id=VOCAB - 1, eos_token_id=VOCAB - 1)
    values.update(overrides)
    return GPT2Config(**values)


# The GPT-2-style decoder families fastattn.patch takes, by the prefix of their transformers class
# names and the config overrides of a variant: GPTBigCode with one key/value head (multi-query,
# its default) and with one per head.
DECODER_FAMILIES = {"gpt2": ("GPT2", {}), "gpt_bigcode": ("GPTBigCode", {}),
                    "gpt_bigcode_mha": ("GPTBigCode", {"multi_query": False})}
# The causal LM head's class name after the family's prefix.
CAUSAL_LM_SUFFIX = {"GPT2": "LMHeadModel", "GPTBigCode": "ForCausalLM"}


def decoder_config(family, **overrides):
    """gpt2_config's sizes in the family's config class."""
    prefix, variant = DECODER_FAMILIES[family]
    values = gpt2_config().to_dict()
    values = {key: values[key] for key in ("vocab_size", "n_embd", "n_layer", "n_head",
                                           "n_positions", "resid_pdrop", "embd_pdrop",
                                           "attn_pdrop", "pad_token_id", "bos_token_id",
                                           "eos_token_id")}
    values.update(variant)
    values.update(overrides)
    return getattr(transformers, prefix + "Config")(**values)


def decoder_class(family, suffix=None):
    """transformers' `<family prefix><suffix>` class; suffix None: the causal LM head."""
    prefix = DECODER_FAMILIES[family][0]
    return getattr(transformers, prefix + (suffix or CAUSAL_LM_SUFFIX[prefix]))


def is_causal_lm(model_class):
    """Whether model_class is a decoder family's causal LM head (GPT2LMHeadModel, ...)."""
    return any(model_class is decoder_class(family) for family in DECODER_FAMILIES)


def make_model(model_class, config, seed=0):
    """A randomly initialised model, the same for a given seed, in eval mode."""
    torch.manual_seed(seed)
    return model_class(config).eval()


def attention_mask(batch, seqlen, pattern, seed=0):
    """long [B, S] HF attention mask (1 = real token). Lengths differ per row; "holes" leaves
    padding inside the sequence. Every row keeps at least one real token."""
    generator = torch.Generator().manual_seed(seed)
    mask = torch.ones(batch, seqlen, dtype=torch.long)
    if pattern == "none":
        return mask
    lengths = torch.randint(1, seqlen + 1, (batch,), generator=generator)
    lengths[0] = seqlen  # one full row, as in a real batch
    for b, length in enumerate(lengths.tolist()):
        if pattern == "right":
            mask[b, length:] = 0
        elif pattern == "left":
            mask[b, :seqlen - length] = 0
        elif pattern == "holes":
            mask[b] = (torch.rand(seqlen, generator=generator) < 0.7).long()
            mask[b, 0] = 1
        else:
            raise ValueError(pattern)
    return mask


def input_ids(batch, seqlen, seed=0):
    generator = torch.Generator().manual_seed(seed)
    return torch.randint(1, VOCAB, (batch, seqlen), generator=generator)


def variants(model, device, dtype, backend=None):
    """(ref, eager, patched) copies of `model`: the unpatched model in float64 (the oracle), the
    unpatched model in the test dtype, and the patched model in the test dtype."""
    ref = copy.deepcopy(model).to(device, torch.float64)
    eager = copy.deepcopy(model).to(device, dtype)
    patched = fastattn.patch(copy.deepcopy(model).to(device, dtype), backend=backend)
    return ref, eager, patched


def compile_patched(stock, patched, compile_backend, *args, **kwargs):
    """torch.compile(patched, fullgraph=True), checked to trace on (args, kwargs).

    Where the stock model cannot compile with fullgraph=True itself (transformers' own code breaks
    the graph: 5.17's output capturing calls ContextVar.get, which dynamo cannot trace), fullgraph
    cannot hold for the patched one either; then the patched model must break the graph no more
    often than the stock model (fastattn adds no break), and it is compiled with breaks allowed."""
    torch._dynamo.reset()
    try:
        with torch.no_grad():
            torch.compile(stock, fullgraph=True, backend="eager")(*args, **kwargs)
        fullgraph = True
    except torch._dynamo.exc.Unsupported:
        fullgraph = False
    torch._dynamo.reset()
    if not fullgraph:
        with torch.no_grad():
            stock_breaks = torch._dynamo.explain(stock)(*args, **kwargs).graph_break_count
            patched_breaks = torch._dynamo.explain(patched)(*args, **kwargs).graph_break_count
        assert patched_breaks <= stock_breaks, (
            f"the patched model breaks the graph {patched_breaks} times, the stock one {stock_breaks}")
        torch._dynamo.reset()
    return torch.compile(patched, fullgraph=fullgraph, backend=compile_backend)
