"""Write one device's results: <slug>.json (every case), <slug>.md (the tables), <slug>.<op>.png.

A run is merged into the device's JSON (results_file.py: re-run cases replaced, others kept), and the
markdown and plots are then redrawn from the whole merged file, so they always show every case the
device has results for.
"""

import os

from benchmarks import plots, results_file, table


def write_all(results_dir, device_info, records, updated):
    """Merge `records` (finalized) into the device's files; returns the paths written."""
    os.makedirs(results_dir, exist_ok=True)
    stem = os.path.join(results_dir, device_info["slug"])
    data = results_file.merge_into(stem + ".json", device_info, records, updated)
    written_plots = plots.write_plots(stem, device_info, data["records"])
    with open(stem + ".md", "w") as f:
        f.write(markdown(data, {op: os.path.basename(p) for op, p in written_plots.items()}))
    return [stem + ".json", stem + ".md", *written_plots.values()]


def peaks_line(device_info):
    """The two measured ceilings that the % of peak column divides by."""
    gemm = device_info.get("gemm_tflops")
    return (f"measured copy bandwidth (read + write) {device_info['copy_gb_s']:.0f} GB/s; "
            + (f"measured GEMM ({device_info.get('gemm')}) {gemm:.3g} TFLOP/s" if gemm
               else "GEMM peak not measured"))


def method_line(device_info):
    clock = ("CUDA events, L2 flushed before each run" if device_info.get("type") == "cuda"
             else "wall clock")
    return (f"ms: p50 (p20-p80) of the timed runs ({clock}). Throughput: TFLOP/s for compute-bound "
            "cases, as % of the measured GEMM peak; GB/s from minimal bytes (each input read once, "
            "each output written once) for memory-bound ones, as % of the measured copy bandwidth. "
            "Speedups: against eager PyTorch and against the fastest other baseline (eager, SDPA, "
            "torch.compile, flash-attn) of the same case, measured in the same run.")


def _header(data):
    device_info = data["device"]
    lines = [f"# Benchmarks on {device_info['name']}", ""]
    if device_info.get("type") == "cpu":
        lines += [f"> **CPU run** ({device_info.get('note', 'no GPU')}).", ""]
    backends = ", ".join(f"{name} ({'yes' if s['available'] else 'no: ' + s['detail']})"
                         for name, s in device_info.get("backends", {}).items())
    cuda = f", CUDA {device_info['cuda']}" if device_info.get("cuda") else ""
    lines += [
        f"- updated {data['updated']} (each case's own time and commit are in the JSON)",
        f"- latest run: torch {device_info.get('torch')}, triton {device_info.get('triton')}, "
        f"fastattn {device_info.get('fastattn')} at commit {device_info.get('commit') or 'unknown'}"
        + cuda,
        f"- {peaks_line(device_info)}",
        f"- backends: {backends}",
        f"- {method_line(device_info)}",
        "",
    ]
    return lines


def _provenance(op_records):
    runs = sorted({(r.get("measured_at") or "?", r.get("commit") or "?", r.get("mode") or "?")
                   for r in op_records})
    return "; ".join(f"measured {at} at commit {commit} ({mode})" for at, commit, mode in runs)


def markdown(data, plot_files=None):
    lines = _header(data)
    records = data["records"]
    for op in dict.fromkeys(r["op"] for r in table.sort_records(records)):
        op_records = [r for r in records if r["op"] == op]
        lines += [f"## {op}", "", _provenance(op_records), ""]
        for note in dict.fromkeys(r["target_note"] for r in op_records if r.get("target_note")):
            lines += [f"Targets: {note}", ""]
        lines += [table.markdown(op_records), ""]
        if plot_files and op in plot_files:
            lines += [f"![{op}]({plot_files[op]})", ""]
    return "\n".join(lines)
