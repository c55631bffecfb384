"""A real two-node Ray cluster on this machine (deploy/local-cluster.sh):
the quickstart spread per component over both nodes gives the local
executor's metrics byte for byte, and so does a packed run whose two Ray
actors exchange directly across the nodes; jobs go in through the Ray Jobs API and
their results come back; sweeps run their points concurrently."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ray = pytest.importorskip("ray")

from cluster.run import metrics_bytes, run  # noqa: E402
from cluster.scenario import load  # noqa: E402
from conftest import QUICKSTART, REPO, SCENARIOS  # noqa: E402

pytestmark = pytest.mark.cluster
GCS = "127.0.0.1:6390"
DASH = "http://127.0.0.1:8266"
BIN = Path(sys.executable).parent


@pytest.fixture(scope="module")
def cluster():
    if ray.is_initialized():
        ray.shutdown()
    env = dict(os.environ, RAY_AUTH_MODE="token", RAY=str(BIN / "ray"),
               PATH=f"{BIN}:{os.environ.get('PATH', '')}")
    script = str(REPO / "deploy" / "local-cluster.sh")
    subprocess.run([script, "start"], check=True, env=env, timeout=300)
    old = os.environ.get("RAY_AUTH_MODE")
    os.environ["RAY_AUTH_MODE"] = "token"
    try:
        yield env
    finally:
        if ray.is_initialized():
            ray.shutdown()
        subprocess.run([script, "stop"], env=env, timeout=120)
        if old is None:
            os.environ.pop("RAY_AUTH_MODE", None)
        else:
            os.environ["RAY_AUTH_MODE"] = old


def test_two_nodes_up(cluster):
    from cluster.ray_executor import connect
    connect(GCS)
    nodes = [n for n in ray.nodes() if n["Alive"]]
    assert len(nodes) == 2
    res = ray.cluster_resources()
    assert res.get("netcabal_head") == 1 and res.get("netcabal_worker") == 1


def test_quickstart_per_component_over_both_nodes(cluster):
    from cluster.ray_executor import connect
    connect(GCS)
    scn = load(QUICKSTART)
    local = metrics_bytes(run(scn).metrics)
    r = run(scn, engine="ray", placement="per-component")
    assert r.run_info["nodes"] == 2, r.run_info["actor_nodes"]
    assert r.run_info["ray_actors"] == 10
    assert metrics_bytes(r.metrics) == local


def test_direct_exchange_between_nodes(cluster):
    """bench-4nic-jails packed over 2 Ray actors, one on each node, with 16
    windows a call: the actors link their direct exchange across the nodes,
    every call runs its 16 windows, and the metrics are the local run's."""
    from cluster.ray_executor import connect
    connect(GCS)
    scn = load(SCENARIOS / "bench-4nic-jails.toml", ["scenario.duration_ms=16"])    # 32 windows
    local = metrics_bytes(run(scn).metrics)
    r = run(scn, engine="ray", placement="packed", workers=2, windows_per_call=16)
    assert r.run_info["nodes"] == 2, r.run_info["actor_nodes"]
    assert r.run_info["calls"] == 2
    assert metrics_bytes(r.metrics) == local


def test_submit_brings_results_back(cluster, tmp_path):
    out = tmp_path / "job"
    p = subprocess.run([sys.executable, "-m", "cluster.cli", "submit", str(QUICKSTART),
                        "--address", DASH, "--set", "scenario.duration_ms=2", "--out", str(out)],
                       capture_output=True, text=True, timeout=300, env=cluster)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "NETCABAL-RESULTS" not in p.stdout        # the block is not shown
    local = metrics_bytes(run(load(QUICKSTART, ["scenario.duration_ms=2"])).metrics)
    assert (out / "metrics.json").read_bytes() == local
    assert json.loads((out / "run-info.json").read_text())["engine"] == "ray"


def test_submit_sweep(cluster, tmp_path):
    out = tmp_path / "sweep"
    p = subprocess.run([sys.executable, "-m", "cluster.cli", "submit", str(QUICKSTART),
                        "--address", DASH, "--set", "scenario.duration_ms=1",
                        "--sweep", "net.isr.maxthreads=1,2", "--out", str(out)],
                       capture_output=True, text=True, timeout=300, env=cluster)
    assert p.returncode == 0, p.stdout + p.stderr
    rows = json.loads((out / "sweep.json").read_text())
    assert [r["net.isr.maxthreads"] for r in rows] == [1, 2]
    for r in rows:
        pt = load(QUICKSTART, ["scenario.duration_ms=1", f"net.isr.maxthreads={r['net.isr.maxthreads']}"])
        assert (out / r["results"] / "metrics.json").read_bytes() == metrics_bytes(run(pt).metrics)


def test_failed_job_is_reported_and_brings_nothing(cluster, tmp_path):
    out = tmp_path / "job"
    p = subprocess.run([sys.executable, "-m", "cluster.cli", "submit", str(QUICKSTART),
                        "--address", DASH, "--set", "scenario.duration_ms=1",
                        "--set", "traffic.rate_pps=-1", "--out", str(out)],
                       capture_output=True, text=True, timeout=120, env=cluster)
    assert p.returncode == 2 and "traffic[0].rate_pps" in p.stderr      # refused before submitting
    assert not out.exists()


def test_ray_job_submit_cli(cluster, tmp_path):
    """`ray job submit -- netcabal run SCENARIO` works as well."""
    wd = tmp_path / "wd"
    wd.mkdir()
    (wd / "q.toml").write_text(QUICKSTART.read_text())
    p = subprocess.run([str(BIN / "ray"), "job", "submit", "--address", DASH, "--working-dir", str(wd),
                        "--", "netcabal", "run", "q.toml", "--engine", "ray", "--json",
                        "--set", "scenario.duration_ms=1", "--out", str(tmp_path / "r")],
                       capture_output=True, text=True, timeout=300, env=cluster)
    assert p.returncode == 0, p.stdout + p.stderr
    line = [ln for ln in p.stdout.splitlines() if ln.startswith('{"latency_ns"')]
    assert line and json.loads(line[0])["totals"]["arrived"] > 0
    assert (tmp_path / "r" / "metrics.json").exists()       # same machine: the head wrote it


def test_sweep_points_run_concurrently_on_ray(cluster, tmp_path):
    from cluster.ray_executor import connect
    from cluster.sweep import run_sweep
    connect(GCS)
    rows = run_sweep(QUICKSTART, ["traffic.rate_pps=500000,1500000"], ["scenario.duration_ms=1"],
                     tmp_path / "s", engine="ray")
    assert len(rows) == 2 and rows[0]["offered_pps"] < rows[1]["offered_pps"]
    assert (tmp_path / "s" / "sweep.csv").read_text().count("\n") == 3
