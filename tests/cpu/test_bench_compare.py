"""`python -m fastattn bench --compare OLD NEW`: change per case, regressions beyond the noise."""

import json

from bench_fakes import device, run
from benchmarks import compare
from fastattn.__main__ import main


def write(path, info, records):
    path.write_text(json.dumps({"schema": 2, "device": info, "updated": records[0]["measured_at"],
                                "records": records}))
    return str(path)


def old_and_new(tmp_path):
    info = device()
    old = run(info, [("triton", 1.00, {"size": 1024}), ("triton", 1.00, {"size": 2048}),
                     ("triton", 1.00, {"size": 4096}), ("triton", 1.00, {"size": 8192, "spread": 0.2}),
                     ("cuda", 1.00, {"size": 1024})], "2026-11-01T00:00:00+00:00")
    new = run(info, [("triton", 1.20, {"size": 1024}),                  # 20% slower: regression
                     ("triton", 0.80, {"size": 2048}),                  # 20% faster
                     ("triton", 1.03, {"size": 4096}),                  # within the 5% threshold
                     ("triton", 1.08, {"size": 8192, "spread": 0.2}),   # within its 20% spread
                     ("triton", 1.00, {"size": 16384})], "2026-11-02T00:00:00+00:00")
    return write(tmp_path / "old.json", info, old), write(tmp_path / "new.json", info, new)


def test_verdicts_per_case(tmp_path):
    old_path, new_path = old_and_new(tmp_path)
    old, new = (json.loads(open(p).read())["records"] for p in (old_path, new_path))
    result = compare.compare_records(old, new)
    verdicts = {r["new"]["shape"][1]: r["verdict"] for r in result["rows"]}
    assert verdicts == {1024: compare.REGRESSION, 2048: compare.FASTER, 4096: "", 8192: ""}
    changes = {r["new"]["shape"][1]: r["change"] for r in result["rows"]}
    assert abs(changes[1024] - 0.20) < 1e-9
    assert [k[-1] for k in result["only_old"]] == ["cuda"]
    assert [k[3][1] for k in result["only_new"]] == [16384]
    assert len(compare.regressions(result)) == 1


def test_cli_prints_changes_and_fails_on_regression_when_asked(tmp_path, capsys):
    old_path, new_path = old_and_new(tmp_path)
    command = ["bench", "--compare", old_path, new_path]
    assert main(command) == 0
    out = capsys.readouterr().out
    assert "REGRESSION" in out and "+20.0%" in out and "-20.0%" in out
    assert "1 regressed, 1 faster" in out and "only in old (1)" in out
    assert main(command + ["--fail-on-regression"]) == 1
    assert main(command + ["--fail-on-regression", "--threshold", "0.5"]) == 0
    assert "0 regressed, 0 faster" in capsys.readouterr().out


def test_cli_says_why_it_cannot_compare(tmp_path, capsys):
    (tmp_path / "bad.json").write_text("{}")
    assert main(["bench", "--compare", str(tmp_path / "bad.json"), str(tmp_path / "missing.json")]) == 2
    assert "cannot compare" in capsys.readouterr().out
