"""PNG plots of a device's results, one file per op: <stem>.<op>.png.

Ops whose cases have a size axis (plot_x: sequence length, hidden size) get throughput against that
size, a line per backend and baseline, with the device's measured peak drawn across. Ops without one
(whole models) get speedup bars against eager. Without matplotlib no plots are written.
"""

import re

from benchmarks.records import throughput
from benchmarks.table import IMPL_ORDER, sort_records

BASELINE_STYLE, BACKEND_STYLE = "--", "-"


def plot_path(stem, op):
    return f"{stem}.{re.sub(r'[^A-Za-z0-9_-]+', '-', op)}.png"


def _pyplot():
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    return plt


def _title(device_info, op):
    title = f"{op} on {device_info['name']}"
    if device_info.get("type") == "cpu":
        title += f"\n{device_info.get('note', 'CPU run')}"
    return title


def _peak_line(ax, device_info, unit):
    peak = device_info.get("gemm_tflops") if unit == "TFLOP/s" else device_info.get("copy_gb_s")
    if peak:
        ax.axhline(peak, color="gray", linestyle=":",
                   label="measured GEMM peak" if unit == "TFLOP/s" else "measured copy bandwidth")


def _column(record):
    return " ".join(p for p in (record["direction"], record.get("variant")) if p)


def _line_figure(plt, device_info, op, records):
    """Rows: dtype; columns: direction and variant; a line per implementation."""
    records = sort_records(records)
    dtypes = list(dict.fromkeys(r["dtype"] for r in records))
    columns = list(dict.fromkeys(_column(r) for r in records))
    fig, axes = plt.subplots(len(dtypes), len(columns), squeeze=False,
                             figsize=(5.5 * len(columns), 3.6 * len(dtypes)))
    for dtype, row_axes in zip(dtypes, axes):
        for column, ax in zip(columns, row_axes):
            cell = [r for r in records if r["dtype"] == dtype and _column(r) == column]
            unit = throughput(cell[0])[1] if cell else "GB/s"
            for impl in dict.fromkeys(r["impl"] for r in cell):
                points = sorted((r["plot_x"], throughput(r)[0]) for r in cell
                                if r["impl"] == impl and throughput(r)[0] is not None)
                if points:
                    is_baseline = any(r["kind"] == "baseline" for r in cell if r["impl"] == impl)
                    style = BASELINE_STYLE if is_baseline else BACKEND_STYLE
                    ax.plot(*zip(*points), style, marker="o", label=impl)
            _peak_line(ax, device_info, unit)
            sizes = sorted({r["plot_x"] for r in cell})
            if sizes and min(sizes) > 0:
                ax.set_xscale("log", base=2)
                ax.set_xticks(sizes, [str(x) for x in sizes])
                ax.minorticks_off()
            ax.set_xlabel((cell[0]["plot_x_name"] or "size") if cell else "")
            ax.set_ylabel(unit)
            ax.set_ylim(bottom=0)
            ax.set_title(f"{column}, {dtype}", fontsize=10)
            ax.grid(True, alpha=0.3)
            ax.legend(fontsize=8)
    return fig


def _bar_case(record):
    return (_column(record), record["dtype"], tuple(record["shape"]))


def _bar_figure(plt, device_info, op, records):
    """A group of bars per case (direction, dtype, shape), a bar per non-eager implementation."""
    records = sort_records(r for r in records if r["impl"] != "eager")
    cases = list(dict.fromkeys(_bar_case(r) for r in records))
    impls = sorted({r["impl"] for r in records},
                   key=lambda i: IMPL_ORDER.index(i) if i in IMPL_ORDER else len(IMPL_ORDER))
    width = 0.8 / max(len(impls), 1)
    fig, ax = plt.subplots(figsize=(max(5.5, 1.2 * len(cases) * max(len(impls), 1)), 4))
    for i, impl in enumerate(impls):
        speedups = {_bar_case(r): r["speedup_vs_eager"] for r in records if r["impl"] == impl}
        xs = [j + i * width for j, case in enumerate(cases) if speedups.get(case) is not None]
        ys = [speedups[case] for case in cases if speedups.get(case) is not None]
        ax.bar_label(ax.bar(xs, ys, width, label=impl), fmt="%.2fx", fontsize=7)
    ax.axhline(1.0, color="gray", linestyle=":", label="eager")
    ax.set_xticks([j + width * (len(impls) - 1) / 2 for j in range(len(cases))],
                  [f"{column} {dtype}\n{'x'.join(map(str, shape))}" for column, dtype, shape in cases],
                  fontsize=8)
    ax.set_ylabel("speedup vs eager")
    ax.grid(True, axis="y", alpha=0.3)
    ax.legend(fontsize=8)
    return fig


def write_plots(stem, device_info, records):
    """Write one PNG per op; returns {op: path} of those written."""
    plt = _pyplot()
    if plt is None:
        return {}
    written = {}
    for op in dict.fromkeys(r["op"] for r in sort_records(records)):
        op_records = [r for r in records if r["op"] == op]
        sized = all(r.get("plot_x") is not None for r in op_records)
        figure = _line_figure if sized else _bar_figure
        fig = figure(plt, device_info, op, op_records)
        fig.suptitle(_title(device_info, op), fontsize=11)
        fig.tight_layout()
        fig.savefig(plot_path(stem, op), dpi=100)
        plt.close(fig)
        written[op] = plot_path(stem, op)
    return written
