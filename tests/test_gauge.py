"""The machine's ceiling beside `netcabal bench --engine ray` (cluster/gauge.py):
plain helper processes running the whole host, on their own and in step."""

import contextlib
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import pytest

from cluster.gauge import Gauge, GaugeError, probe, settle

QUICKSTART = Path(__file__).resolve().parent.parent / "scenarios" / "quickstart.toml"
SHORT = ["scenario.duration_ms=0.4"]        # 20 windows


def test_round_reports_both_ceilings_from_its_own_times():
    with Gauge(QUICKSTART, SHORT, n=2) as g:
        r = g.round()
    assert len(r["alone_s"]) == 2 and all(t > 0 for t in r["alone_s"])
    a = statistics.fmean(r["alone_s"])
    for key, ceil in (("together_s", "ceiling"), ("lockstep_s", "ceiling_lockstep")):
        t = r[key][2]
        assert len(t) == 2 and all(x > 0 for x in t)
        assert r[ceil][2] == pytest.approx(2 * a / statistics.fmean(t))


def test_in_step_the_fast_helper_waits_for_the_slow_one():
    """Helper 0 sleeps 10 ms after each of 20 windows: on its own helper 1
    finishes far sooner; in step it waits at every window's barrier, so it
    takes as long as helper 0 (a gauge without the barrier fails this)."""
    with Gauge(QUICKSTART, SHORT, n=2, delays={0: 0.01}) as g:
        free = g.together(2)
        lock = g.together(2, lockstep=True)
    assert free[0] >= 0.2 and lock[0] >= 0.2
    assert free[1] < free[0] - 0.1
    assert lock[1] >= 0.2 - 0.02            # each of 20 windows waited ~10 ms


def test_a_window_apart_takes_turns_that_in_step_cannot():
    """Helper 0 sleeps 10 ms after its even windows, helper 1 after its odd
    ones.  In step every window waits for whichever sleeps, 20 x 10 ms; a
    window apart (--lookahead's slack) each sleeps while the other runs
    ahead, about half that.  The round reports the slack ceiling from its
    own times."""
    with Gauge(QUICKSTART, SHORT, n=2, delays={0: [0.01, 0.0], 1: [0.0, 0.01]}) as g:
        lock = g.together(2, lockstep=True)
        apart = g.together(2, slack=True)
        r = g.round(slack=True)
        plain = g.round()
    assert min(lock) >= 0.19
    assert max(apart) < 0.17
    a = statistics.fmean(r["alone_s"])
    assert r["ceiling_slack"][2] == pytest.approx(2 * a / statistics.fmean(r["slack_s"][2]))
    assert "slack_s" not in plain and "ceiling_slack" not in plain


def test_a_bad_scenario_is_a_gauge_error_naming_why_not_a_hang():
    with pytest.raises(GaugeError, match="no such file"):
        Gauge(QUICKSTART.parent / "no-such.toml", [], n=2)


def test_close_ends_the_helpers():
    g = Gauge(QUICKSTART, SHORT, n=2)
    procs = list(g.procs)
    g.close()
    assert all(p.poll() is not None for p in procs)
    with pytest.raises(ValueError):
        Gauge(QUICKSTART, SHORT, n=0)


def test_settle_waits_two_calm_samples_or_gives_up():
    assert settle(0) is None                            # 0: no wait at all
    t = time.perf_counter()
    w = settle(5, idle=0.0)                             # any load is calm enough
    assert 0.2 <= w < 1.0 and time.perf_counter() - t >= 0.2
    t = time.perf_counter()
    assert settle(0.3, idle=1.01) is None               # never calm: gives up
    assert 0.3 <= time.perf_counter() - t < 1.0


@contextlib.contextmanager
def spinning(per_core: int, seconds: float):
    """`per_core` processes a core spinning for at most `seconds`."""
    spin = f"import time\nt = time.time() + {seconds}\nwhile time.time() < t: pass\n"
    procs = [subprocess.Popen([sys.executable, "-c", spin])
             for _ in range(per_core * (os.cpu_count() or 1))]
    try:
        time.sleep(0.3)                                 # let them start spinning
        yield
    finally:
        for p in procs:
            p.kill()
            p.wait()


def test_settle_does_not_call_busy_cores_calm():
    """Every core busy in a spinning process: the cores are not 85% idle,
    so settle gives up (one that ignored the load would return at 0.2 s)."""
    with spinning(1, 3):
        assert settle(1.0) is None


def test_probe_reads_the_speed_the_machine_gives_this_process():
    """The probe beside a bench run slows when the process gets less of a
    core: with two spinning processes a core, it gets about a third of one
    (one that timed something else, or CPU time, would not slow)."""
    calm = statistics.median(probe(300_000) for _ in range(3))
    with spinning(2, 4):
        loaded = statistics.median(probe(300_000) for _ in range(3))
    assert loaded > 1.5 * calm, (calm, loaded)


JAILS = QUICKSTART.parent / "bench-4nic-jails.toml"


def test_groups_mode_steps_each_part_of_an_island_split():
    """Given the packed split of bench-4nic-jails (two islands, no packet
    crossing), each helper at once steps only its group: the groups take in
    every packet the whole host does between them, each a part of it; the
    ceiling is the whole host alone against the slowest group."""
    from cluster.placement import crossing, flows, groups_for
    from cluster.scenario import build, load
    sets = ["scenario.duration_ms=2"]       # 4 windows of 500 us
    scn = load(JAILS, sets)
    groups = groups_for([a.name for a in build(scn)], "packed", 2, scn)
    assert len(groups) == 2 and crossing(groups, flows(scn)) == 0
    with Gauge(JAILS, sets, n=2, groups=groups) as g:
        g.alone()
        whole = g.arrived[0]
        g.together(2)
        parts = list(g.arrived)
        r = g.round()
        with pytest.raises(ValueError):
            g.together(1)
    assert whole > 0 and sum(parts) == whole and all(0 < p < whole for p in parts)
    a = statistics.fmean(r["alone_s"])
    assert r["ceiling"][2] == pytest.approx(a / max(r["together_s"][2]))
    assert r["ceiling_lockstep"][2] == pytest.approx(a / max(r["lockstep_s"][2]))
    with pytest.raises(ValueError):
        Gauge(JAILS, sets, n=2, groups=groups[:1])
