"""A device's results file, <results-dir>/<slug>.json: read it, merge a run into it, find the newest.

One file per device holds every case ever measured there. A run replaces the cases it measured (all
implementations of a case at once, so a case's speedups always come from one run) and keeps the
others, so running one suite never wipes another's results. Each record carries when it was measured
(`measured_at`) and from which fastattn commit (`commit`).
"""

import glob
import json
import os

from benchmarks.records import case_key

SCHEMA = 2


def normalize(record):
    """Fill the fields newer runs add, so records from older files render and compare alike."""
    record.setdefault("flops", None)
    record.setdefault("tflop_s", None)
    record.setdefault("pct_gemm", None)
    record.setdefault("bound", "compute" if record.get("flops") else "memory")
    record.setdefault("peak", "GEMM" if record["bound"] == "compute" else "copy BW")
    record.setdefault("pct_of_peak", record["pct_gemm"] if record["bound"] == "compute"
                      else record.get("pct_copy_bw"))
    for field in ("speedup_vs_eager", "speedup_vs_compile", "speedup_vs_best_baseline",
                  "best_baseline", "target_met", "target_note", "measured_at", "commit", "mode",
                  "plot_x", "plot_x_name", "gb_s", "floor_ms"):
        record.setdefault(field, None)
    record.setdefault("targets", {})
    record.setdefault("variant", None)
    return record


def load(path):
    """The results dict {"device", "updated", "records", ...} of `path`, records normalized."""
    with open(path) as f:
        data = json.load(f)
    if not isinstance(data, dict) or not isinstance(data.get("records"), list):
        raise ValueError(f"{path}: not a fastattn benchmark results file (no 'records' list)")
    # Files before schema 2 held one run: its time stands for every record's.
    for record in data["records"]:
        normalize(record)
        if record["measured_at"] is None:
            record["measured_at"] = data.get("created")
            record["mode"] = record["mode"] or data.get("mode")
    data.setdefault("device", {})
    data.setdefault("updated", data.get("created"))
    return data


def merge(old_records, new_records):
    """Old records whose case was not re-run, then the new ones."""
    rerun = {case_key(r) for r in new_records}
    return [r for r in old_records if case_key(r) not in rerun] + list(new_records)


def merge_into(path, device_info, new_records, updated):
    """Merge a run into `path` (created if absent); returns the merged results dict, written."""
    old_records = load(path)["records"] if os.path.exists(path) else []
    data = {"schema": SCHEMA, "device": device_info, "updated": updated,
            "records": merge(old_records, new_records)}
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(data, f, indent=1)
    os.replace(tmp, path)  # a crash mid-write must not lose the cases of earlier runs
    return data


def newest_gpu_results(results_dir):
    """(path, data) of the GPU results file in `results_dir` updated last, or (None, None).

    CPU files never qualify: their numbers say nothing about what fastattn buys on a GPU.
    """
    newest = (None, None)
    for path in sorted(glob.glob(os.path.join(results_dir, "*.json"))):
        try:
            data = load(path)
        except (OSError, ValueError):
            continue
        if data["device"].get("type") != "cuda" or not data["records"]:
            continue
        if newest[1] is None or (data["updated"] or "") > (newest[1]["updated"] or ""):
            newest = (path, data)
    return newest
