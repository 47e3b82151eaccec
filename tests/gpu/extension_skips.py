"""Print the node ids of the tests a JUnit report says were skipped for want of fastattn._C.

`make gpu` runs the tests that need no extension while the extension builds; those that skipped
only because it was not built yet are run again once it is (tests/gpu/evidence_run.sh).
Standard library only.
"""

import sys
import xml.etree.ElementTree as ET

MARKERS = ("fastattn._C is not available", "fastattn._C was not built", "missing ['cuda']")


def extension_skips(report):
    for case in ET.parse(report).getroot().iter("testcase"):
        skipped = case.find("skipped")
        if skipped is not None and any(m in skipped.get("message", "") for m in MARKERS):
            module, name = case.get("classname"), case.get("name")
            yield f"{module.replace('.', '/')}.py::{name}"


if __name__ == "__main__":
    for node_id in extension_skips(sys.argv[1]):
        print(node_id)
