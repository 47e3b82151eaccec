"""benchmarks/host_overhead.py: a host-time table per op and backend, against the eager ops."""

import torch

from benchmarks import host_overhead


def _rows(out, columns):
    header = next(i for i, line in enumerate(out.splitlines()) if line.startswith("case"))
    assert out.splitlines()[header].split()[1:1 + len(columns)] == columns
    return {line[:34].strip(): [float(x) for x in line[34:].split()]
            for line in out.splitlines()[header + 1:] if line.strip()}


def test_times_every_op_forward_and_backward_on_the_torch_backend(capsys):
    host_overhead.main(["--backend", "torch", "--calls", "2", "--no-model"])
    rows = _rows(capsys.readouterr().out, ["eager", "torch"])
    expected = {f"{op} {kind}" for op in host_overhead.op_cases(torch.device("cpu"), torch.float32)
                for kind in ("fwd", "fwd+bwd")}
    assert set(rows) == expected
    assert all(len(times) == 2 and min(times) > 0 for times in rows.values())


def test_fused_ops_match_their_eager_composition():
    """The eager column is only a fair baseline if it computes what the fused op computes."""
    torch.manual_seed(0)
    cases = host_overhead.op_cases(torch.device("cpu"), torch.float32)
    for op, (make_inputs, eager_fn, fused_fn) in cases.items():
        inputs = make_inputs(False)
        torch.testing.assert_close(fused_fn(*inputs, "torch"), eager_fn(*inputs), atol=1e-5,
                                   rtol=1e-4, msg=op)


def test_the_model_rows_time_bert_and_gpt2_generation(capsys):
    """BERT's forward and GPT2's generation step, unpatched (eager, sdpa) and patched (torch)."""
    host_overhead.main(["--backend", "torch", "--calls", "2"])
    out = capsys.readouterr().out
    model_table = out[out.rindex("case"):]
    rows = _rows(model_table, ["eager", "sdpa", "torch"])
    assert set(rows) == {"bert 12 layers 1x128 fwd", "gpt2 12 layers, per new token",
                         "gpt2 4 left-padded, per new token"}
    assert all(len(times) == 3 and min(times) > 0 for times in rows.values())


def test_gpt2_generation_is_timed_per_token(monkeypatch):
    """The row divides a whole generate() by the tokens it made."""
    calls = []
    monkeypatch.setattr(host_overhead, "host_us_per_call",
                        lambda fn, inputs, backward, calls_, device: calls.append(fn) or 8000.0)
    row = host_overhead.gpt2_token_ms(torch.device("cpu"), torch.float32, ["torch"], 2,
                                      new_tokens=4)
    assert row == {"case": "gpt2 12 layers, per new token", "eager": 2.0, "sdpa": 2.0, "torch": 2.0}
    assert len(calls) == 3
