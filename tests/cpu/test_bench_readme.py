"""The README's results section is generated from the newest GPU results file, never from CPU ones,
and says so when there are none. All results here are fakes in a tmp dir."""

import pytest

from bench_fakes import device, run
from benchmarks import readme_results, report

README = f"""# project

intro

## Benchmarks

{readme_results.START}
stale text
{readme_results.END}

## Layout
"""


def write_run(results_dir, info, measured_at, ms=1.0):
    records = run(info, [("eager", 3.0, {}), ("torch.compile", 2.0, {}), ("triton", ms, {}),
                         ("cuda", ms * 1.5, {})], measured_at)
    report.write_all(str(results_dir), info, records, measured_at)


@pytest.fixture
def readme(tmp_path):
    path = tmp_path / "README.md"
    path.write_text(README)
    return path


def test_no_gpu_results_says_so(tmp_path, readme):
    results = tmp_path / "results"
    write_run(results, device("cpu", "cpu-Some CPU"), "2026-11-24T00:00:00+00:00")
    assert readme_results.update_readme(str(readme), str(results))
    text = readme.read_text()
    assert "No GPU results are committed yet" in text
    assert "stale text" not in text and text.startswith("# project") and text.endswith("## Layout\n")


def test_newest_gpu_results_fill_the_section_and_cpu_never_counts(tmp_path, readme):
    results = tmp_path / "benchmarks" / "results"
    write_run(results, device(name="NVIDIA Old GPU"), "2026-11-01T00:00:00+00:00")
    write_run(results, device(name="NVIDIA New GPU"), "2026-11-20T00:00:00+00:00", ms=0.5)
    write_run(results, device("cpu", "cpu-Some CPU"), "2026-11-24T00:00:00+00:00")
    assert readme_results.update_readme(str(readme), str(results))
    text = readme.read_text()
    section = text[text.index(readme_results.START):text.index(readme_results.END)]
    assert "NVIDIA New GPU" in section and "Old GPU" not in section and "CPU" not in section
    # One row per case: the fastest backend (triton at 0.5 ms), 6x eager, 4x torch.compile.
    assert "| layer_norm_residual fwd | triton |" in section and "| cuda |" not in section
    assert "6.00x" in section and "4.00x (torch.compile)" in section
    assert "(benchmarks/results/nvidia-new-gpu.layer_norm_residual.png)" in section
    assert "(benchmarks/results/nvidia-new-gpu.md)" in section
    # Generated text is stable: a second pass changes nothing.
    assert not readme_results.update_readme(str(readme), str(results))


def test_missing_markers_are_an_error(tmp_path):
    path = tmp_path / "README.md"
    path.write_text("# no markers\n")
    with pytest.raises(ValueError, match="bench:start"):
        readme_results.update_readme(str(path), str(tmp_path))
