"""Add up the JUnit XML reports of the test tiers into one closing line.

`make test` runs several pytest processes (the interpreter tier needs its own, the compile tier
runs again under another triton). Each prints its own summary, and the last one, the gpu tier,
is all skips on a machine without a GPU: read alone it says that no test ran. This script prints
the total over every tier as the run's last line, e.g. `total: 1530 passed, 0 failed, 1650 skipped`,
and fails when no test passed at all.

Standard library only: it runs with whatever python3 is on the machine.
"""

import sys
import xml.etree.ElementTree as ET
from pathlib import Path


def tally(report: Path) -> dict:
    counts = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    root = ET.parse(report).getroot()
    suites = [root] if root.tag == "testsuite" else root.iter("testsuite")
    for suite in suites:
        for key in counts:
            counts[key] += int(suite.get(key, 0))
    return counts


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: junit_summary.py REPORTS_DIR", file=sys.stderr)
        return 2
    reports = sorted(Path(argv[1]).glob("*.xml"))
    if not reports:
        print(f"junit_summary: no reports in {argv[1]}", file=sys.stderr)
        return 1
    total = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    for report in reports:
        counts = tally(report)
        failed = counts["failures"] + counts["errors"]
        passed = counts["tests"] - failed - counts["skipped"]
        print(f"  {report.stem}: {passed} passed, {failed} failed, {counts['skipped']} skipped")
        for key in total:
            total[key] += counts[key]
    failed = total["failures"] + total["errors"]
    passed = total["tests"] - failed - total["skipped"]
    print(f"total: {passed} passed, {failed} failed, {total['skipped']} skipped")
    return 0 if failed == 0 and passed > 0 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
