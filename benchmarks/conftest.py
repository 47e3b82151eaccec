"""Benchmark session plumbing: options, device facts, collecting each case's record, writing results.

Suites call `bench_results.add(benchmark, record)` once per timed case; at session end the records
get their speedups (from baselines measured in this same run) and are written by report.py to
<results-dir>/<device-slug>.{json,md,png}.
"""

import os

import pytest

from benchmarks import device_info as device_info_module
from benchmarks import records as records_module
from benchmarks import report

DEFAULT_RESULTS_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")


def pytest_addoption(parser):
    group = parser.getgroup("fastattn benchmarks")
    group.addoption("--quick", action="store_true", default=False,
                    help="fewer and smaller cases (what `make gpu` runs; about 1-2 minutes on a GPU)")
    group.addoption("--results-dir", default=None,
                    help="where <device>.json/.md/.png go (default: $FASTATTN_RESULTS_DIR, "
                         "else benchmarks/results)")


class BenchResults:
    """This session's records, in run order; each is also its case's pytest-benchmark extra_info."""

    def __init__(self):
        self.records = []

    def add(self, benchmark, record):
        # Same dict object in both places, so numbers filled in at session end (speedups) reach
        # pytest-benchmark's own JSON too: our session-finish hook runs before it saves.
        benchmark.extra_info.update(record)
        self.records.append(benchmark.extra_info)


def _state(config):
    if not hasattr(config, "_fastattn_bench"):
        config._fastattn_bench = {"results": BenchResults(), "device_info": None}
    return config._fastattn_bench


@pytest.fixture(scope="session")
def quick(pytestconfig):
    return pytestconfig.getoption("--quick")


@pytest.fixture(scope="session")
def bench_device():
    return device_info_module.bench_device()


@pytest.fixture(scope="session")
def bench_device_info(pytestconfig, bench_device):
    """Device name, versions and the copy bandwidth measured once for this session."""
    state = _state(pytestconfig)
    if state["device_info"] is None:
        state["device_info"] = device_info_module.collect(bench_device)
    return state["device_info"]


@pytest.fixture(scope="session")
def bench_results(pytestconfig):
    return _state(pytestconfig)["results"]


def _results_dir(config):
    return (config.getoption("--results-dir") or os.environ.get("FASTATTN_RESULTS_DIR")
            or DEFAULT_RESULTS_DIR)


@pytest.hookimpl(hookwrapper=True, tryfirst=True)
def pytest_sessionfinish(session, exitstatus):
    # A wrapper that acts before yielding: pytest-benchmark saves its JSON in the same hook, and
    # must see the speedups already in extra_info.
    state = _state(session.config)
    records = state["results"].records
    if records and state["device_info"] is not None:
        records_module.finalize(records)
        mode = "quick" if session.config.getoption("--quick") else "full"
        paths = report.write_all(_results_dir(session.config), state["device_info"], records, mode)
        state["written"] = paths
    yield


def pytest_terminal_summary(terminalreporter, config):
    state = getattr(config, "_fastattn_bench", None)
    if not state or not state.get("written"):
        return
    terminalreporter.write_sep("-", "fastattn benchmark results")
    if state["device_info"]["type"] == "cpu":
        terminalreporter.write_line(f"CPU run: {device_info_module.CPU_NOTE}")
    # Targets in the log too: `make gpu` logs are often all a reader of a GPU run gets.
    for r in state["results"].records:
        if r["target_met"] is not None:
            speedup = r["speedup_vs_eager"]
            terminalreporter.write_line(
                f"target {'met    ' if r['target_met'] else 'NOT met'} {r['op']} {r['direction']} "
                f"{r['impl']} {r['dtype']} {'x'.join(map(str, r['shape']))}: {r['gb_s']:.0f} GB/s, "
                f"{'-' if speedup is None else f'{speedup:.2f}x'} eager (wants {r['targets']})")
    for path in state["written"]:
        terminalreporter.write_line(f"wrote {path}")
