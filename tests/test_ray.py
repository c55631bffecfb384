"""The Ray executor gives byte-identical metrics to the local one, for every
placement; a dying Ray actor ends the run with an error naming it and the
window, and leaves no results folder."""

import os
import signal
import time

import pytest

ray = pytest.importorskip("ray")

from cluster.run import metrics_bytes, run  # noqa: E402
from cluster.scenario import load  # noqa: E402
from conftest import QUICKSTART, SCENARIOS  # noqa: E402


@pytest.fixture(scope="module")
def local_ray():
    """A local Ray instance for this module (laptop mode)."""
    started = False
    if not ray.is_initialized():
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
                 configure_logging=False)
        started = True
    yield
    if started:
        ray.shutdown()


def _same(path, overrides, **ray_opts):
    scn = load(path, overrides)
    a = metrics_bytes(run(scn).metrics)
    b = metrics_bytes(run(scn, engine="ray", **ray_opts).metrics)
    assert a == b


@pytest.mark.parametrize("placement,workers", [("packed", 1), ("packed", 2), ("packed", 3),
                                               ("per-component", None)])
def test_short_quickstart_identical_on_ray(local_ray, placement, workers):
    _same(QUICKSTART, ["scenario.duration_ms=1"], placement=placement, workers=workers)


@pytest.mark.parametrize("mode", ["direct", "hybrid"])
def test_direct_and_hybrid_dispatch_identical_on_ray(local_ray, mode):
    _same(QUICKSTART, ["scenario.duration_ms=1", f'net.isr.dispatch="{mode}"', "engine.quantum_ns=2000",
                       "traffic.rate_pps=200000"], placement="per-component")


def test_ray_with_drops_and_corruption_identical(local_ray):
    """Drops of every kind travel the same way through Ray."""
    _same(QUICKSTART, ["scenario.duration_ms=1", "nic.ix0.ring_size=4", "costs.driver_rx=9000",
                       "net.inet.ip.intr_queue_maxlen=4", "net.inet6.ip6.intr_queue_maxlen=4",
                       "traffic.bad_udp_cksum_ratio=0.05", "costs.ip_input=20000"],
          placement="packed", workers=2)


@pytest.mark.slow
@pytest.mark.parametrize("path", sorted(SCENARIOS.glob("*.toml")), ids=lambda p: p.stem)
@pytest.mark.parametrize("placement,per_call", [("packed", 1), ("packed", 16), ("per-component", 1)])
def test_every_scenario_identical_on_ray(local_ray, path, placement, per_call):
    _same(path, [], placement=placement, workers=2, windows_per_call=per_call)


def test_per_component_actor_names(local_ray):
    from cluster.ray_executor import RayExecutor
    scn = load(QUICKSTART, ["scenario.duration_ms=0.1"])
    ex = RayExecutor(scn, placement="per-component")
    try:
        names = sorted(ex.actor_names)
        assert names == sorted(["cpu0", "cpu1", "cpu2", "cpu3", "ix0", "netisr0", "netisr1",
                                "netisr2", "netisr3", "vnet.vnet0"])
        for n in names:   # named Ray actors, looked up by name as `ray list actors` shows them
            assert ray.get_actor(n, namespace=ex.namespace) is not None
    finally:
        ex.close()


def test_killed_actor_is_named_with_its_window(local_ray, tmp_path):
    """Kill a Ray actor's process mid-run: RunError names it and the window;
    no results folder appears, nothing hangs."""
    from cluster.ray_executor import RayExecutor, RunError
    scn = load(QUICKSTART, ["scenario.duration_ms=400"])
    ex = RayExecutor(scn, placement="per-component")
    victim = "netisr2"
    pid = ex.whereabouts()[victim]["pid"]
    killed = []

    def progress(done, total):
        if done >= 20 and not killed:
            os.kill(pid, signal.SIGKILL)
            killed.append(done)

    t0 = time.time()
    with pytest.raises(RunError) as e:
        try:
            ex.run(scn["windows"], progress=progress)
        finally:
            ex.close()
    assert time.time() - t0 < 120
    msg = str(e.value)
    assert victim in msg and "window" in msg
    w = int(msg.split("window ")[1].split(":")[0])
    assert killed[0] - 1 - ex.max_inflight <= w < scn["windows"]
    assert killed


JAILS = SCENARIOS / "bench-4nic-jails.toml"


@pytest.mark.parametrize("path,per_call,fault,window,ahead", [
    (QUICKSTART, 1, "ix0@5", 5, False), (QUICKSTART, 1, "netisr1@12", 12, False),  # calls only waited for
    (QUICKSTART, 16, "ix0@5", 5, False),    # calls of up to 16 that packets end after one
    (JAILS, 16, "ix1@5", 5, False),         # inside a call of several windows
    (JAILS, 16, "ix0@15", 15, False),       # its last window
    (JAILS, 16, "ix2@16", 16, False),       # the next call's first
    (JAILS, 16, "ix1@5", 5, True),          # with --lookahead: its peer a window apart
    (JAILS, 16, "ix0@15", 15, True),
], ids=["quickstart-5", "quickstart-12", "quickstart-16-5", "jails-5", "jails-15", "jails-16",
        "jails-5-lookahead", "jails-15-lookahead"])
def test_fault_named_with_its_window(local_ray, path, per_call, fault, window, ahead):
    """The driver fetches only some calls' results, and a call may run many
    windows; a Ray actor dying in any window is still named with it."""
    from cluster.ray_executor import RayExecutor, RunError
    scn = load(path, ["scenario.duration_ms=12"])
    ex = RayExecutor(scn, placement="packed", workers=2, fault=fault, windows_per_call=per_call,
                     lookahead=ahead)
    assert per_call > 1 or window % ex.CHECK_EVERY != ex.CHECK_EVERY - 1    # not a call it fetches
    with pytest.raises(RunError) as e:
        try:
            ex.run(scn["windows"])
        finally:
            ex.close()
    comp = fault.split("@")[0]
    assert f"run failed in window {window}:" in str(e.value) and comp in str(e.value)
    assert "PeerLost" not in str(e.value)       # the dead one is named, not the peers that lost it


@pytest.mark.parametrize("workers", [1, 2, 3])
def test_islands_run_many_windows_a_call(local_ray, workers):
    """bench-4nic-jails' islands exchange no packets between the packed Ray
    actors, so every call runs its 16 windows (the Ray actors swapping the
    CPUs' reports directly in between), and the metrics are the local
    executor's byte for byte."""
    scn = load(JAILS, ["scenario.duration_ms=20"])      # 40 windows: calls of 16, 16, 8
    res = run(scn, engine="ray", placement="packed", workers=workers, windows_per_call=16)
    assert res.run_info["windows_per_call"] == 16
    assert res.run_info["calls"] == 3
    assert metrics_bytes(res.metrics) == metrics_bytes(run(scn).metrics)


def test_packets_crossing_end_the_call(local_ray):
    """In the quickstart every window sends packets from the NIC's Ray actor
    to the workstreams' on the other: every call ends after one window, as
    mbuf batches travel only as Ray object references."""
    scn = load(QUICKSTART, ["scenario.duration_ms=2"])
    res = run(scn, engine="ray", placement="packed", workers=2, windows_per_call=16)
    assert res.run_info["windows_per_call"] == 16 and res.run_info["calls"] == scn["windows"]
    assert metrics_bytes(res.metrics) == metrics_bytes(run(scn).metrics)


def test_calls_that_end_on_some_windows_only(local_ray):
    """The quickstart at 5,000 packets/s: most 20 us windows send no packet
    from the NIC's Ray actor to the other, some do, so calls end at some
    windows and run on through others.  In a window that ends a call on one
    side, what the other side already sent directly is dropped (it comes
    again with the call's result): delivered once, the bytes are the local
    run's."""
    scn = load(QUICKSTART, ["scenario.duration_ms=4", "traffic.rate_pps=5000"])    # 200 windows
    res = run(scn, engine="ray", placement="packed", workers=2, windows_per_call=16)
    assert -(-scn["windows"] // 16) < res.run_info["calls"] < scn["windows"] // 2
    assert metrics_bytes(res.metrics) == metrics_bytes(run(scn).metrics)


@pytest.mark.parametrize("per_call", [1, 5])
def test_windows_per_call_does_not_change_results(local_ray, per_call):
    """Any number of windows a call, on either placement, gives the same
    bytes (per-component with 5: a mesh of ten Ray actors)."""
    _same(JAILS, ["scenario.duration_ms=6"], placement="packed", workers=2, windows_per_call=per_call)
    _same(QUICKSTART, ["scenario.duration_ms=2"], placement="per-component", windows_per_call=per_call)


def test_cli_windows_per_call(tmp_path):
    """`netcabal run --engine ray --windows-per-call 8` on bench-4nic-jails,
    with and without --lookahead: run-info.json says how the run went (8
    windows a call, one call), and metrics.json is the local run's byte for
    byte."""
    import json
    import subprocess
    import sys
    env = dict(os.environ)
    env.pop("RAY_ADDRESS", None)
    outs = {}
    for how in ("local", "ray", "lookahead"):
        outs[how] = tmp_path / how
        cmd = [sys.executable, "-m", "cluster.cli", "run", str(JAILS), "--out", str(outs[how]),
               "--set", "scenario.duration_ms=4"]
        if how != "local":
            cmd += ["--engine", "ray", "--workers", "2", "--windows-per-call", "8"]
        if how == "lookahead":
            cmd += ["--lookahead"]
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=240, env=env)
        assert p.returncode == 0, p.stderr
    for how in ("ray", "lookahead"):
        info = json.loads((outs[how] / "run-info.json").read_text())
        assert info["windows_per_call"] == 8 and info["calls"] == 1 and info["ray_actors"] == 2
        assert info["lookahead"] is (how == "lookahead")
        assert (outs[how] / "metrics.json").read_bytes() == (outs["local"] / "metrics.json").read_bytes()


def test_failed_run_leaves_no_results_folder(tmp_path):
    """`netcabal run --engine ray` with a component's process exiting mid-run:
    exit status 1, a one-line error naming it and the window, no folder."""
    import subprocess
    import sys
    out = tmp_path / "res"
    env = dict(os.environ, RAY_ADDRESS="")
    env.pop("RAY_ADDRESS")
    p = subprocess.run([sys.executable, "-m", "cluster.cli", "run", str(QUICKSTART), "--engine", "ray",
                        "--placement", "packed", "--workers", "2", "--fault", "ix0@7",
                        "--out", str(out), "--set", "scenario.duration_ms=2"],
                       capture_output=True, text=True, timeout=240, env=env)
    assert p.returncode == 1, p.stderr
    mine = [ln for ln in p.stderr.splitlines() if ln.startswith("netcabal:")]
    assert len(mine) == 1, p.stderr
    assert "window 7" in mine[0] and "ix0" in mine[0], p.stderr
    assert "Traceback" not in p.stderr
    assert not out.exists()
    assert list(tmp_path.iterdir()) == []


def test_bench_ray_alternates_placements_and_reports_best_and_median(local_ray):
    """`netcabal bench --engine ray`: every placement simulates the same
    packets; each reports the best and the median of its alternating runs."""
    from cluster.bench import bench_ray
    r = bench_ray(QUICKSTART, duration_ms=0.2, repeat=3, workers=(1, 2), calm=2.0)
    runs = r["runs"]
    assert [(x["placement"], x["workers"]) for x in runs] == [
        ("packed", 1), ("packed", 2), ("per-component", None)]
    assert len({x["packets"] for x in runs}) == 1 and runs[0]["packets"] > 0
    for x in runs:
        assert x["pps"] >= x["pps_median"] > 0
        assert x["us_per_window"] == pytest.approx(x["wall_s"] / r["windows"] * 1e6)
    assert runs[0]["speedup_vs_1_worker"] == 1.0 and runs[0]["speedup_median_vs_1_worker"] == 1.0
    assert runs[1]["speedup_vs_1_worker"] == pytest.approx(runs[1]["pps"] / runs[0]["pps"])
    # round by round: one ratio per round, the 1-worker run's against itself 1
    assert runs[0]["speedup_pairs_vs_1_worker"] == [1.0, 1.0, 1.0]
    for x in runs[1:]:
        pairs = x["speedup_pairs_vs_1_worker"]
        assert len(pairs) == 3 and all(v > 0 for v in pairs)
        assert x["speedup_pair_median_vs_1_worker"] == sorted(pairs)[1]
    # the packed runs say how they were grouped: the quickstart is one island,
    # so 2 workers get the pipeline cut (the NIC apart) and its packets cross
    assert runs[0]["groups"] == ["+".join(sorted(n for g in runs[1]["groups"] for n in g.split("+")))]
    assert runs[1]["groups"][0] == "ix0" and runs[1]["crossing_pps_estimate"] > 0
    # and how a window of the best run splits: the busiest actor's model step
    # and codec fit inside that run's window (timed in that run alone), the
    # rest is what is left of it
    for x in runs:
        assert x["model_us_per_window"] > 0 and x["codec_us_per_window"] >= 0
        assert x["exchange_us_per_window"] >= 0
        inside = x["model_us_per_window"] + x["codec_us_per_window"] + x["exchange_us_per_window"]
        assert inside <= x["us_per_window"]
        assert x["other_us_per_window"] == pytest.approx(x["us_per_window"] - inside)
    assert [x["windows_per_call"] for x in runs] == [1, 1, 1]
    # beside each round, the machine's own ceiling for 2 workers (cluster/
    # gauge.py), on their own and in step; none for the others
    assert len(r["gauge"]["rounds"]) == 3
    for key in ("ceiling", "ceiling_lockstep"):
        assert len(runs[1][key + "_pairs"]) == 3 and all(v > 0 for v in runs[1][key + "_pairs"])
        assert runs[1][key + "_pairs"] == [g[key]["2"] for g in r["gauge"]["rounds"]]
        assert runs[0][key + "_pairs"] == [] and runs[2][key + "_pairs"] == []
    # every timed run waited for the machine to settle: 3 rounds of 3 runs,
    # 3 runs of the idle host, and the gauge's 4 a round
    assert r["settle"]["runs"] == 3 * 3 + 3 + 3 * 4
    # the quickstart's split passes packets (the pipeline cut): the gauge
    # runs copies of the whole host, not the split's groups
    assert r["gauge"]["mode"] == "whole host"


def test_bench_ray_gauges_an_island_split_by_its_own_groups(local_ray):
    """bench-4nic-jails over 2 packed workers is two islands: the gauge
    beside it steps those two groups, one in each helper."""
    from cluster.bench import bench_ray
    r = bench_ray(JAILS, duration_ms=1, repeat=1, workers=(1, 2), windows_per_call=4, calm=2.0)
    assert r["gauge"]["mode"] == "groups"
    # the gauge's packets are the runs' packets; its rates follow from them
    g = r["gauge"]["rounds"][0]
    assert g["packets"] == r["runs"][0]["packets"] > 0
    alone = g["packets"] / (sum(g["alone_s"]) / 2)
    assert r["gauge"]["pps_median"]["alone"] == pytest.approx(alone)
    assert r["gauge"]["pps_median"]["in_step"] == pytest.approx(alone * g["ceiling_lockstep"]["2"])
    runs = r["runs"]
    assert runs[1]["crossing_pps_estimate"] == 0
    assert len(runs[1]["ceiling_lockstep_pairs"]) == 1 and runs[1]["ceiling_lockstep_pairs"][0] > 0
    assert [x["windows_per_call"] for x in runs] == [4, 4, 4]
    assert "ceiling_slack" not in g and not any(x.get("lookahead") for x in runs)


def test_bench_ray_with_lookahead_gauges_a_window_apart(local_ray):
    """With --lookahead the packed runs step their CPUs a window ahead (the
    per-component run cannot), and the gauge also runs the split a window
    apart, the ceiling those runs are held against."""
    from cluster.bench import bench_ray
    r = bench_ray(JAILS, duration_ms=2, repeat=1, workers=(1, 2), windows_per_call=4, calm=2.0,
                  lookahead=True)
    runs = r["runs"]
    assert [x.get("lookahead", False) for x in runs] == [True, True, False]
    assert runs[0]["packets"] == runs[1]["packets"] == runs[2]["packets"] > 0
    g = r["gauge"]["rounds"][0]
    assert g["ceiling_slack"]["2"] > 0 and len(g["slack_s"]["2"]) == 2
    alone = g["packets"] / (sum(g["alone_s"]) / 2)
    assert r["gauge"]["pps_median"]["a_window_apart"] == pytest.approx(alone * g["ceiling_slack"]["2"])
    assert runs[1]["ceiling_slack_pairs"] == [g["ceiling_slack"]["2"]]


@pytest.mark.parametrize("bad", ["0", "-3", "many"])
def test_cli_refuses_bad_windows_per_call(bad):
    """A bad --windows-per-call is refused before anything runs, with a reason."""
    import subprocess
    import sys
    p = subprocess.run([sys.executable, "-m", "cluster.cli", "run", str(QUICKSTART), "--engine", "ray",
                        f"--windows-per-call={bad}"], capture_output=True, text=True, timeout=60)
    assert p.returncode == 2
    assert "--windows-per-call" in p.stderr and "1 or more" in p.stderr and "Traceback" not in p.stderr


def test_executor_refuses_bad_windows_per_call():
    from cluster.ray_executor import RayExecutor
    with pytest.raises(ValueError, match="windows_per_call"):
        RayExecutor(load(QUICKSTART), windows_per_call=0)


@pytest.mark.parametrize("workers,per_call", [(1, 16), (2, 16), (2, 5), (4, 3)])
def test_lookahead_gives_the_lock_steps_results(local_ray, workers, per_call):
    """--lookahead on bench-4nic-jails: every Ray actor steps its CPUs a
    window ahead and reads its peers' frames a window late, in calls of
    several windows (the last one short); the metrics are the local
    executor's byte for byte."""
    scn = load(JAILS, ["scenario.duration_ms=20"])      # 40 windows
    res = run(scn, engine="ray", placement="packed", workers=workers,
              windows_per_call=per_call, lookahead=True)
    assert res.run_info["lookahead"] is True
    assert res.run_info["calls"] == -(-scn["windows"] // per_call)
    assert metrics_bytes(res.metrics) == metrics_bytes(run(scn).metrics)


def test_lookahead_refuses_a_placement_whose_threads_report_across(local_ray):
    """bench-4nic packed over 2 (cut as a pipeline, the NICs on one Ray
    actor): the NICs' threads report to CPUs on the other, and packets cross,
    each due the next window; with --lookahead the run ends naming the first
    such message, not with other results."""
    import re
    from cluster.ray_executor import RayExecutor, RunError
    scn = load(SCENARIOS / "bench-4nic.toml", ["scenario.duration_ms=5"])
    ex = RayExecutor(scn, placement="packed", workers=2, windows_per_call=4, lookahead=True)
    with pytest.raises(RunError) as e:
        try:
            ex.run(scn["windows"])
        finally:
            ex.close()
    msg = str(e.value)
    assert re.search(r"ix\d sent '(use|pkts\.ip)' to \S+ \(on pack\d\) due in window \d+, too soon "
                     r"for a Ray actor a window behind", msg), msg
    assert "run this placement without it" in msg


def test_lookahead_wants_packed_and_calls_of_several_windows():
    from cluster.ray_executor import RayExecutor
    with pytest.raises(ValueError, match="packed"):
        RayExecutor(load(JAILS), placement="per-component", windows_per_call=4, lookahead=True)
    with pytest.raises(ValueError, match="windows-per-call 2 or more"):
        RayExecutor(load(JAILS), placement="packed", windows_per_call=1, lookahead=True)
