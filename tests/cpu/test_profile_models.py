"""benchmarks/profile_models.py: host and whole-step time of a model case, and a clear line for an
implementation that cannot run here."""

from benchmarks import profile_models


def test_reports_host_and_step_time_and_skips_what_cannot_run(capsys):
    profile_models.main(["--case", "bert-latency", "--impl", "eager", "--impl", "triton",
                         "--steps", "1"])
    out = capsys.readouterr().out
    assert "bert-latency triton: skipped" in out  # no GPU here (and timing the interpreter is moot)
    row = next(line.split() for line in out.splitlines() if line.startswith("bert-latency   eager"))
    host, step = float(row[2]), float(row[3])
    assert 0 < host <= step * 1.01
