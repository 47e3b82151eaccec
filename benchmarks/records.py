"""One benchmark case's record, and the cross-case numbers filled in once the session has run.

A record is a plain dict (it is also the case's pytest-benchmark `extra_info`, so both the JSON of
pytest-benchmark and our own report carry the same numbers). Speedups compare records of the same
case (op, direction, shape, dtype) measured in this session; they are computed at session end so
that test order, -k selection or a skipped baseline cannot give a wrong or stale ratio.

Memory-bound cases give `bytes_moved` and are judged against the measured copy bandwidth;
compute-bound cases (attention, FFN, models) give `flops` and are judged against the measured GEMM
throughput. `pct_of_peak` is whichever of the two applies (`peak` names it).
"""

EAGER, COMPILED, SDPA, FLASH_ATTN = "eager", "torch.compile", "sdpa", "flash-attn"
BASELINES = (EAGER, COMPILED, SDPA, FLASH_ATTN)
MEMORY, COMPUTE = "memory", "compute"


def dtype_name(dtype):
    return str(dtype).replace("torch.", "")


def _ratio_pct(value, peak):
    return None if value is None or not peak else 100.0 * value / peak


def make_record(*, op, direction, impl, shape, dtype, timing, device_info, bytes_moved=None,
                flops=None, plot_x=None, plot_x_name=None, targets=None, target_note=None,
                variant=None, bound=None, baseline=None, extra=None):
    """Derived numbers for one timed case: GB/s and/or TFLOP/s, % of the measured peak, floor time.

    bytes_moved is the minimal traffic (each input read once, each output written once), so GB/s
    and the floor (bytes / copy bandwidth) do not reward a kernel for extra traffic. flops is the
    useful arithmetic (e.g. DESIGN §6's attention count). Give either or both; `bound` ("memory" or
    "compute") says which peak the case is judged against, by default compute when flops is given.
    plot_x/plot_x_name: the size the plot puts on its x axis; leave None for cases with no size axis
    (whole models): they are drawn as speedup bars.
    `targets` maps "min_gb_s" / "min_tflop_s" / "min_speedup_vs_eager" to the numbers this case
    should reach; `target_note` says where they come from (the report prints it once per op).
    `variant` tells apart cases that share op, direction, shape and dtype but differ otherwise
    (e.g. "causal", "padded 50%"): it is part of the case's key, and the plots draw each variant in
    a panel of its own. `baseline` overrides whether `impl` is a baseline (default: impl in BASELINES); `extra` adds
    suite-specific fields (e.g. real-token figures of padded batches).
    """
    if bytes_moved is None and flops is None:
        raise ValueError("make_record needs bytes_moved or flops (or both)")
    seconds = timing.p50 * 1e-3
    copy_gb_s, gemm_tflops = device_info["copy_gb_s"], device_info.get("gemm_tflops")
    gb_s = None if bytes_moved is None else bytes_moved / seconds / 1e9
    tflop_s = None if flops is None else flops / seconds / 1e12
    bound = bound or (COMPUTE if flops is not None else MEMORY)
    floors = [bytes_moved / (copy_gb_s * 1e9) * 1e3 if bytes_moved is not None else None,
              flops / (gemm_tflops * 1e12) * 1e3 if flops is not None and gemm_tflops else None]
    floors = [f for f in floors if f is not None]
    pct_copy_bw = _ratio_pct(gb_s, copy_gb_s)
    pct_gemm = _ratio_pct(tflop_s, gemm_tflops)
    is_baseline = impl in BASELINES if baseline is None else baseline
    return {
        "op": op,
        "direction": direction,
        "variant": variant,
        "impl": impl,
        "kind": "baseline" if is_baseline else "backend",
        "shape": list(shape),
        "dtype": dtype_name(dtype),
        "device": device_info["name"],
        "ms_p20": timing.p20,
        "ms_p50": timing.p50,
        "ms_p80": timing.p80,
        "runs": timing.runs,
        "host_ms": timing.host_ms,
        "host_hidden": timing.hide_host,
        "bytes": None if bytes_moved is None else int(bytes_moved),
        "flops": None if flops is None else int(flops),
        "gb_s": gb_s,
        "tflop_s": tflop_s,
        "bound": bound,
        "pct_copy_bw": pct_copy_bw,
        "pct_gemm": pct_gemm,
        "peak": "GEMM" if bound == COMPUTE else "copy BW",
        "pct_of_peak": pct_gemm if bound == COMPUTE else pct_copy_bw,
        "floor_ms": max(floors) if floors else None,
        "plot_x": plot_x,
        "plot_x_name": plot_x_name,
        "targets": dict(targets or {}),
        "target_note": target_note,
        **dict(extra or {}),
        "speedup_vs_eager": None,
        "speedup_vs_compile": None,
        "speedup_vs_best_baseline": None,
        "best_baseline": None,
        "target_met": None,
    }


def case_key(record):
    """What a case is, whichever implementation ran it: speedups compare within a case, and a
    re-run replaces a case's records as a whole."""
    return (record["op"], record["direction"], record.get("variant"), tuple(record["shape"]),
            record["dtype"])


def record_key(record):
    return case_key(record) + (record["impl"],)


def throughput(record):
    """(value, unit) the record is judged by: TFLOP/s for compute-bound cases, else GB/s."""
    if record.get("bound") == COMPUTE and record.get("tflop_s") is not None:
        return record["tflop_s"], "TFLOP/s"
    return record.get("gb_s"), "GB/s"


def _check_targets(record):
    targets = record["targets"]
    if not targets:
        return None
    checks = []
    for field, value in (("min_gb_s", "gb_s"), ("min_tflop_s", "tflop_s")):
        if field in targets:
            checks.append(record.get(value) is not None and record[value] >= targets[field])
    if "min_speedup_vs_eager" in targets:
        speedup = record["speedup_vs_eager"]
        checks.append(speedup is not None and speedup >= targets["min_speedup_vs_eager"])
    return all(checks)


def finalize(records, provenance=None):
    """Fill the speedups, best_baseline and target_met in place, from this session's records.

    speedup_vs_best_baseline compares against the fastest baseline of the same case other than the
    record itself (eager, SDPA, torch.compile, flash-attn: whichever ran and won). `provenance`
    (e.g. measured_at, commit, mode) is stamped on every record, so a merged results file still
    says when and from what each case was measured.
    """
    baselines = {}
    for record in records:
        if record["kind"] == "baseline":
            baselines.setdefault(case_key(record), {})[record["impl"]] = record["ms_p50"]
    for record in records:
        case_baselines = baselines.get(case_key(record), {})
        for impl, field in ((EAGER, "speedup_vs_eager"), (COMPILED, "speedup_vs_compile")):
            base_ms = case_baselines.get(impl)
            record[field] = None if base_ms is None else base_ms / record["ms_p50"]
        others = {impl: ms for impl, ms in case_baselines.items() if impl != record["impl"]}
        best = min(others, key=others.get) if others else None
        record["best_baseline"] = best
        record["speedup_vs_best_baseline"] = None if best is None else others[best] / record["ms_p50"]
        record["target_met"] = _check_targets(record)
        record.update(provenance or {})
    return records
