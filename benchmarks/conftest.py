"""Benchmark session plumbing: options, device facts, collecting each case's record, writing results.

Suites call `bench_results.add(benchmark, record)` once per timed case; at session end the records
get their speedups (from baselines measured in this same run), when and from which commit they were
measured, and are merged by report.py into <results-dir>/<device-slug>.json (then .md and plots).
"""

import datetime
import os

import pytest

from benchmarks import device_info as device_info_module
from benchmarks import records as records_module
from benchmarks import report, table
from benchmarks.progress import Progress

DEFAULT_RESULTS_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")


def pytest_addoption(parser):
    group = parser.getgroup("fastattn benchmarks")
    group.addoption("--quick", action="store_true", default=False,
                    help="fewer and smaller cases (what `make gpu` runs; about 1-2 minutes on a GPU)")
    group.addoption("--results-dir", default=None,
                    help="where <device>.json/.md/.png go (default: $FASTATTN_RESULTS_DIR, "
                         "else benchmarks/results)")
    group.addoption("--progress", action="store_true", default=False,
                    help="a line per finished case (time, throughput, skip reason) instead of dots")


def pytest_configure(config):
    state = _state(config)
    if config.getoption("--progress"):
        config.pluginmanager.register(Progress(state["results"].by_node), "fastattn-progress")


class BenchResults:
    """This session's records, in run order; each is also its case's pytest-benchmark extra_info."""

    def __init__(self):
        self.records = []
        self.by_node = {}  # pytest node id -> record, for the progress lines

    def add(self, benchmark, record):
        # Same dict object in both places, so numbers filled in at session end (speedups) reach
        # pytest-benchmark's own JSON too: our session-finish hook runs before it saves.
        benchmark.extra_info.update(record)
        benchmark.extra_info.setdefault("suite", benchmark.fullname.split("::")[0])
        self.records.append(benchmark.extra_info)
        self.by_node[benchmark.fullname] = benchmark.extra_info


def _state(config):
    if not hasattr(config, "_fastattn_bench"):
        started = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
        config._fastattn_bench = {"results": BenchResults(), "device_info": None,
                                  "started": started}
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
        mode = "quick" if session.config.getoption("--quick") else "full"
        records_module.finalize(records, {"measured_at": state["started"], "mode": mode,
                                          "commit": state["device_info"]["commit"]})
        state["written"] = report.write_all(_results_dir(session.config), state["device_info"],
                                            records, state["started"])
    yield


# Last, after pytest-benchmark's own table (when not --benchmark-quiet): ours is what to read.
@pytest.hookimpl(trylast=True)
def pytest_terminal_summary(terminalreporter, config):
    state = getattr(config, "_fastattn_bench", None)
    if not state or not state.get("written"):
        return
    info, records = state["device_info"], state["results"].records
    terminalreporter.write_sep("=", f"fastattn benchmark results: {info['name']}")
    if info["type"] == "cpu":
        terminalreporter.write_line(f"CPU run: {device_info_module.CPU_NOTE}")
    terminalreporter.write_line(report.peaks_line(info))
    terminalreporter.write_line(table.text(records))
    # Targets in the log too: `make gpu` logs are often all a reader of a GPU run gets.
    for r in table.sort_records(records):
        if r["target_met"] is not None:
            terminalreporter.write_line(
                f"target {'met    ' if r['target_met'] else 'NOT met'}: {' '.join(table.row(r)[:4])}: "
                f"{table.fmt_target(r, bold='')}")
    for path in state["written"]:
        terminalreporter.write_line(f"wrote {path}")
