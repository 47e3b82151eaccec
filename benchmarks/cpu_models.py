"""Patched Hugging Face models at real widths on the CPU, against the unpatched model with sdpa:
what a user without a GPU gets from `fastattn.patch` (the `torch` backend).

    python -m benchmarks.cpu_models [--threads N] [--rounds N] [--case NAME ...] [--tiny]

The cases (random weights from the models' configs):
- `minilm embed`: a 6-layer BERT of all-MiniLM-L6-v2's size (hidden 384) encoding a padded batch
  of 32 x 128 (lengths uniform in [0.2, 1] x 128), as sentence embedding does;
- `distilbert classify`: DistilBERT-base (6 layers, hidden 768) classifying the same kind of
  padded batch, as a text-classification pipeline does;
- `bert-base train`: BERT-base masked-LM forward + backward on a padded batch of 4 x 128;
- `gpt2-small train`: GPT2-small language-model forward + backward on 2 x 128 tokens (dropout on);
- `gpt2-small generate`: greedy generation of 16 tokens after a 32-token prompt, ms a token;
- `gpt2-small generate x4`: the same for 4 prompts left-padded to 32 (row b has 5 * b pad tokens),
  as batched generation pads them: every step carries a key padding mask.

Timing: the models run in alternating rounds in one process, the best round of each kept (this
machine's load varies between processes far more than between rounds: only a ratio measured this
way means much). Each case also checks that the patched model computes what the unpatched one does
(outputs on the real tokens, the loss, the generated tokens), so a fast wrong answer cannot pass.
`--tiny` shrinks every model to two narrow layers (for the tests; its times mean nothing).
"""

import argparse
import time

import torch

import fastattn

CASES = ("minilm embed", "distilbert classify", "bert-base train", "gpt2-small train",
         "gpt2-small generate", "gpt2-small generate x4")
IMPLS = ("sdpa", "fastattn")


def _configs(tiny):
    """(MiniLM-size BERT, BERT-base, DistilBERT-base, GPT2-small) configs, or tiny ones."""
    from transformers import BertConfig, DistilBertConfig, GPT2Config

    if tiny:
        small = dict(num_hidden_layers=2, num_attention_heads=4, hidden_size=32,
                     intermediate_size=64, vocab_size=1000)
        return (BertConfig(**small), BertConfig(**small),
                DistilBertConfig(n_layers=2, n_heads=4, dim=32, hidden_dim=64, vocab_size=1000),
                GPT2Config(n_layer=2, n_head=4, n_embd=32, vocab_size=1000, n_positions=256))
    minilm = BertConfig(num_hidden_layers=6, num_attention_heads=12, hidden_size=384,
                        intermediate_size=1536, vocab_size=30522)
    return minilm, BertConfig(), DistilBertConfig(), GPT2Config()


def _build(model_class, config, impl, train):
    torch.manual_seed(0)
    model = model_class(config).train(train)
    model.set_attn_implementation("sdpa")
    return fastattn.patch(model) if impl == "fastattn" else model


def _padded_batch(batch, seqlen, vocab, seed=0):
    generator = torch.Generator().manual_seed(seed)
    ids = torch.randint(1, vocab, (batch, seqlen), generator=generator)
    lengths = torch.randint(int(0.2 * seqlen), seqlen + 1, (batch,), generator=generator)
    lengths[0] = seqlen
    return ids, (torch.arange(seqlen) < lengths[:, None]).long()


def _case(name, tiny):
    """(models by impl, run(model) -> result, check(results by impl), unit divisor)."""
    from transformers import (BertForMaskedLM, BertModel, DistilBertForSequenceClassification,
                              GPT2LMHeadModel)

    minilm, bert, distilbert, gpt2 = _configs(tiny)
    if name in ("minilm embed", "distilbert classify"):
        config = minilm if name == "minilm embed" else distilbert
        ids, mask = _padded_batch(8 if tiny else 32, 32 if tiny else 128, config.vocab_size)

        def run(model):
            with torch.no_grad():
                out = model(input_ids=ids, attention_mask=mask)
            return out.last_hidden_state[mask.bool()] if name == "minilm embed" else out.logits
        model_class = BertModel if name == "minilm embed" else DistilBertForSequenceClassification
        models = {impl: _build(model_class, config, impl, train=False) for impl in IMPLS}
        return models, run, _close("embeddings" if name == "minilm embed" else "logits"), 1
    if name == "bert-base train":
        ids, mask = _padded_batch(4, 32 if tiny else 128, bert.vocab_size)
        labels = torch.where(mask.bool(), ids, -100)

        def run(model):
            torch.manual_seed(1)
            model.zero_grad(set_to_none=True)
            loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
            loss.backward()
            return loss.detach()
        models = {impl: _build(BertForMaskedLM, bert, impl, train=True) for impl in IMPLS}
        return models, run, _finite("loss"), 1
    if name == "gpt2-small train":
        ids = torch.randint(1, gpt2.vocab_size, (2, 32 if tiny else 128),
                            generator=torch.Generator().manual_seed(0))

        def run(model):
            torch.manual_seed(1)
            model.zero_grad(set_to_none=True)
            loss = model(input_ids=ids, labels=ids).loss
            loss.backward()
            return loss.detach()
        models = {impl: _build(GPT2LMHeadModel, gpt2, impl, train=True) for impl in IMPLS}
        return models, run, _finite("loss"), 1
    if name.startswith("gpt2-small generate"):
        new_tokens, batch = 16, 4 if name.endswith("x4") else 1
        prompt = torch.randint(1, gpt2.vocab_size, (batch, 32),
                               generator=torch.Generator().manual_seed(0))
        mask = torch.ones_like(prompt)
        for row in range(batch):
            mask[row, :5 * row] = 0

        def run(model):
            with torch.no_grad():
                return model.generate(prompt, attention_mask=mask, max_new_tokens=new_tokens,
                                      min_new_tokens=new_tokens, do_sample=False, pad_token_id=0)
        models = {impl: _build(GPT2LMHeadModel, gpt2, impl, train=False) for impl in IMPLS}
        return models, run, _same_tokens, new_tokens
    raise ValueError(f"unknown case {name!r}; the cases: {', '.join(CASES)}")


def _close(what):
    def check(results):
        torch.testing.assert_close(results["fastattn"], results["sdpa"], rtol=1e-4, atol=1e-4,
                                   msg=f"patched {what} differ from unpatched")
    return check


def _finite(what):
    # Training with dropout on: the two models draw different dropout masks (fastattn's attention
    # dropout is its Philox stream), so only the scale of the loss is comparable.
    def check(results):
        loss, ref = results["fastattn"], results["sdpa"]
        assert torch.isfinite(loss) and abs(loss.item() - ref.item()) < 0.05 * abs(ref.item()), (
            f"patched {what} {loss.item():.4f} against unpatched {ref.item():.4f}")
    return check


def _same_tokens(results):
    assert torch.equal(results["fastattn"], results["sdpa"]), "patched greedy tokens differ"


def measure(name, rounds, tiny=False):
    """{"case": name, "sdpa": ms, "fastattn": ms} (best round of each; ms a token for generation)."""
    models, run, check, per = _case(name, tiny)
    check({impl: run(model) for impl, model in models.items()})  # also the warm-up
    best = dict.fromkeys(models, float("inf"))
    for _ in range(rounds):
        for impl, model in models.items():
            start = time.perf_counter()
            run(model)
            best[impl] = min(best[impl], time.perf_counter() - start)
    return {"case": name, **{impl: seconds * 1e3 / per for impl, seconds in best.items()}}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1,
                        help="torch CPU threads (default 1: the steadiest numbers)")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--case", action="append", choices=CASES)
    parser.add_argument("--tiny", action="store_true", help="two narrow layers (tests only)")
    args = parser.parse_args(argv)
    threads = torch.get_num_threads()
    torch.set_num_threads(args.threads)
    print(f"cpu, {args.threads} thread(s), torch {torch.__version__}, float32, best of "
          f"{args.rounds} alternating rounds{' (tiny models)' if args.tiny else ''}")
    print(f"{'case':24s}{'sdpa':>10s}{'fastattn':>10s}{'speedup':>9s}   (ms; generation: a token)",
          flush=True)
    try:
        for name in args.case or CASES:
            row = measure(name, args.rounds, args.tiny)
            print(f"{name:24s}{row['sdpa']:10.1f}{row['fastattn']:10.1f}"
                  f"{row['sdpa'] / row['fastattn']:8.2f}x", flush=True)
    finally:
        torch.set_num_threads(threads)


if __name__ == "__main__":
    main()
