"""The `netcabal` command, run for real in a subprocess (python -m cluster.cli)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from cluster.scenario import SCHEMA_VERSION

REPO = Path(__file__).resolve().parent.parent
QUICKSTART = REPO / "scenarios" / "quickstart.toml"


def cli(*args, cwd=REPO):
    return subprocess.run([sys.executable, "-m", "cluster.cli", *map(str, args)],
                          cwd=cwd, capture_output=True, text=True, timeout=120)


def keys(obj):
    """Every dict key anywhere in a JSON document."""
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield k
            yield from keys(v)
    elif isinstance(obj, list):
        for v in obj:
            yield from keys(v)


def test_run_json(tmp_path):
    out = tmp_path / "res"
    p = cli("run", "scenarios/quickstart.toml", "--out", out, "--json", "--set", "scenario.duration_ms=2")
    assert p.returncode == 0, p.stderr
    assert "Traceback" not in p.stderr
    lines = p.stdout.strip().splitlines()
    assert len(lines) == 1, p.stdout
    summary = json.loads(lines[0])
    assert isinstance(summary, dict)
    assert summary["results"] == str(out)
    t = summary["totals"]
    assert t["arrived"] > 0 and t["delivered"] > 0
    assert t["arrived"] == t["delivered"] + t["dropped_total"] + t["in_flight"]

    assert sorted(os.listdir(tmp_path)) == ["res"]
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["schema_version"] == SCHEMA_VERSION
    assert metrics["scenario"]["duration_ns"] == 2_000_000
    assert metrics["totals"] == t
    walls = [k for k in keys(metrics) if "wall" in k.lower()]
    assert walls == [], "wall-clock data belongs in run-info.json, not metrics.json"
    info = json.loads((out / "run-info.json").read_text())
    assert isinstance(info["wall_s"], float) and info["wall_s"] > 0


BAD = [
    ("unknown-key", "[host]\ncpus = 2\nturbo = true\n", [], "host.turbo"),
    ("not-toml", "[host\ncpus = 2\n", [], ": -: not valid TOML"),
    ("bad-set", QUICKSTART.read_text(), ["--set", "host.cpus=0"], "host.cpus"),
]


@pytest.mark.parametrize("text,extra,key", [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_bad_scenario_exits_2(tmp_path, text, extra, key):
    scn = tmp_path / "bad.toml"
    scn.write_text(text)
    work = tmp_path / "work"
    work.mkdir()
    for args in (["--out", work / "res"], []):        # explicit and default results folder
        p = cli("run", scn, *args, *extra, "--json", cwd=work)
        assert p.returncode == 2, (p.stdout, p.stderr)
        assert p.stdout == ""
        err = p.stderr.strip().splitlines()
        assert len(err) == 1, p.stderr
        assert str(scn) in err[0] and key in err[0]
        assert "Traceback" not in p.stderr
        assert os.listdir(work) == []                 # no results folder, nothing half-written


def test_missing_scenario_exits_2(tmp_path):
    p = cli("run", tmp_path / "nope.toml", "--out", tmp_path / "res")
    assert p.returncode == 2
    assert p.stderr.strip() == f"netcabal: bad scenario: {tmp_path / 'nope.toml'}: -: no such file"
    assert os.listdir(tmp_path) == []


def test_bench_json():
    p = cli("bench", "--json", "--duration-ms", "2", "--repeat", "1")
    assert p.returncode == 0, p.stderr
    lines = p.stdout.strip().splitlines()
    assert len(lines) == 1, p.stdout
    r = json.loads(lines[0])
    assert r["packets"] > 0
    assert r["pps"] > 0
    assert r["engine_us_per_window"] > 0
    assert r["windows"] == 100 and r["repeat"] == 1
    # both timed runs (with traffic, and the engine alone) waited for the
    # machine to settle first, or gave up after 10 s
    st = r["settle"]
    assert st["runs"] == 2 and st["limit_s"] == 10.0
    assert st["gave_up"] == 2 or 0.2 <= st["median_s"] <= st["max_s"] <= 10.5
    # the machine probe beside the one timed run, and its rate times that probe
    pr = r["probe"]
    assert pr["steps"] == 1_000_000 and len(pr["probe_ms"]) == 1 and pr["probe_ms"][0] > 0
    assert pr["packets_per_probe"][0] == pytest.approx(r["pps"] * pr["probe_ms"][0] / 1e3, rel=1e-3)
    assert pr["packets_per_probe_median"] == pytest.approx(pr["packets_per_probe"][0], rel=1e-3)


@pytest.mark.parametrize("bad", ["-1", "nan", "inf", "soon"])
def test_bench_refuses_bad_settle(bad):
    p = cli("bench", "--duration-ms", "1", "--repeat", "1", "--settle", bad)
    assert p.returncode == 2 and "--settle" in p.stderr


def test_bench_settle_0_does_not_wait():
    p = cli("bench", "--json", "--duration-ms", "1", "--repeat", "1", "--settle", "0")
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["settle"] == {"runs": 0, "gave_up": 0, "limit_s": 0.0,
                                              "median_s": None, "max_s": None}


def test_run_twice_replaces_folder(tmp_path):
    parent = tmp_path / "p"
    out = parent / "res"
    args = ("run", QUICKSTART, "--out", out, "--json", "--set", "scenario.duration_ms=1")
    p = cli(*args)
    assert p.returncode == 0, p.stderr
    first = (out / "metrics.json").read_bytes()
    (out / "stale.txt").write_text("left over from the first run")
    p = cli(*args)
    assert p.returncode == 0, p.stderr
    assert not (out / "stale.txt").exists()
    assert (out / "metrics.json").read_bytes() == first      # same scenario and seed: same bytes
    assert (out / "run-info.json").exists()
    assert os.listdir(parent) == ["res"], "temporary or old folders left beside the results"
