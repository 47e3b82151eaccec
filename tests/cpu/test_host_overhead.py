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
