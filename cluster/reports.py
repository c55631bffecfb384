"""Text reports written beside metrics.json.

For now a plain-text summary (the table `netcabal run` prints); the FreeBSD
formats (`netstat -Q`, `netstat -m`, `vmstat -z`, `netstat -s`, lockstat)
come with the work items that model what they show.
"""

from __future__ import annotations

from pathlib import Path


def summary_rows(m: dict) -> list:
    """(section, label, value) rows of the run summary, in display order."""
    t = m["totals"]
    rows = [("packets", "in (arrived on the wire)", f"{t['arrived']:,}"),
            ("packets", "delivered to sockets", f"{t['delivered']:,}"),
            ("packets", "dropped", f"{t['dropped_total']:,}"),
            ("packets", "in flight at the end", f"{t['in_flight']:,}"),
            ("packets", "reordered within a flow", f"{t['reordered']:,}"),
            ("packets", "throughput", f"{t['throughput_pps']:,.0f} pps"),
            ("latency", "mean wire-to-socket", f"{m['latency_ns']['mean'] / 1000:,.2f} us"),
            ("latency", "p99 (log2 bucket bound)", f"<= {m['latency_ns']['p99_le'] / 1000:,.2f} us")]
    for reason, n in t["dropped"].items():
        rows.append(("dropped", reason, f"{n:,}"))
    for name, w in m["netisr"].items():
        handled = sum(p["handled"] for p in w["protocols"].values())
        qd = sum(p["qdrops"] for p in w["protocols"].values())
        rows.append(("netisr", f"{name} (cpu{w['cpu']})", f"handled {handled:,}  qdrops {qd:,}"))
    for name, c in m["cpus"].items():
        cls = "  ".join(f"{k} {v / m['scenario']['duration_ns']:.1%}" for k, v in c["by_class_ns"].items())
        rows.append(("cpu", name, f"{c['utilization']:.1%}" + (f"  ({cls})" if cls else "")))
    return rows


def summary_text(m: dict) -> str:
    rows = summary_rows(m)
    w = max(len(r[1]) for r in rows)
    out, sec = [], None
    for s, label, val in rows:
        if s != sec:
            out.append(f"{s}:")
            sec = s
        out.append(f"  {label:<{w}}  {val}")
    return "\n".join(out) + "\n"


def write_text_reports(m: dict, folder: Path) -> None:
    (Path(folder) / "summary.txt").write_text(summary_text(m))
