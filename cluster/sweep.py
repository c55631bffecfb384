"""Sweeps: run a scenario over a grid of overrides, one results folder a point.

`--sweep KEY=V1,V2` (any number of them) and the scenario's own `[sweep]`
table (KEY = [V1, V2]) span a grid; the command line wins for a key named in
both.  Every point is loaded and validated before any runs, so a bad value
is refused up front.  Locally the points run one after another; with
`--engine ray` every point is a Ray task (the local executor inside it) and
the points run concurrently over the cluster.  The sweep folder holds one
results folder per point, `sweep.csv` and `sweep.json` with the main metrics
of each point.
"""

from __future__ import annotations

import csv
import io
import itertools
import json
import os
import re
import shutil
import tomllib
from pathlib import Path

from .scenario import ScenarioError, load


def _toml_value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return json.dumps(v)
    return json.dumps(v) if isinstance(v, list) else repr(v)


def parse_sweeps(args: list, table: dict) -> list:
    """[(key, [value strings])] in a stable order: the table's, then the CLI's."""
    axes = {k: [_toml_value(v) for v in vals] for k, vals in table.items()}
    for a in args or []:
        if "=" not in a:
            raise ScenarioError("--sweep", a, "expected KEY=V1,V2,...")
        k, vals = a.split("=", 1)
        values = [v.strip() for v in vals.split(",") if v.strip()]
        if not values:
            raise ScenarioError("--sweep", k, "no values")
        axes[k.strip()] = values
    return list(axes.items())


def _shown(v: str):
    """A sweep value as the table shows it: the TOML value, not its quoting."""
    try:
        return tomllib.loads(f"v = {v}")["v"]
    except tomllib.TOMLDecodeError:
        return v


def point_name(point: list) -> str:
    s = ",".join(f"{k}={_shown(v)}" for k, v in point)
    return re.sub(r"[^A-Za-z0-9_.,=+-]", "_", s) or "point"


def plan(path, sweeps: list, sets: list) -> list:
    """Every point of the grid as (name, overrides, validated scenario)."""
    base = load(path, sets)
    axes = parse_sweeps(sweeps, base["sweep"])
    if not axes:
        raise ScenarioError(path, "sweep", "nothing to sweep: give --sweep KEY=V1,V2 or a [sweep] table")
    points = []
    for combo in itertools.product(*[[(k, v) for v in vals] for k, vals in axes]):
        over = list(sets) + [f"{k}={v}" for k, v in combo]
        points.append((point_name(list(combo)), {k: _shown(v) for k, v in combo}, load(path, over)))
    return points


def row(point: dict, m: dict) -> dict:
    t = m["totals"]
    drops = t["dropped"]
    top = max(drops.items(), key=lambda kv: (kv[1], kv[0]))[0] if drops else ""
    # load balance: packets handled by each thread that ran the protocols
    # (netisr threads, and ithreads under direct dispatch)
    work = [sum(p["handled"] for p in w["protocols"].values()) for w in m["netisr"].values()]
    work += [sum(q.get("direct", {}).values()) for n in m["nics"].values() for q in n["queues"]]
    total = sum(work)
    busy_threads = sum(1 for x in work if total and x >= 0.05 * total)
    share = round(max(work) / total, 3) if total else 0.0
    r = dict(point)
    r.update({"offered_pps": round(t["offered_pps"]), "throughput_pps": round(t["throughput_pps"]),
              "delivered": t["delivered"], "dropped_total": t["dropped_total"],
              "in_flight": t["in_flight"], "reordered": t["reordered"],
              "latency_mean_ns": round(m["latency_ns"]["mean"], 1),
              "latency_p99_le_ns": m["latency_ns"]["p99_le"],
              "max_cpu_util": round(max((c["utilization"] for c in m["cpus"].values()), default=0), 4),
              "stack_threads": busy_threads, "max_thread_share": share,
              "top_drop": top})
    r.update(cost_columns(m))
    r.update(lock_columns(m))
    return r


def lock_columns(m: dict) -> dict:
    """Mean wait per acquisition and share contended, for the pcbinfo locks
    (tables and groups) and for the pcb locks."""
    out = {}
    for kind, pick in (("pcbinfo", lambda n: not n.endswith("inp")), ("pcb", lambda n: n.endswith("inp"))):
        acq = cont = wait = 0
        for name, st in m.get("locks", {}).items():
            if pick(name.split(":", 1)[-1]):
                acq += st["acquisitions"]
                cont += st["contended"]
                wait += st["wait_ns_total"]
        out[f"{kind}_lock_wait_ns"] = round(wait / acq, 1) if acq else 0.0
        out[f"{kind}_lock_contended"] = round(cont / acq, 3) if acq else 0.0
    return out


def cost_columns(m: dict) -> dict:
    """The cost model's figures per delivered packet: cycles (all, and the
    memory part), cache lines by where they were found, context switches
    (all, and involuntary), migrations, interrupts."""
    cpus = m["cpus"].values()
    n = m["totals"]["delivered"] or 1
    ghz = m["scenario"]["clock_ghz"]
    lines = {}
    for c in cpus:
        for k, v in c.get("memory", {}).get("lines", {}).items():
            lines[k] = lines.get(k, 0) + v
    busy = sum(c["busy_ns"] for c in cpus)
    mem = sum(c.get("memory", {}).get("ns", 0) for c in cpus)
    csw = sum(sum(c.get("context_switches", {}).values()) for c in cpus)
    inv = sum(c.get("context_switches", {}).get("involuntary", 0) for c in cpus)
    out = {"cycles_per_pkt": round(busy * ghz / n, 1), "mem_cycles_per_pkt": round(mem * ghz / n, 1)}
    for k in ("local", "llc", "xcore", "xpkg", "dram", "dram_remote"):
        out[f"{k}_lines_per_pkt"] = round(lines.get(k, 0) / n, 3)
    out.update({"csw_per_pkt": round(csw / n, 3), "invol_csw_per_pkt": round(inv / n, 3),
                "migrations": sum(c.get("migrations_in", 0) for c in cpus),
                "interrupts": sum(c.get("interrupts", 0) for c in cpus)})
    rl = m["latency_ns"].get("read_mean")
    if rl is not None:
        out["read_latency_mean_ns"] = round(rl, 1)
    return out


def _ray_point(scn):
    from .run import run
    res = run(scn)
    return res.metrics, res.run_info, res.taps, res.linktype


def run_sweep(path, sweeps: list, sets: list, out: Path, engine: str = "local",
              address: str | None = None, progress=None) -> list:
    from .run import Result, run, write_results
    points = plan(path, sweeps, sets)
    out = Path(out)
    results = []
    if engine == "ray":
        import ray

        from .ray_executor import connect
        connect(address)
        task = ray.remote(num_cpus=1)(_ray_point)
        refs = [task.remote(scn) for _, _, scn in points]
        done = 0
        for (name, point, scn), ref in zip(points, refs):
            metrics, info, taps, lt = ray.get(ref)
            info["engine"] = "ray (one task per sweep point)"
            results.append((name, point, Result(metrics, info, taps=taps, linktype=lt)))
            done += 1
            if progress:
                progress(done, len(points))
    else:
        for i, (name, point, scn) in enumerate(points):
            results.append((name, point, run(scn)))
            if progress:
                progress(i + 1, len(points))
    # everything goes to a temporary folder, renamed into place when complete
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f".{out.name}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    final, out = out, tmp
    rows = []
    for name, point, res in results:
        write_results(res, out / name)
        r = row(point, res.metrics)
        r["results"] = name
        rows.append(r)
    keys = list(rows[0].keys()) if rows else []
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=keys, lineterminator="\n")
    w.writeheader()
    w.writerows(rows)
    (out / "sweep.csv").write_text(buf.getvalue())
    (out / "sweep.json").write_text(json.dumps(rows, indent=1, sort_keys=False) + "\n")
    if final.exists():
        shutil.rmtree(final)
    tmp.rename(final)
    return rows
