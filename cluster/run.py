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

from actors._core import status as core_status
from actors.mbuf import Uma, ZONES
from actors.vnet import LAT_BUCKETS

from . import __version__
from .engine import LocalExecutor
from .scenario import SCHEMA_VERSION, build


LINKTYPES = {"ether": 1, "raw": 101, "sll": 113, "sll2": 276}


class ConservationError(AssertionError):
    pass


@dataclass
class Result:
    metrics: dict                                    # metrics.json: deterministic
    run_info: dict = field(default_factory=dict)     # run-info.json: wall time, versions
    taps: list = field(default_factory=list)         # (frames, lost) kept per actor
    linktype: int = 1                                # for delivered/dropped.pcapng
    executor: object = None
    actors: list | None = None


def count(summaries: list, in_flight_mail: int) -> dict:
    """Packets in, delivered, dropped by reason, and in flight, right now."""
    arrived = delivered = held = absorbed = 0
    dropped = {}
    for s in summaries:
        arrived += s["arrived"]
        absorbed += s.get("absorbed", 0)
        delivered += s["delivered"]
        held += s["holding"]
        for k, v in s["dropped"].items():
            dropped[k] = dropped.get(k, 0) + v
    return {"arrived": arrived, "delivered": delivered, "dropped": dict(sorted(dropped.items())),
            "dropped_total": sum(dropped.values()), "in_flight": held + in_flight_mail,
            "absorbed_by_reassembly": absorbed}


def check_conservation(executor) -> None:
    c = count(executor.summaries(), executor.in_flight_packets())
    if c["arrived"] != (c["delivered"] + c["dropped_total"] + c["in_flight"]
                        + c["absorbed_by_reassembly"]):
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


def gather(scn: dict, summaries: list, in_flight_mail: int, windows: int, messages: int) -> dict:
    """metrics.json from the actors' summaries (plain data, from any executor)."""
    dur = scn["duration_ns"]
    summaries = sorted(summaries, key=lambda s: s["name"])
    c = count(summaries, in_flight_mail)
    uma = Uma()
    nics, isrs, cpus, vnets = {}, {}, {}, {}
    lat_sum = lat_max = reordered = 0
    hist = [0] * LAT_BUCKETS
    rsum = rn = rmax = 0                # application reads: wire (or send) to recv()
    rhist = [0] * LAT_BUCKETS
    by = {}
    for s in summaries:
        name = s["name"]
        if "uma" in s:
            uma.merge(Uma.from_state(s["uma"]))
        m = s["metrics"]
        if name.startswith("cpu"):
            m["utilization"] = m["busy_ns"] / dur
            cpus[name] = m
        elif name.startswith("netisr"):
            isrs[name] = m
        elif name.startswith("vnet."):
            vnets[name] = m
            ctl = sum(m.get("control", {}).values())
            by["socket"] = by.get("socket", 0) + m["delivered"] - ctl
            if ctl:
                by["tcp control"] = by.get("tcp control", 0) + ctl
            lat_sum += m["latency_ns"]["sum"]
            lat_max = max(lat_max, m["latency_ns"]["max"])
            reordered += m["reordered"]
            hist = [x + y for x, y in zip(hist, m["latency_ns"]["log2_hist"])]
            for sk in m["sockets"].values():
                if "reader" in sk:
                    rd = sk["reader"]
                    rsum += rd["latency_ns"]["sum"]
                    rn += rd["read"]
                    rmax = max(rmax, rd["latency_ns"]["max"])
            rhist = [x + y for x, y in zip(rhist, m.get("read_latency_log2_hist", [0] * LAT_BUCKETS))]
        else:
            nics[name] = m
        if not name.startswith("vnet."):
            for k, v in m.get("consumed", {}).items():
                by[k] = by.get(k, 0) + v
    dl = c["delivered"]
    # protocol statistics as netstat -s reads them: the ipstat/ip6stat/udpstat/
    # icmpstat counters the paths keep, and where a path only names a drop
    # reason (ips_badsum, udps_noport, ...) the count of that reason
    stats = {}
    for part in list(nics.values()) + list(isrs.values()) + list(vnets.values()):
        for k, v in part.get("counters", {}).items():
            stats[k] = stats.get(k, 0) + v
    for k, v in c["dropped"].items():
        if k not in stats:
            stats[k] = v
    ghz = scn["ghz"]
    for cm in cpus.values():
        # cycles spent on this CPU for each delivered packet, split into
        # compute and memory (summed over the CPUs: the whole packet's cost)
        cm["per_delivered_packet"] = {
            "compute_cycles": round(cm["compute_ns"] * ghz / dl, 3) if dl else 0.0,
            "memory_cycles": round(min(cm["memory"]["ns"], cm["busy_ns"]) * ghz / dl, 3) if dl else 0.0}
    out = {
        "schema_version": SCHEMA_VERSION,
        "scenario": {"name": scn["name"], "seed": scn["seed"], "duration_ns": dur,
                     "quantum_ns": scn["quantum_ns"], "windows": windows,
                     "cpus": scn["cpus"], "clock_ghz": scn["ghz"],
                     "sysctl": dict(sorted(scn["sysctl"].items())),
                     "costs_cycles": dict(sorted(scn["costs"].items()))},
        "totals": dict(c, reordered=reordered, delivered_by=dict(sorted(by.items())),
                       throughput_pps=dl * 1e9 / dur,
                       offered_pps=c["arrived"] * 1e9 / dur),
        "latency_ns": dict({"mean": lat_sum / dl if dl else 0.0, "max": lat_max,
                            "p50_le": _percentile(hist, dl, 0.5), "p99_le": _percentile(hist, dl, 0.99),
                            "log2_hist": hist},
                           **({"read_mean": rsum / rn, "read_max": rmax,
                               "read_p99_le": _percentile(rhist, rn, 0.99),
                               "read_log2_hist": rhist} if rn else {})),
        "stats": dict(sorted(stats.items())),
        "nics": nics, "netisr": isrs, "cpus": cpus, "vnets": vnets,
        "uma": uma.to_dict(),
        "engine": {"messages": messages},
    }
    from .sweep import cost_columns
    out["cost_per_packet"] = cost_columns(out)
    locks = {}
    for vn, v in sorted(vnets.items()):
        for name, st in v.get("locks", {}).items():
            locks[f"{vn}:{name}"] = st
    out["locks"] = locks
    return out


def leaked(uma_states: list) -> dict:
    """Zones whose USED count is not back to zero after teardown."""
    uma = Uma()
    for st in uma_states:
        uma.merge(Uma.from_state(st))
    return {z: uma.used(z) for z in ZONES if uma.used(z)}


def make_executor(scn: dict, engine: str = "local", codec_check: bool | None = None, **ray_opts):
    cc = scn["codec_check"] if codec_check is None else codec_check
    if engine == "local":
        return LocalExecutor(build(scn), scn["quantum_ns"], codec_check=cc)
    if engine == "ray":
        from .ray_executor import RayExecutor
        return RayExecutor(scn, **ray_opts)
    raise ValueError(f"unknown engine {engine!r} (local, ray)")


def run(scn: dict, *, check_every_window: bool = False, progress=None,
        codec_check: bool | None = None, engine: str = "local", **ray_opts) -> Result:
    """Run a validated scenario; the metrics do not depend on `engine`."""
    ex = make_executor(scn, engine, codec_check, **ray_opts)
    try:
        t0 = time.perf_counter()
        windows = scn["windows"]
        if engine == "local":
            step = max(1, windows // 100)
            for w in range(windows):
                ex.run_window()
                if check_every_window:
                    check_conservation(ex)
                if progress is not None and (w % step == 0 or w == windows - 1):
                    progress(w + 1, windows)
        else:
            ex.run(windows, progress=progress)
        wall = time.perf_counter() - t0
        summ = ex.summaries()
        taps = [s.pop("tap") for s in summ if "tap" in s]
        metrics = gather(scn, summ, ex.in_flight_packets(), ex.window, ex.messages)
        metrics["capture"] = {"frames_kept": sum(len(f) for f, _ in taps),
                              "frames_not_kept": sum(lost for _, lost in taps)}
        metrics["uma_leaked_after_teardown"] = leaked(ex.teardown())
        info = {"wall_s": wall, "windows": windows, "packets": metrics["totals"]["arrived"],
                "pps_wall": metrics["totals"]["arrived"] / wall if wall else None,
                "engine": engine, "netcabal": __version__, "python": sys.version.split()[0],
                "platform": platform.platform(), "host": platform.node(),
                "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                "core": core_status()["core"]}
        info.update(getattr(ex, "info", {}))
    finally:
        ex.close()
    return Result(metrics, info, taps=taps,
                  linktype=LINKTYPES.get(scn["nics"][0].get("linktype", "ether"), 1),
                  executor=ex, actors=getattr(ex, "actors", None))


def metrics_bytes(metrics: dict) -> bytes:
    return (json.dumps(metrics, sort_keys=True, indent=1) + "\n").encode()


def write_captures(res: Result, folder: Path) -> None:
    """delivered.pcapng and dropped.pcapng: every kept frame at its virtual
    arrival time, each with a comment (the drop reason, or where it went)."""
    from actors.pcap import PcapngWriter
    frames = sorted((f for fs, _ in res.taps for f in fs), key=lambda f: (f[0], f[1]))
    lt = res.linktype
    with PcapngWriter(Path(folder) / "delivered.pcapng", linktype=lt) as dw, \
            PcapngWriter(Path(folder) / "dropped.pcapng", linktype=lt) as xw:
        for arrival, _pid, rcvif, dropped, what, data in frames:
            (xw if dropped else dw).write(arrival, data, comment=f"{what} (rcvif {rcvif})")


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
        write_captures(res, tmp)
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
