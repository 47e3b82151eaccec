"""A patched model saved whole (torch.save(model), as multiprocessing pickles it too) and loaded in
a new Python process, where nothing has imported or patched with fastattn: unpickling imports
fastattn's block classes, which must make attn_implementation="fastattn" known to transformers.
Before, that process's GPT-2 raised (the name unknown) and its BERT silently attended to padding
(transformers built no mask for the unknown name)."""

import importlib.metadata
import os
import subprocess
import sys
import textwrap

import pytest
import torch
from transformers import BertModel, GPT2LMHeadModel

import fastattn
import hf_models

LOAD_AND_RUN = textwrap.dedent("""
    import sys, torch
    model = torch.load(sys.argv[1], weights_only=False)
    inputs = torch.load(sys.argv[2])
    with torch.no_grad():
        hidden = model(inputs["ids"], attention_mask=inputs["mask"])[0]
        outputs = {"hidden": hidden}
        if hasattr(model, "generate"):
            outputs["tokens"] = model.generate(inputs["ids"], attention_mask=inputs["mask"],
                                               max_new_tokens=5, do_sample=False, pad_token_id=0)
    torch.save(outputs, sys.argv[3])
    """)


def _pythonpath():
    """The new process imports fastattn from where this one did: an installation (also editable),
    or the source tree on PYTHONPATH as the version tiers run it. Only the latter gets the tree
    added: in front of site-packages its kernels/ folder would shadow the PyPI package `kernels`,
    which unpickling's first import, transformers (5.2x), imports (see fastattn/__init__.py)."""
    paths = [os.environ.get("PYTHONPATH")]
    try:
        importlib.metadata.distribution("fastattn")
    except importlib.metadata.PackageNotFoundError:
        paths.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(fastattn.__file__))))
    return os.pathsep.join(filter(None, paths))


CASES = {"bert": (BertModel, hf_models.bert_config, "holes"),
         "gpt2": (GPT2LMHeadModel, hf_models.gpt2_config, "left"),
         # fastattn makes its RoBERTa classes on first use: the new process must find them too.
         "roberta": (hf_models.encoder_class("roberta"),
                     lambda: hf_models.encoder_config("roberta"), "holes"),
         "distilbert": (hf_models.encoder_class("distilbert"),
                        lambda: hf_models.encoder_config("distilbert"), "holes"),
         "gpt_bigcode": (hf_models.decoder_class("gpt_bigcode"),
                         lambda: hf_models.decoder_config("gpt_bigcode"), "left")}


@pytest.mark.parametrize("name", sorted(CASES))
def test_patched_model_loads_and_runs_in_a_new_process(name, tmp_path):
    model_class, config, pattern = CASES[name]
    stock = hf_models.make_model(model_class, config())
    ids, mask = hf_models.input_ids(3, 11), hf_models.attention_mask(3, 11, pattern)
    torch.save(fastattn.patch(hf_models.make_model(model_class, config())), tmp_path / "model.pt")
    torch.save({"ids": ids, "mask": mask}, tmp_path / "inputs.pt")
    run = subprocess.run([sys.executable, "-c", LOAD_AND_RUN, str(tmp_path / "model.pt"),
                          str(tmp_path / "inputs.pt"), str(tmp_path / "outputs.pt")],
                         capture_output=True, text=True, cwd=tmp_path,
                         env=dict(os.environ, PYTHONPATH=_pythonpath()))
    assert run.returncode == 0, run.stderr[-3000:]
    got = torch.load(tmp_path / "outputs.pt")
    real = mask.bool()
    with torch.no_grad():
        expected = stock(ids, attention_mask=mask)[0]
        torch.testing.assert_close(got["hidden"][real], expected[real], rtol=1e-5, atol=1e-5)
        if "tokens" in got:
            tokens = stock.generate(ids, attention_mask=mask, max_new_tokens=5, do_sample=False,
                                    pad_token_id=0)
            assert torch.equal(got["tokens"], tokens)
