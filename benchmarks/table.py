"""The results table, one row per (case, implementation), as markdown or as plain terminal text.

The report file, the end-of-run summary and the README all show these same rows, so a number reads
the same wherever it is seen.
"""

from benchmarks.records import throughput

IMPL_ORDER = ("eager", "torch.compile", "sdpa", "flash-attn", "torch", "triton", "cuda", "auto")
DIRECTION_ORDER = ("fwd", "bwd")
COLUMNS = ("case", "backend", "dtype", "shape", "ms p50 (p20-p80)", "throughput", "% of peak",
           "vs eager", "vs best baseline", "target")
NUMERIC = {"ms p50 (p20-p80)", "throughput", "% of peak", "vs eager", "vs best baseline"}


def _order(value, order):
    return order.index(value) if value in order else len(order)


def sort_key(record):
    return (record["op"], _order(record["direction"], DIRECTION_ORDER), record.get("variant") or "",
            record["dtype"], record["shape"], _order(record["impl"], IMPL_ORDER), record["impl"])


def case_label(record):
    return " ".join(str(p) for p in (record["op"], record["direction"], record.get("variant")) if p)


def sort_records(records):
    return sorted(records, key=sort_key)


def fmt_speedup(value):
    return "-" if value is None else f"{value:.2f}x"


def fmt_ms(value):
    return "-" if value is None else f"{value:.4g}"


def fmt_throughput(record):
    value, unit = throughput(record)
    if value is None:
        return "-"
    return f"{value:.3g} {unit}" if value < 100 else f"{value:.0f} {unit}"


def fmt_pct_peak(record):
    pct = record.get("pct_of_peak")
    return "-" if pct is None else f"{pct:.0f}% {record.get('peak') or ''}".rstrip()


def fmt_target(record, bold="**"):
    targets = record.get("targets") or {}
    if not targets:
        return ""
    parts = []
    if "min_gb_s" in targets:
        parts.append(f">= {targets['min_gb_s']:g} GB/s")
    if "min_tflop_s" in targets:
        parts.append(f">= {targets['min_tflop_s']:g} TFLOP/s")
    if "min_speedup_vs_eager" in targets:
        parts.append(f">= {targets['min_speedup_vs_eager']:g}x eager")
    verdict = "met" if record.get("target_met") else f"{bold}NOT met{bold}"
    return f"{', '.join(parts)}: {verdict}"


def row(record, bold="**"):
    best = record.get("best_baseline")
    vs_best = fmt_speedup(record.get("speedup_vs_best_baseline"))
    return (case_label(record), record["impl"], record["dtype"],
            "x".join(str(s) for s in record["shape"]),
            f"{fmt_ms(record['ms_p50'])} ({fmt_ms(record.get('ms_p20'))}-{fmt_ms(record.get('ms_p80'))})",
            fmt_throughput(record), fmt_pct_peak(record), fmt_speedup(record.get("speedup_vs_eager")),
            vs_best + (f" ({best})" if best else ""), fmt_target(record, bold))


def _columns(records, columns):
    # The target column only where some case has a target: most suites have none.
    if not any(r.get("targets") for r in records):
        columns = tuple(c for c in columns if c != "target")
    return columns


def _cells(records, columns, bold):
    columns = _columns(records, columns)
    index = [COLUMNS.index(c) for c in columns]
    return columns, [[row(r, bold)[i] for i in index] for r in sort_records(records)]


def markdown(records, columns=COLUMNS):
    columns, cells = _cells(records, columns, "**")
    lines = ["| " + " | ".join(columns) + " |",
             "|" + "|".join("---:" if c in NUMERIC else "---" for c in columns) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in cells]
    return "\n".join(lines)


def align(columns, cells, numeric=NUMERIC):
    """Aligned plain text for a terminal: numbers right-aligned, words left-aligned."""
    widths = [max([len(c)] + [len(r[i]) for r in cells]) for i, c in enumerate(columns)]

    def line(values):
        return "  ".join(v.rjust(w) if c in numeric else v.ljust(w)
                         for v, w, c in zip(values, widths, columns)).rstrip()

    return "\n".join([line(columns), line(["-" * w for w in widths])] + [line(r) for r in cells])


def text(records, columns=COLUMNS):
    return align(*_cells(records, columns, ""))
