"""One benchmark case's record, and the cross-case numbers filled in once the session has run.

A record is a plain dict (it is also the case's pytest-benchmark `extra_info`, so both the JSON of
pytest-benchmark and our own report carry the same numbers). Speedups compare records of the same
case (op, direction, shape, dtype) measured in this session; they are computed at session end so
that test order, -k selection or a skipped baseline cannot give a wrong or stale ratio.
"""

EAGER, COMPILED = "eager", "torch.compile"
BASELINES = (EAGER, COMPILED)


def dtype_name(dtype):
    return str(dtype).replace("torch.", "")


def make_record(*, op, direction, impl, shape, dtype, bytes_moved, timing, device_info, plot_x,
                plot_x_name, targets=None, target_note=None):
    """Derived numbers for one timed case: GB/s, % of measured copy bandwidth, floor time.

    bytes_moved is the minimal traffic (each input read once, each output written once), so GB/s
    and the floor (bytes / copy bandwidth) do not reward a kernel for extra traffic.
    `targets` maps "min_gb_s" / "min_speedup_vs_eager" to the numbers this case should reach;
    `target_note` says where they come from (the report prints it once per op).
    """
    copy_gb_s = device_info["copy_gb_s"]
    gb_s = bytes_moved / (timing.p50 * 1e-3) / 1e9
    return {
        "op": op,
        "direction": direction,
        "impl": impl,
        "kind": "baseline" if impl in BASELINES else "backend",
        "shape": list(shape),
        "dtype": dtype_name(dtype),
        "device": device_info["name"],
        "ms_p20": timing.p20,
        "ms_p50": timing.p50,
        "ms_p80": timing.p80,
        "runs": timing.runs,
        "bytes": int(bytes_moved),
        "gb_s": gb_s,
        "pct_copy_bw": 100.0 * gb_s / copy_gb_s,
        "floor_ms": bytes_moved / (copy_gb_s * 1e9) * 1e3,
        "plot_x": plot_x,
        "plot_x_name": plot_x_name,
        "targets": dict(targets or {}),
        "target_note": target_note,
        "speedup_vs_eager": None,
        "speedup_vs_compile": None,
        "target_met": None,
    }


def case_key(record):
    return (record["op"], record["direction"], tuple(record["shape"]), record["dtype"])


def _check_targets(record):
    targets = record["targets"]
    if not targets:
        return None
    checks = []
    if "min_gb_s" in targets:
        checks.append(record["gb_s"] >= targets["min_gb_s"])
    if "min_speedup_vs_eager" in targets:
        speedup = record["speedup_vs_eager"]
        checks.append(speedup is not None and speedup >= targets["min_speedup_vs_eager"])
    return all(checks)


def finalize(records):
    """Fill speedup_vs_eager, speedup_vs_compile and target_met in place, from this session's records."""
    baselines = {}
    for record in records:
        if record["impl"] in BASELINES:
            baselines[(case_key(record), record["impl"])] = record["ms_p50"]
    for record in records:
        key = case_key(record)
        for impl, field in ((EAGER, "speedup_vs_eager"), (COMPILED, "speedup_vs_compile")):
            base_ms = baselines.get((key, impl))
            record[field] = None if base_ms is None else base_ms / record["ms_p50"]
        record["target_met"] = _check_targets(record)
    return records
