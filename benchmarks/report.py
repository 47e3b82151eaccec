"""Write one device's results: <slug>.json (everything), <slug>.md (the table), <slug>.png (plots).

An existing file for the same device is replaced: each run's files describe that run only.
"""

import datetime
import json
import os

IMPL_ORDER = ("eager", "torch.compile", "torch", "triton", "cuda")
DIRECTION_ORDER = ("fwd", "bwd")


def _sort_key(record):
    impl = record["impl"]
    direction = record["direction"]
    return (record["op"], DIRECTION_ORDER.index(direction) if direction in DIRECTION_ORDER else 9,
            record["dtype"], record["shape"],
            IMPL_ORDER.index(impl) if impl in IMPL_ORDER else len(IMPL_ORDER), impl)


def write_all(results_dir, device_info, records, mode):
    """Write the three files; returns their paths (the PNG is left out when matplotlib is missing)."""
    os.makedirs(results_dir, exist_ok=True)
    records = sorted(records, key=_sort_key)
    stem = os.path.join(results_dir, device_info["slug"])
    created = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    with open(stem + ".json", "w") as f:
        json.dump({"device": device_info, "mode": mode, "created": created, "records": records},
                  f, indent=1)
    with open(stem + ".md", "w") as f:
        f.write(markdown(device_info, records, mode, created))
    paths = [stem + ".json", stem + ".md"]
    if write_plot(stem + ".png", device_info, records):
        paths.append(stem + ".png")
    return paths


def _fmt_speedup(value):
    return "-" if value is None else f"{value:.2f}x"


def _fmt_target(record):
    targets = record["targets"]
    if not targets:
        return ""
    parts = []
    if "min_gb_s" in targets:
        parts.append(f">= {targets['min_gb_s']:g} GB/s")
    if "min_speedup_vs_eager" in targets:
        parts.append(f">= {targets['min_speedup_vs_eager']:g}x eager")
    verdict = "met" if record["target_met"] else "**NOT met**"
    return f"{', '.join(parts)}: {verdict}"


def _header(device_info, mode, created):
    lines = [f"# Benchmarks on {device_info['name']}", ""]
    if device_info["type"] == "cpu":
        lines += [f"> **CPU run** ({device_info['note']}).", ""]
    backends = ", ".join(f"{name} ({'yes' if s['available'] else 'no: ' + s['detail']})"
                         for name, s in device_info["backends"].items())
    lines += [
        f"- created {created}, mode: {mode}",
        f"- torch {device_info['torch']}, triton {device_info['triton']}, "
        f"fastattn {device_info['fastattn']}" + (f", CUDA {device_info['cuda']}"
                                                  if device_info.get("cuda") else ""),
        f"- measured copy bandwidth (read + write): {device_info['copy_gb_s']:.0f} GB/s",
        f"- backends: {backends}",
        "- ms: p50 (p20-p80) of the timed runs"
        + (" with CUDA events, L2 flushed before each run" if device_info["type"] == "cuda"
           else " by wall clock") + "; GB/s from minimal bytes (each input read once, each output "
        "written once); floor ms = minimal bytes / measured copy bandwidth; speedups against the "
        "baselines of the same case in this run.",
        "",
    ]
    return lines


def markdown(device_info, records, mode, created):
    lines = _header(device_info, mode, created)
    for op in dict.fromkeys(r["op"] for r in records):
        op_records = [r for r in records if r["op"] == op]
        lines += [f"## {op}", ""]
        for note in dict.fromkeys(r["target_note"] for r in op_records if r.get("target_note")):
            lines += [f"Targets: {note}", ""]
        lines += ["| case | backend | dtype | shape | ms p50 (p20-p80) | GB/s | % of copy BW "
                  "| floor ms | vs eager | vs torch.compile | target |",
                  "|---|---|---|---|---|---:|---:|---:|---:|---:|---|"]
        for r in op_records:
            shape = "x".join(str(s) for s in r["shape"])
            lines.append(
                f"| {op} {r['direction']} | {r['impl']} | {r['dtype']} | {shape} "
                f"| {r['ms_p50']:.4g} ({r['ms_p20']:.4g}-{r['ms_p80']:.4g}) | {r['gb_s']:.0f} "
                f"| {r['pct_copy_bw']:.0f}% | {r['floor_ms']:.4g} | {_fmt_speedup(r['speedup_vs_eager'])} "
                f"| {_fmt_speedup(r['speedup_vs_compile'])} | {_fmt_target(r)} |")
        lines.append("")
    return "\n".join(lines)


def write_plot(path, device_info, records):
    """GB/s against the case's size: a row per (op, dtype), a column per direction, a line per impl."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    rows = list(dict.fromkeys((r["op"], r["dtype"]) for r in records))
    directions = [d for d in DIRECTION_ORDER if any(r["direction"] == d for r in records)]
    if not rows or not directions:
        return False
    fig, axes = plt.subplots(len(rows), len(directions), squeeze=False,
                             figsize=(5.5 * len(directions), 3.6 * len(rows)))
    for (op, dtype), row_axes in zip(rows, axes):
        for direction, ax in zip(directions, row_axes):
            cell = [r for r in records if (r["op"], r["dtype"], r["direction"]) == (op, dtype, direction)]
            for impl in dict.fromkeys(r["impl"] for r in cell):
                points = sorted((r["plot_x"], r["gb_s"]) for r in cell if r["impl"] == impl)
                style = "--" if impl in ("eager", "torch.compile") else "-"
                ax.plot(*zip(*points), style, marker="o", label=impl)
            ax.axhline(device_info["copy_gb_s"], color="gray", linestyle=":", label="copy bandwidth")
            ax.set_xscale("log", base=2)
            sizes = sorted({r["plot_x"] for r in cell})
            ax.set_xticks(sizes, [str(x) for x in sizes])
            ax.minorticks_off()
            ax.set_xlabel(cell[0]["plot_x_name"] if cell else "")
            ax.set_ylabel("GB/s")
            ax.set_ylim(bottom=0)
            ax.set_title(f"{op} {direction}, {dtype}", fontsize=10)
            ax.grid(True, alpha=0.3)
            ax.legend(fontsize=8)
    title = device_info["name"]
    if device_info["type"] == "cpu":
        title += f"\n{device_info['note']}"
    fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True
