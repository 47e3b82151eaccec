"""fastattn benchmark suites (pytest-benchmark) and the timing/report machinery they share."""
