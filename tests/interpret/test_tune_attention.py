"""benchmarks/tune_attention.py under the interpreter: a candidate's tiles reach the launch, its
numerics check catches a wrong kernel, and a sweep writes its table and JSON."""

import json

import torch
from triton.runtime.interpreter import InterpretedFunction

import fastattn
from benchmarks import tune_attention as tune


def test_candidate_tiles_reach_the_kernel_launch(monkeypatch):
    launched = []
    real_run = InterpretedFunction.run

    def recording_run(self, *args, **kwargs):
        launched.append((self.fn.__name__, kwargs.get("BLOCK_M"), kwargs.get("BLOCK_N"),
                         kwargs.get("num_warps")))
        return real_run(self, *args, **kwargs)

    monkeypatch.setattr(InterpretedFunction, "run", recording_run)
    q, k, v = (torch.randn(1, 2, 40, 64) for _ in range(3))
    with tune.tiles_for("forward", tune.Tiles(32, 16, 2, 1)):
        inside = fastattn.attention(q, k, v, backend="triton")
    outside = fastattn.attention(q, k, v, backend="triton")
    assert launched[0] == ("attention_fwd_kernel", 32, 16, 2)
    assert launched[1][1:3] != (32, 16)  # the settings' own tiles again
    torch.testing.assert_close(inside, outside)


def test_the_numerics_check_catches_a_wrong_kernel(monkeypatch):
    assert tune.numerics_failures(64, torch.float16, torch.device("cpu")) == []
    real = fastattn.attention
    monkeypatch.setattr(fastattn, "attention", lambda *a, **kw: real(*a, **kw) * 1.01)
    failures = tune.numerics_failures(64, torch.float16, torch.device("cpu"))
    assert any(f.startswith("out full") for f in failures)


def test_a_sweep_reports_every_candidate(monkeypatch, tmp_path, capsys):
    current = tune.settings.backward_dq_tiles(64, 90, False)
    monkeypatch.setitem(tune.CANDIDATES, ("backward_dq", 64), [current, tune.Tiles(32, 32, 4, 2)])
    path = tmp_path / "sweep.json"
    assert tune.main(["--role", "backward_dq", "--head-dim", "64", "--seqlen", "32",
                      "--json", str(path)]) == 0
    results = json.loads(path.read_text())["results"]
    assert [(r["tiles"], r["causal"], r["current"]) for r in results] == [
        (list(current), False, True), (list(current), True, True),
        ([32, 32, 4, 2], False, False), ([32, 32, 4, 2], True, False)]
    assert all(r["numerics"] == "ok" and r["tflop_s"] > 0 for r in results)
    assert "(current)" in capsys.readouterr().out


def test_an_interrupted_sweep_keeps_what_it_measured(monkeypatch, tmp_path):
    """make gpu-tune stops a role at its time budget with SIGINT: the JSON still holds the
    results so far and says the sweep is incomplete."""
    def two_then_interrupt(*args, **kwargs):
        yield {"tiles": [1], "numerics": "ok"}
        yield {"tiles": [2], "numerics": "ok"}
        raise KeyboardInterrupt

    monkeypatch.setattr(tune, "sweep", two_then_interrupt)
    path = tmp_path / "cut.json"
    assert tune.main(["--role", "forward", "--json", str(path)]) == 0
    written = json.loads(path.read_text())
    assert written["complete"] is False and len(written["results"]) == 2


def test_a_dropout_sweep_checks_against_the_same_keep_mask(monkeypatch, tmp_path):
    """--dropout: the dropout tiles' candidates, each checked against the reference under the
    Philox keep mask the call draws (a wrong mask would fail the check, as a wrong kernel does)."""
    assert tune.numerics_failures(64, torch.float16, torch.device("cpu"), dropout_p=0.2) == []
    current = tune.settings.backward_dq_tiles(64, 90, False, dropout=True)
    monkeypatch.setitem(tune.DROPOUT_CANDIDATES, ("backward_dq", 64), [current])
    path = tmp_path / "sweep.json"
    assert tune.main(["--role", "backward_dq", "--head-dim", "64", "--seqlen", "32",
                      "--dropout", "0.2", "--json", str(path)]) == 0
    written = json.loads(path.read_text())
    assert written["dropout_p"] == 0.2
    assert [(r["tiles"], r["current"], r["numerics"]) for r in written["results"]] == [
        (list(current), True, "ok"), (list(current), True, "ok")]


def test_the_dropout_check_fails_without_the_keep_mask(monkeypatch):
    real = fastattn.attention
    monkeypatch.setattr(fastattn, "attention",
                        lambda *a, **kw: real(*a, **dict(kw, dropout_p=0.0)))
    failures = tune.numerics_failures(64, torch.float16, torch.device("cpu"), dropout_p=0.2)
    assert any(f.startswith("out full") for f in failures)


def test_a_decode_sweep_times_the_split_key_path(monkeypatch, tmp_path):
    """The decode role swaps the 16-row tiles of few-query calls: its numerics case has 3 queries
    against keys long enough to split, and its table reads GB/s per batch size."""
    launched = []
    real_run = InterpretedFunction.run

    def recording_run(self, *args, **kwargs):
        launched.append((self.fn.__name__, kwargs.get("BLOCK_M"), kwargs.get("BLOCK_N")))
        return real_run(self, *args, **kwargs)

    current = tune.settings.decode_tiles(64, False)
    other = tune.Tiles(16, 16, 2, 1)
    monkeypatch.setitem(tune.CANDIDATES, ("decode", 64), [current, other])
    monkeypatch.setattr(tune, "DECODE_BATCHES", (1, 2))
    monkeypatch.setattr(InterpretedFunction, "run", recording_run)
    path = tmp_path / "sweep.json"
    from fastattn.backends import triton_attention
    default = triton_attention.PROGRAMS_PER_SM
    assert tune.main(["--role", "decode", "--head-dim", "64", "--programs-per-sm", "3",
                      "--json", str(path)]) == 0
    assert triton_attention.PROGRAMS_PER_SM == default  # restored
    written = json.loads(path.read_text())
    assert written["programs_per_sm"] == 3
    results = written["results"]
    assert [(r["tiles"], r["batch"], r["current"]) for r in results] == [
        (list(current), 1, True), (list(current), 2, True),
        (list(other), 1, False), (list(other), 2, False)]
    assert all(r["numerics"] == "ok" and r["gb_s"] > 0 for r in results)
    assert ("attention_fwd_kernel", 16, 16) in launched
    assert any(name == "attention_split_combine_kernel" for name, *_ in launched)


def test_an_atomic_dq_sweep_times_both_backward_forms(monkeypatch, tmp_path):
    """The atomic-dQ role: its candidate "two kernels" runs the dK/dV and dQ kernels, its tiles
    run the dK/dV kernel alone with ATOMIC_DQ, so one table compares the two forms."""
    launched = []
    real_run = InterpretedFunction.run

    def recording_run(self, *args, **kwargs):
        launched.append((self.fn.__name__, kwargs.get("ATOMIC_DQ"), kwargs.get("BLOCK_N")))
        return real_run(self, *args, **kwargs)

    candidate = tune.Tiles(16, 32, 4, 2)
    monkeypatch.setitem(tune.CANDIDATES, ("backward_atomic_dq", 64), [tune.TWO_KERNELS, candidate])
    monkeypatch.setattr(InterpretedFunction, "run", recording_run)
    path = tmp_path / "sweep.json"
    assert tune.main(["--role", "backward_atomic_dq", "--head-dim", "64", "--seqlen", "32",
                      "--json", str(path)]) == 0
    results = json.loads(path.read_text())["results"]
    # What the settings choose on sm_90 at D=64: the atomic form's 16x128 tiles non-causal, the two
    # kernels causal.
    assert [(r["tiles"], r["causal"], r["current"]) for r in results] == [
        (None, False, False), (None, True, True), (list(candidate), False, False),
        (list(candidate), True, False)]
    assert all(r["numerics"] == "ok" and r["tflop_s"] > 0 for r in results)
    assert ("attention_bwd_dkdv_kernel", True, 32) in launched
    assert any(name == "attention_bwd_dkdv_kernel" and not atomic for name, atomic, _ in launched)
    assert any(name == "attention_bwd_dq_kernel" for name, _, _ in launched)
