"""benchmarks/cpu_models.py: patched models at real widths on the CPU against unpatched sdpa (here
with --tiny models: the script's plumbing and its correctness checks, not its times)."""

import pytest
import torch

from benchmarks import cpu_models


def test_every_case_runs_checks_and_reports_both_models(capsys):
    cpu_models.main(["--tiny", "--rounds", "1"])
    lines = capsys.readouterr().out.splitlines()
    rows = {line[:24].strip(): line[24:].split() for line in lines[2:]}
    assert set(rows) == set(cpu_models.CASES)
    for name, (sdpa_ms, fastattn_ms, speedup) in rows.items():
        assert float(sdpa_ms) > 0 and float(fastattn_ms) > 0, name
        assert speedup.endswith("x"), name


def test_the_checks_refuse_a_wrong_patched_result():
    """A fast wrong answer must not pass: each case's check compares patched with unpatched."""
    embeddings = torch.randn(5, 8)
    with pytest.raises(AssertionError, match="embeddings"):
        cpu_models._close("embeddings")({"sdpa": embeddings, "fastattn": embeddings + 1e-2})
    with pytest.raises(AssertionError, match="loss"):
        cpu_models._finite("loss")({"sdpa": torch.tensor(10.8), "fastattn": torch.tensor(12.0)})
    with pytest.raises(AssertionError, match="tokens"):
        cpu_models._same_tokens({"sdpa": torch.tensor([[1, 2, 3]]),
                                 "fastattn": torch.tensor([[1, 2, 4]])})
