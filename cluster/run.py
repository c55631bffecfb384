"""Running a scenario: build the host, step the engine, gather metrics.

`run(scn)` returns a `Result` whose `metrics` is a plain dict that depends
only on the scenario and its seed - never on wall time, the executor or the
placement - and `write_results()` writes it to a results folder atomically:
everything goes to a temporary folder beside the target, which is renamed
into place only when every file is written, so a failed run never leaves a
folder that looks complete.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from actors.mbuf import Uma, ZONES
from actors.vnet import LAT_BUCKETS

from . import __version__
from .engine import LocalExecutor
from .scenario import SCHEMA_VERSION, build


class ConservationError(AssertionError):
    pass


@dataclass
class Result:
    metrics: dict
    run_info: dict = field(default_factory=dict)


def count(actors, executor) -> dict:
    """Packets in, delivered, dropped by reason, and in flight, right now."""
    arrived = delivered = held = 0
    dropped = {}
    for a in actors:
        arrived += getattr(a, "arrived", 0)
        if hasattr(a, "delivered") and a.name.startswith("vnet."):
            delivered += a.delivered
        held += a.holding()
        if hasattr(a, "dropped"):
            for k, v in a.dropped().items():
                dropped[k] = dropped.get(k, 0) + v
    in_flight = held + executor.in_flight_packets()
    return {"arrived": arrived, "delivered": delivered, "dropped": dict(sorted(dropped.items())),
            "dropped_total": sum(dropped.values()), "in_flight": in_flight}


def check_conservation(actors, executor) -> None:
    c = count(actors, executor)
    if c["arrived"] != c["delivered"] + c["dropped_total"] + c["in_flight"]:
        raise ConservationError(
            f"window {executor.window}: in {c['arrived']} != delivered {c['delivered']} "
            f"+ dropped {c['dropped_total']} + in flight {c['in_flight']}")


def _percentile(hist: list, total: int, q: float) -> int:
    """Upper bound (ns) of the log2 bucket holding the q-quantile."""
    if not total:
        return 0
    need = q * total
    acc = 0
    for b, n in enumerate(hist):
        acc += n
        if acc >= need:
            return (1 << b) - 1 if b else 0
    return (1 << (len(hist) - 1))


def gather(scn: dict, actors: list, executor) -> dict:
    dur = scn["duration_ns"]
    c = count(actors, executor)
    uma = Uma()
    nics, isrs, cpus, vnets = {}, {}, {}, {}
    lat_sum = lat_max = reordered = 0
    hist = [0] * LAT_BUCKETS
    for a in actors:
        if hasattr(a, "uma"):
            uma.merge(a.uma)
        m = a.metrics()
        m.pop("uma", None)
        if a.name.startswith("cpu"):
            m["utilization"] = m["busy_ns"] / dur
            cpus[a.name] = m
        elif a.name.startswith("netisr"):
            isrs[a.name] = m
        elif a.name.startswith("vnet."):
            vnets[a.name] = m
            lat_sum += m["latency_ns"]["sum"]
            lat_max = max(lat_max, m["latency_ns"]["max"])
            reordered += m["reordered"]
            hist = [x + y for x, y in zip(hist, m["latency_ns"]["log2_hist"])]
        else:
            nics[a.name] = m
    dl = c["delivered"]
    return {
        "schema_version": SCHEMA_VERSION,
        "scenario": {"name": scn["name"], "seed": scn["seed"], "duration_ns": dur,
                     "quantum_ns": scn["quantum_ns"], "windows": executor.window,
                     "cpus": scn["cpus"], "clock_ghz": scn["ghz"],
                     "sysctl": dict(sorted(scn["sysctl"].items())),
                     "costs_cycles": dict(sorted(scn["costs"].items()))},
        "totals": dict(c, reordered=reordered,
                       throughput_pps=dl * 1e9 / dur,
                       offered_pps=c["arrived"] * 1e9 / dur),
        "latency_ns": {"mean": lat_sum / dl if dl else 0.0, "max": lat_max,
                       "p50_le": _percentile(hist, dl, 0.5), "p99_le": _percentile(hist, dl, 0.99),
                       "log2_hist": hist},
        "nics": nics, "netisr": isrs, "cpus": cpus, "vnets": vnets,
        "uma": uma.to_dict(),
        "engine": {"messages": executor.messages},
    }


def teardown(actors, executor) -> dict:
    """Close the host: free queued packets, socket buffers and in-flight batches.

    Returns the zones whose USED count is not back to zero - a leak (empty
    when every allocation went back to its zone)."""
    from actors.mbuf import m_freem
    uma = Uma()
    for a in actors:
        if hasattr(a, "teardown"):
            a.teardown()
    for box in executor.mail.values():
        for msgs in box.values():
            for msg in msgs:
                if msg[4].startswith("pkts"):
                    for m in msg[5]:
                        m_freem(uma, m)
    executor.mail.clear()
    for a in actors:
        if hasattr(a, "uma"):
            uma.merge(a.uma)
    return {z: uma.used(z) for z in ZONES if uma.used(z)}


def run(scn: dict, *, check_every_window: bool = False, progress=None,
        codec_check: bool | None = None) -> Result:
    """Run a validated scenario on the local executor."""
    actors = build(scn)
    cc = scn["codec_check"] if codec_check is None else codec_check
    ex = LocalExecutor(actors, scn["quantum_ns"], codec_check=cc)
    t0 = time.perf_counter()
    windows = scn["windows"]
    step = max(1, windows // 100)
    for w in range(windows):
        ex.run_window()
        if check_every_window:
            check_conservation(actors, ex)
        if progress is not None and (w % step == 0 or w == windows - 1):
            progress(w + 1, windows)
    wall = time.perf_counter() - t0
    metrics = gather(scn, actors, ex)
    metrics["uma_leaked_after_teardown"] = teardown(actors, ex)
    info = {"wall_s": wall, "windows": windows, "packets": metrics["totals"]["arrived"],
            "pps_wall": metrics["totals"]["arrived"] / wall if wall else None,
            "engine": "local", "netcabal": __version__, "python": sys.version.split()[0],
            "platform": platform.platform(), "host": platform.node(),
            "started": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    res = Result(metrics, info)
    res.actors = actors
    res.executor = ex
    return res


def metrics_bytes(metrics: dict) -> bytes:
    return (json.dumps(metrics, sort_keys=True, indent=1) + "\n").encode()


def write_results(res: Result, out: Path, extra: dict | None = None) -> Path:
    """Write a results folder atomically (temporary folder, then rename)."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f".{out.name}.tmp-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    try:
        (tmp / "metrics.json").write_bytes(metrics_bytes(res.metrics))
        (tmp / "run-info.json").write_text(json.dumps(res.run_info, sort_keys=True, indent=1) + "\n")
        from .reports import write_text_reports
        write_text_reports(res.metrics, tmp)
        for name, data in (extra or {}).items():
            (tmp / name).write_text(data)
        if out.exists():
            old = out.parent / f".{out.name}.old-{os.getpid()}"
            out.rename(old)
            tmp.rename(out)
            shutil.rmtree(old)
        else:
            tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out
