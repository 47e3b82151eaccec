"""make gpu re-runs the tests that skipped only because the extension was still building: they are
found in the first part's JUnit report (tests/gpu/extension_skips.py)."""

import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).parents[1] / "gpu" / "extension_skips.py"

REPORT = """<?xml version="1.0" encoding="utf-8"?>
<testsuites><testsuite name="pytest" tests="4" skipped="3">
<testcase classname="tests.gpu.test_a" name="test_x[fp32]"/>
<testcase classname="tests.gpu.test_a" name="test_y[bf16-none]"><skipped type="pytest.skip"
  message="fastattn._C is not available: fastattn._C was not built: at install time ..."/></testcase>
<testcase classname="tests.gpu.test_b" name="test_agree[fp16]"><skipped type="pytest.skip"
  message="needs both fused backends, missing ['cuda']: fastattn._C was not built"/></testcase>
<testcase classname="tests.gpu.test_b" name="test_spill[fp32]"><skipped type="pytest.skip"
  message="switched off: its tiles spill registers"/></testcase>
</testsuite></testsuites>
"""


def test_lists_only_the_tests_skipped_for_the_extension(tmp_path):
    report = tmp_path / "gpu-tests-1.xml"
    report.write_text(REPORT)
    out = subprocess.run([sys.executable, str(SCRIPT), str(report)], capture_output=True, text=True,
                         check=True).stdout.split()
    assert out == ["tests/gpu/test_a.py::test_y[bf16-none]", "tests/gpu/test_b.py::test_agree[fp16]"]
