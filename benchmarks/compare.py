"""`python -m fastattn bench --compare OLD.json [NEW.json]`: the change per case between two results
files, with regressions beyond the noise flagged, so a kernel change can be judged against the last
committed run.

Noise: a change counts only when it is larger than both the threshold (default 5%) and the spread
of either run's timings ((p80 - p20) / p50): a case whose runs scatter by 10% cannot show a 6%
regression.
"""

from benchmarks import table
from benchmarks.records import record_key

DEFAULT_THRESHOLD = 0.05
REGRESSION, FASTER = "REGRESSION", "faster"
COLUMNS = ("case", "backend", "dtype", "shape", "old ms", "new ms", "change", "old throughput",
           "new throughput", "noise", "verdict")
NUMERIC = {"old ms", "new ms", "change", "old throughput", "new throughput", "noise"}


def _spread(record):
    p20, p80 = record.get("ms_p20"), record.get("ms_p80")
    if p20 is None or p80 is None or not record["ms_p50"]:
        return 0.0
    return (p80 - p20) / record["ms_p50"]


def compare_records(old_records, new_records, threshold=DEFAULT_THRESHOLD):
    """A dict per (case, implementation) measured in both, in report order, plus the keys only
    one side has: {"rows": [...], "only_old": [...], "only_new": [...]}."""
    old = {record_key(r): r for r in old_records}
    new = {record_key(r): r for r in new_records}
    rows = []
    for new_record in table.sort_records(r for k, r in new.items() if k in old):
        old_record = old[record_key(new_record)]
        change = new_record["ms_p50"] / old_record["ms_p50"] - 1.0
        noise = max(threshold, _spread(old_record), _spread(new_record))
        verdict = REGRESSION if change > noise else FASTER if change < -noise else ""
        rows.append({"old": old_record, "new": new_record, "change": change, "noise": noise,
                     "verdict": verdict})
    return {"rows": rows,
            "only_old": [k for k in old if k not in new],
            "only_new": [k for k in new if k not in old]}


def _cells(row):
    old, new = row["old"], row["new"]
    return [*table.row(new)[:4], table.fmt_ms(old["ms_p50"]), table.fmt_ms(new["ms_p50"]),
            f"{100 * row['change']:+.1f}%", table.fmt_throughput(old), table.fmt_throughput(new),
            f"{100 * row['noise']:.0f}%", row["verdict"]]


def _key_text(key):
    op, direction, variant, shape, dtype, impl = key
    return " ".join(str(p) for p in (op, direction, variant, impl, dtype, "x".join(map(str, shape))) if p)


def format_comparison(result, old_data, new_data, old_name, new_name):
    old_device, new_device = old_data["device"], new_data["device"]
    lines = [f"old: {old_name} ({old_device.get('name')}, updated {old_data.get('updated')})",
             f"new: {new_name} ({new_device.get('name')}, updated {new_data.get('updated')})"]
    if old_device.get("name") != new_device.get("name"):
        lines.append("WARNING: different devices: the changes compare machines, not code")
    if old_device.get("type") == "cpu" or new_device.get("type") == "cpu":
        lines.append("note: CPU results: wall-clock numbers on a CPU, not GPU performance")
    lines.append("")
    if result["rows"]:
        lines.append(table.align(COLUMNS, [_cells(r) for r in result["rows"]], NUMERIC))
    else:
        lines.append("no case was measured in both files")
    for side, keys in (("only in old", result["only_old"]), ("only in new", result["only_new"])):
        if keys:
            lines.append(f"{side} ({len(keys)}): " + "; ".join(_key_text(k) for k in keys[:10])
                         + ("; ..." if len(keys) > 10 else ""))
    verdicts = [r["verdict"] for r in result["rows"]]
    lines.append(f"{len(verdicts)} compared: {verdicts.count(REGRESSION)} regressed, "
                 f"{verdicts.count(FASTER)} faster, beyond the noise")
    return "\n".join(lines)


def regressions(result):
    return [r for r in result["rows"] if r["verdict"] == REGRESSION]

