"""`netcabal bench`: how fast the emulator runs.

Local (one process, so one core): simulated packets per wall-second for a
scenario's full pipeline, and the engine's own cost per window measured on
the same host with its traffic switched off (every actor still steps every
window).  Ray: the same two figures for each placement - packed over 1 and
over 2 workers (and more with --workers), and per-component - timing only
the windows, not starting Ray or placing the actors; plus the speed-up of
the packed placement over its 1-worker rate, the placements' runs
alternating.  Wall time is the best of `repeat` runs (on Ray, also their
median, and the speed-up of each round's run over the same round's 1-worker
run), and beside that, round by round, the machine's own ceiling for the
split (cluster/gauge.py: the split's groups, or copies of the host, run in
plain processes at once, against the host alone).  Every timed run first
waits for the machine to settle (gauge.settle).  Locally, each timed run
is bracketed by the machine probe (gauge.probe, a fixed CPython loop), and
the bench reports each run's rate times its probe: the figure to compare
across the minutes in which this machine's speed swings.  Nothing here
goes into metrics.json.
"""

from __future__ import annotations

import statistics
import time

from actors._core import status as core_status

from .gauge import PROBE_STEPS, Gauge, probe, settle
from .placement import crossing, flows, groups_for
from .run import make_executor
from .scenario import build, load


def _time(scn: dict, engine: str, repeat: int, split: list | None = None,
          waits: list | None = None, calm: float = 10.0, probes: list | None = None,
          **opts) -> tuple:
    """(best wall seconds for the windows alone, packets) over `repeat` runs.
    On Ray, `split` gets each run's wall seconds and its Ray actors' own
    timing (seconds in the model's step and in the codec).  Each run waits
    first for the machine to settle (gauge.settle: Ray starting or ending
    worker processes, the previous run's leftovers), and `waits` gets how
    long it waited (None where it gave up or `calm`, the most it waits,
    is 0).  `probes` gets, for each run, its wall seconds and the mean of
    the machine probe (gauge.probe) run just before and just after it."""
    best = None
    packets = 0
    for _ in range(max(1, repeat)):
        ex = make_executor(scn, engine, **opts)
        try:
            w = settle(calm)
            if waits is not None and calm > 0:
                waits.append(w)
            p0 = probe() if probes is not None else 0.0
            t0 = time.perf_counter()
            ex.run(scn["windows"])
            wall = time.perf_counter() - t0
            if probes is not None:
                probes.append((wall, (p0 + probe()) / 2))
            packets = sum(s["arrived"] for s in ex.summaries())
            if split is not None and hasattr(ex, "timing"):
                split.append((wall, ex.timing()))
        finally:
            ex.close()
        best = wall if best is None else min(best, wall)
    return best, packets


def _waits(waits: list, calm: float) -> dict:
    """How long the timed runs waited for the machine to settle (`calm`
    seconds at most)."""
    ok = [w for w in waits if w is not None]
    return {"runs": len(waits), "gave_up": len(waits) - len(ok), "limit_s": calm,
            "median_s": statistics.median(ok) if ok else None, "max_s": max(ok) if ok else None}


def _probed(probes: list, packets: int) -> dict:
    """The machine probe beside each timed run, and each run's rate times
    its probe: packets simulated in the time the machine takes for the
    probe's loop, a figure that swings far less than the rate does."""
    ms = [p * 1e3 for _, p in probes]
    per = [packets / wall * p for wall, p in probes]
    return {"steps": PROBE_STEPS, "probe_ms": [round(x, 3) for x in ms],
            "probe_ms_median": statistics.median(ms),
            "packets_per_probe": [round(x, 1) for x in per],
            "packets_per_probe_median": statistics.median(per)}


def _figures(path, duration_ms: float, engine: str, repeat: int, sets=(), calm: float = 10.0,
             **opts) -> dict:
    scn = load(path, [f"scenario.duration_ms={duration_ms}", *sets])
    idle = load(path, [f"scenario.duration_ms={duration_ms}", "traffic.stop_ms=0", *sets])
    waits = []
    probes = []
    wall, packets = _time(scn, engine, repeat, waits=waits, calm=calm, probes=probes, **opts)
    iwall, _ = _time(idle, engine, 1, waits=waits, calm=calm, **opts)
    w = scn["windows"]
    return {"packets": packets, "wall_s": wall, "pps": packets / wall,
            "us_per_window": wall / w * 1e6, "engine_us_per_window": iwall / w * 1e6,
            "settle": _waits(waits, calm), "probe": _probed(probes, packets)}


def bench(path, duration_ms: float = 200.0, repeat: int = 3, sets=(), calm: float = 10.0) -> dict:
    scn = load(path, [f"scenario.duration_ms={duration_ms}", *sets])
    r = _figures(path, duration_ms, "local", repeat, sets, calm=calm)
    r.update({"scenario": scn["name"], "virtual_ms": duration_ms, "windows": scn["windows"],
              "quantum_ns": scn["quantum_ns"], "repeat": repeat,
              "actors": len(make_executor(scn).actors), "core": core_status()["core"]})
    return r


def bench_ray(path, duration_ms: float = 20.0, repeat: int = 1, workers=(1, 2),
              address: str | None = None, sets=(), windows_per_call: int | None = None,
              calm: float = 10.0, lookahead: bool = False) -> dict:
    """Each placement's figures on Ray.  The runs of the placements alternate
    (packed over 1 worker, over 2, ..., per-component, then again `repeat`
    times), so that a slow phase of a shared machine falls on all of them
    alike rather than on whichever ran then; each reports the best and the
    median of its runs, and the speed-up over 1 packed worker of both.
    `lookahead`: the packed runs with their CPUs a window ahead
    (cluster/ray_executor.py)."""
    from .ray_executor import connect
    connect(address)
    scn = load(path, [f"scenario.duration_ms={duration_ms}", *sets])
    idle = load(path, [f"scenario.duration_ms={duration_ms}", "traffic.stop_ms=0", *sets])
    out = {"scenario": scn["name"], "virtual_ms": duration_ms, "windows": scn["windows"],
           "quantum_ns": scn["quantum_ns"], "repeat": repeat, "runs": [],
           "core": core_status()["core"]}
    from .ray_executor import PER_CALL
    configs = [{"placement": "packed", "workers": w} for w in workers]
    configs.append({"placement": "per-component", "workers": None})
    for c in configs:
        c["windows_per_call"] = windows_per_call or PER_CALL[c["placement"]]
        if lookahead and c["placement"] == "packed":
            c["lookahead"] = True
    walls = [[] for _ in configs]
    splits = [[] for _ in configs]
    packets = [0] * len(configs)
    # the machine's own ceiling for each split, round by round (cluster/
    # gauge.py); on a cluster the workers are other machines: not measured
    ks = sorted({w for w in workers if w > 1})
    gauge = None
    gauge_groups = None
    names = [a.name for a in build(scn)]
    if address is None and ks:
        if len(ks) == 1:
            # a split into islands (no packet crosses): the gauge steps the
            # split's own parts; else k copies of the whole host
            g = groups_for(names, "packed", ks[0], scn)
            if len(g) == ks[0] and crossing(g, flows(scn)) == 0:
                gauge_groups = g
        gauge = Gauge(path, [f"scenario.duration_ms={duration_ms}", *sets], n=max(ks), calm=calm,
                      groups=gauge_groups)
    rounds = []
    waits = []
    try:
        for _ in range(max(1, repeat)):
            for i, c in enumerate(configs):
                wall, packets[i] = _time(scn, "ray", 1, split=splits[i], waits=waits, calm=calm, **c)
                walls[i].append(wall)
            if gauge is not None:
                rounds.append(gauge.round(ks, slack=lookahead))
    finally:
        if gauge is not None:
            gauge.close()
    if gauge is not None:
        waits += gauge.waits
    out["gauge"] = None if gauge is None else {
        "mode": "whole host" if gauge_groups is None else "groups",
        "rounds": [{key: ({str(k): v for k, v in g[key].items()} if isinstance(g[key], dict) else g[key])
                    for key in ("alone_s", "together_s", "lockstep_s", "ceiling", "ceiling_lockstep",
                                "slack_s", "ceiling_slack", "packets") if key in g}
                   for g in rounds]}
    if rounds:
        # the same in packets a second, to hold against the Ray runs' own:
        # the host alone, and the split at each round's ceiling
        k = ks[-1]
        alone = [g["packets"] / statistics.fmean(g["alone_s"]) for g in rounds]
        out["gauge"]["pps_median"] = {
            "alone": statistics.median(alone),
            "on_its_own": statistics.median(x * g["ceiling"][k] for x, g in zip(alone, rounds)),
            "in_step": statistics.median(x * g["ceiling_lockstep"][k] for x, g in zip(alone, rounds))}
        if lookahead:
            out["gauge"]["pps_median"]["a_window_apart"] = statistics.median(
                x * g["ceiling_slack"][k] for x, g in zip(alone, rounds))
    w = scn["windows"]
    for i, c in enumerate(configs):
        iwall, _ = _time(idle, "ray", 1, waits=waits, calm=calm, **c)
        best, med = min(walls[i]), statistics.median(walls[i])
        # the best run's split of a window: the busiest Ray actor's time in
        # the model and with messages (fetching, decoding, encoding); the
        # rest is Ray's and waiting
        bw, tm = min(splits[i], key=lambda x: x[0])
        step = max(t["step_s"] for t in tm.values())
        codec = max(t["codec_s"] for t in tm.values())
        exch = max(t["exchange_s"] for t in tm.values())
        out["runs"].append(dict(c, packets=packets[i], wall_s=best, pps=packets[i] / best,
                                pps_median=packets[i] / med, us_per_window=best / w * 1e6,
                                engine_us_per_window=iwall / w * 1e6,
                                model_us_per_window=step / w * 1e6,
                                codec_us_per_window=codec / w * 1e6,
                                exchange_us_per_window=exch / w * 1e6,
                                other_us_per_window=max(0.0, bw - step - codec - exch) / w * 1e6))
    out["settle"] = _waits(waits, calm)
    for r in out["runs"]:
        if r["placement"] == "packed":
            g = groups_for(names, "packed", r["workers"], scn)
            r["groups"] = ["+".join(x) for x in g]
            r["crossing_pps_estimate"] = crossing(g, flows(scn))
    bi = next((i for i, r in enumerate(out["runs"]) if r["workers"] == 1), None)
    base = out["runs"][bi] if bi is not None else None
    for i, r in enumerate(out["runs"]):
        r["speedup_vs_1_worker"] = r["pps"] / base["pps"] if base else None
        r["speedup_median_vs_1_worker"] = r["pps_median"] / base["pps_median"] if base else None
        # run by run: each of this placement's runs against the 1-worker run
        # of the same round (taken minutes apart at most, not hours), the
        # reading a drifting machine disturbs least
        pairs = [b / x for b, x in zip(walls[bi], walls[i])] if base else []
        r["speedup_pairs_vs_1_worker"] = pairs
        r["speedup_pair_median_vs_1_worker"] = statistics.median(pairs) if pairs else None
        # and the machine's ceiling for this many workers in each round
        w = r["workers"]
        for key in ("ceiling", "ceiling_lockstep") + (("ceiling_slack",) if lookahead else ()):
            ceil = [g[key][w] for g in rounds] if w in ks and rounds else []
            r[key + "_pairs"] = ceil
            r[key + "_pair_median"] = statistics.median(ceil) if ceil else None
    return out
