"""`netcabal bench`: how fast the emulator runs, in one process (one core).

Two figures, as design §6 asks: simulated packets per wall-second for a
scenario's full pipeline, and the engine's own cost per window, measured on
the same host with its traffic switched off (every actor still steps every
window).  Wall time is taken as the best of `repeat` runs; nothing here goes
into metrics.json.
"""

from __future__ import annotations

import time

from .run import run
from .scenario import load


def bench(path, duration_ms: float = 200.0, repeat: int = 3) -> dict:
    scn = load(path, [f"scenario.duration_ms={duration_ms}"])
    best = None
    for _ in range(max(1, repeat)):
        t0 = time.perf_counter()
        res = run(scn)
        wall = time.perf_counter() - t0
        if best is None or wall < best[0]:
            best = (wall, res)
    wall, res = best
    idle = load(path, [f"scenario.duration_ms={duration_ms}", "traffic.stop_ms=0"])
    t0 = time.perf_counter()
    ires = run(idle)
    iwall = time.perf_counter() - t0
    packets = res.metrics["totals"]["arrived"]
    windows = scn["windows"]
    return {"scenario": scn["name"], "virtual_ms": duration_ms, "windows": windows,
            "quantum_ns": scn["quantum_ns"], "packets": packets, "wall_s": wall,
            "repeat": repeat, "pps": packets / wall,
            "us_per_window": wall / windows * 1e6,
            "engine_us_per_window": iwall / ires.metrics["scenario"]["windows"] * 1e6,
            "actors": len(res.actors)}
