"""Benchmark records and the per-device results file: compute-bound fields, speedups against the
best baseline, and merging runs so that one suite never wipes another's results."""

import json

import pytest

from bench_fakes import device, record, run, timing
from benchmarks import report, results_file, table
from benchmarks.records import finalize, make_record


def test_memory_bound_record_keeps_its_fields():
    info = device(copy_gb_s=2000.0)
    r = make_record(op="op", direction="fwd", impl="triton", shape=(8, 8), dtype="bfloat16",
                    bytes_moved=2e9, timing=timing(1.0), device_info=info, plot_x=8,
                    plot_x_name="hidden size")
    assert r["gb_s"] == pytest.approx(2000.0)
    assert r["pct_copy_bw"] == pytest.approx(100.0)
    assert r["pct_of_peak"] == pytest.approx(100.0) and r["peak"] == "copy BW"
    assert r["floor_ms"] == pytest.approx(1.0)
    assert r["tflop_s"] is None and r["bound"] == "memory" and r["kind"] == "backend"


def test_compute_bound_record_is_judged_against_the_gemm_peak():
    info = device(gemm_tflops=500.0)
    r = record(info, "triton", 2.0, flops=500e9)  # 500 GFLOP in 2 ms = 250 TFLOP/s
    assert r["tflop_s"] == pytest.approx(250.0)
    assert r["pct_of_peak"] == pytest.approx(50.0) and r["peak"] == "GEMM"
    assert r["floor_ms"] == pytest.approx(1.0)
    with pytest.raises(ValueError):
        make_record(op="op", direction="fwd", impl="x", shape=(1,), dtype="float32",
                    timing=timing(1.0), device_info=info)


def test_speedups_against_eager_and_the_best_other_baseline():
    info = device()
    records = {r["impl"]: r for r in run(info, [("eager", 4.0, {}), ("torch.compile", 2.0, {}),
                                                ("sdpa", 3.0, {}), ("triton", 1.0, {})])}
    assert records["triton"]["speedup_vs_eager"] == pytest.approx(4.0)
    assert records["triton"]["best_baseline"] == "torch.compile"
    assert records["triton"]["speedup_vs_best_baseline"] == pytest.approx(2.0)
    # A baseline is compared with the best of the others, never with itself.
    assert records["torch.compile"]["best_baseline"] == "sdpa"
    assert records["sdpa"]["kind"] == "baseline"
    assert records["triton"]["measured_at"] and records["triton"]["commit"] == "abc1234"


def test_variants_are_cases_of_their_own():
    info = device()
    records = run(info, [("eager", 4.0, {}), ("triton", 1.0, {}),
                         ("eager", 2.0, {"variant": "causal"}), ("triton", 1.0, {"variant": "causal"})])
    assert [r["speedup_vs_eager"] for r in records if r["impl"] == "triton"] == [4.0, 2.0]
    assert table.row(records[2])[0] == "layer_norm_residual fwd causal"
    assert len(results_file.merge(records[:2], records[2:])) == 4


def test_a_run_replaces_its_cases_and_keeps_the_others(tmp_path):
    info = device()
    first = run(info, [("eager", 2.0, {}), ("triton", 1.0, {}),
                       ("eager", 4.0, {"size": 4096}), ("triton", 2.0, {"size": 4096})],
                "2026-11-01T00:00:00+00:00")
    other_suite = run(info, [("eager", 5.0, {"op": "bias_gelu"}), ("triton", 1.0, {"op": "bias_gelu"})],
                      "2026-11-02T00:00:00+00:00")
    rerun = run(info, [("eager", 2.0, {}), ("triton", 0.5, {})], "2026-11-03T00:00:00+00:00")
    for i, records in enumerate((first, other_suite, rerun)):
        report.write_all(str(tmp_path), info, records, f"2026-11-0{i + 1}T00:00:00+00:00")
    data = results_file.load(str(tmp_path / f"{info['slug']}.json"))
    by_key = {(r["op"], r["shape"][1], r["impl"]): r for r in data["records"]}
    assert len(by_key) == len(data["records"]) == 6
    assert by_key[("layer_norm_residual", 1024, "triton")]["ms_p50"] == 0.5
    assert by_key[("layer_norm_residual", 1024, "triton")]["measured_at"].startswith("2026-11-03")
    assert by_key[("layer_norm_residual", 4096, "triton")]["measured_at"].startswith("2026-11-01")
    assert by_key[("bias_gelu", 1024, "triton")]["measured_at"].startswith("2026-11-02")
    markdown = (tmp_path / f"{info['slug']}.md").read_text()
    assert "## bias_gelu" in markdown and "## layer_norm_residual" in markdown
    assert (tmp_path / f"{info['slug']}.layer_norm_residual.png").exists()


def test_files_written_before_per_case_provenance_still_load(tmp_path):
    info = device()
    r = record(info, "triton", 1.0)
    for field in ("measured_at", "commit", "mode", "tflop_s", "pct_of_peak", "best_baseline"):
        r.pop(field, None)
    path = tmp_path / "old.json"
    path.write_text(json.dumps({"device": info, "mode": "full", "created": "2026-10-01T00:00:00+00:00",
                                "records": [r]}))
    loaded = results_file.load(str(path))["records"][0]
    assert loaded["measured_at"] == "2026-10-01T00:00:00+00:00" and loaded["mode"] == "full"
    assert loaded["pct_of_peak"] == pytest.approx(loaded["pct_copy_bw"])


def test_plots_throughput_lines_and_model_speedup_bars(tmp_path):
    info = device()
    attention = run(info, [("sdpa", 2.0, {"op": "attention", "flops": 1e12}),
                           ("triton", 1.0, {"op": "attention", "flops": 1e12}),
                           ("triton", 1.0, {"op": "attention", "flops": 2e12, "size": 2048})])
    models = finalize([make_record(op="bert-base", direction="fwd", impl=impl, shape=(8, 512),
                                   dtype="bfloat16", flops=1e12, timing=timing(ms), device_info=info)
                       for impl, ms in (("eager", 3.0), ("torch.compile", 2.0), ("triton", 1.0))])
    report.write_all(str(tmp_path), info, attention + models, "2026-11-24T00:00:00")
    assert (tmp_path / f"{info['slug']}.attention.png").stat().st_size > 0
    assert (tmp_path / f"{info['slug']}.bert-base.png").stat().st_size > 0
    markdown = (tmp_path / f"{info['slug']}.md").read_text()
    assert "| attention fwd | triton | bfloat16 | 4096x1024 |" in markdown
    assert "1000 TFLOP/s | 200% GEMM | - | 2.00x (sdpa) |" in markdown
    assert "| bert-base fwd | triton | bfloat16 | 8x512 |" in markdown and "3.00x" in markdown
