"""`--progress`: a line per finished case ("[ 3/40] case  1.23 ms  456 GB/s") instead of pytest's
dots, so a user watching a long `python -m fastattn bench` sees what ran, how fast, and what was
skipped and why, as it happens."""

import pytest

from benchmarks.table import fmt_ms, fmt_throughput


def _skip_reason(report):
    longrepr = report.longrepr
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        return longrepr[2].removeprefix("Skipped: ")
    return str(longrepr).strip().splitlines()[-1] if longrepr else ""


class Progress:
    def __init__(self, records_by_node):
        self.records_by_node = records_by_node
        self.total = 0
        self.done = 0
        self.reporter = None

    @pytest.hookimpl(trylast=True)
    def pytest_collection_finish(self, session):
        self.total = len(session.items)
        self.reporter = session.config.pluginmanager.get_plugin("terminalreporter")

    @pytest.hookimpl(tryfirst=True)
    def pytest_report_teststatus(self, report, config):
        # Same categories as pytest's own (they make the final "12 passed, 8 skipped" line), with
        # no letter (the word is for -ra's summary): our line per case stands in for them.
        if report.when == "call":
            return report.outcome, "", report.outcome.upper()
        if report.failed:
            return "error", "", "ERROR"
        return ("skipped", "", "SKIPPED") if report.skipped else ("", "", "")

    def pytest_runtest_logreport(self, report):
        finished = report.when == "call" or (report.when == "setup" and not report.passed)
        if report.when == "teardown" and report.failed:
            finished, self.done = True, self.done - 1  # counted at its call already
        if not finished or self.reporter is None:
            return
        self.done += 1
        name = report.nodeid.split("::")[-1]
        if report.skipped:
            status = f"skipped: {_skip_reason(report)}"
        elif report.failed:
            status = "FAILED" if report.when == "call" else f"ERROR in {report.when}"
        else:
            record = self.records_by_node.get(report.nodeid)
            status = ("passed" if record is None else
                      f"{fmt_ms(record['ms_p50'])} ms  {fmt_throughput(record)}")
        width = len(str(self.total))
        self.reporter.ensure_newline()
        self.reporter.write_line(f"[{self.done:>{width}}/{self.total}] {name}  {status}")
