"""benchmarks/host_overhead.py on CPU: Triton launches stubbed inside the block (host code runs,
kernels do not), and real again after it."""

import torch

import fastattn
from benchmarks import host_overhead


def _layer_norm(x):
    weight, bias = torch.ones(x.shape[-1]), torch.zeros(x.shape[-1])
    return fastattn.layer_norm_residual(x, None, weight, bias, backend="triton")


def test_launches_are_counted_not_run_inside_and_run_again_after():
    x = torch.randn(5, 33)
    with host_overhead.stubbed_triton_launches() as launches:
        _layer_norm(x)
        _layer_norm(x)
    assert launches == {"layer_norm_residual_fwd_kernel": 2}
    torch.testing.assert_close(_layer_norm(x), torch.nn.functional.layer_norm(x, (33,)))


def test_the_triton_column_is_measured_under_the_interpreter(capsys):
    host_overhead.main(["--backend", "triton", "--calls", "2", "--no-model"])
    out = capsys.readouterr().out
    assert "Triton launches stubbed" in out
    row = next(line for line in out.splitlines() if line.startswith("ffn fwd+bwd"))
    assert all(float(x) > 0 for x in row[34:].split())
