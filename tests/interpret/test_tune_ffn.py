"""benchmarks/tune_ffn.py under the interpreter: a candidate's tiles reach the launches of its
epilogue kind only, the numerics check catches a wrong kernel, and a sweep writes its table and
JSON (baselines included)."""

import json

import torch
from triton.runtime.interpreter import InterpretedFunction

import fastattn
from benchmarks import tune_ffn as tune


def _launches(monkeypatch):
    launched = []
    real_run = InterpretedFunction.run

    def recording_run(self, *args, **kwargs):
        launched.append((kwargs.get("GELU_GRAD"), kwargs.get("HAS_DROPOUT"), kwargs.get("BLOCK_M"),
                         kwargs.get("BLOCK_N"), kwargs.get("BLOCK_K")))
        return real_run(self, *args, **kwargs)

    monkeypatch.setattr(InterpretedFunction, "run", recording_run)
    return launched


def test_candidate_tiles_reach_only_their_kind(monkeypatch):
    launched = _launches(monkeypatch)
    inputs = tune.make_inputs(40, 32, 48, torch.float32, torch.device("cpu"))
    with tune.tiles_for(tune.settings.GELU_GRAD, tune.Tiles(16, 32, 16, 4, 2, 1)):
        out = fastattn.ffn(*inputs, backend="triton")
        torch.autograd.grad(out, inputs, torch.ones_like(out))
    gemms = [launch for launch in launched if launch[0] is not None]  # the dropout kernel has none
    assert [tiles for gelu_grad, _, *tiles in gemms if gelu_grad] == [[16, 32, 16]]
    assert all(tiles != [16, 32, 16] for gelu_grad, _, *tiles in gemms if not gelu_grad)
    launched.clear()
    out = fastattn.ffn(*inputs, backend="triton")
    assert [launch[2:] for launch in launched if launch[0]] == []  # forward: no dA launch
    assert all(launch[2:] != (16, 32, 16) for launch in launched)


def test_the_numerics_check_catches_a_wrong_kernel(monkeypatch):
    assert tune.numerics_failures(torch.float16, torch.device("cpu")) == []
    real = fastattn.ffn
    monkeypatch.setattr(fastattn, "ffn", lambda *a, **kw: real(*a, **kw) * 1.01)
    failures = tune.numerics_failures(torch.float16, torch.device("cpu"))
    assert any(f.startswith("out 131x40x72") for f in failures)


def test_a_sweep_reports_every_candidate_and_the_baselines(monkeypatch, tmp_path, capsys):
    current = tune.settings.tiles_for_kind(90, False, tune.settings.PLAIN)
    other = tune.Tiles(32, 32, 32, 4, 4, 2)
    monkeypatch.setitem(tune.CANDIDATES, tune.settings.PLAIN, [current, other])
    path = tmp_path / "sweep.json"
    assert tune.main(["--kind", "plain", "--shape", "32", "32", "64", "--json", str(path)]) == 0
    written = json.loads(path.read_text())
    assert [b["baseline"] for b in written["baselines"]] == ["cuBLAS x @ W1^T", "eager up",
                                                             "eager fwd+bwd"]
    assert [(r["tiles"], r["case"], r["current"]) for r in written["results"]] == [
        (list(current), "up", True), (list(current), "fwd+bwd", True),
        (list(other), "up", False), (list(other), "fwd+bwd", False)]
    assert all(r["numerics"] == "ok" and r["tflop_s"] > 0 for r in written["results"])
    assert written["complete"] is True and "(current)" in capsys.readouterr().out


def test_a_tma_candidate_runs_the_tma_kernel_and_passes_the_numerics_check(monkeypatch,
                                                                           count_launches):
    """A TMA candidate (sm_90, float16) swaps in the persistent TMA kernel for its kind's launches,
    and the sweep's numerics check then judges that kernel."""
    from fastattn.backends import triton_ffn

    monkeypatch.setenv("FASTATTN_INTERPRET_ARCH", "90")
    launched = count_launches(triton_ffn, "ffn_matmul_tma_kernel")
    with tune.tiles_for(tune.settings.PLAIN, tune.Tiles(32, 32, 16, 2, 4, 2, tma=True)):
        assert tune.numerics_failures(torch.float16, torch.device("cpu")) == []
    # Per case: up and down projection, dW2, dW1, dX (dA is the GELU-derivative kind).
    assert len(launched) == 2 * 5
