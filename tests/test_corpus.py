"""Every capture of the shared corpus (real and malformed tcpdump test files)
replays without a Python exception: for a link type we take, every frame is
delivered or dropped under a named reason and nothing is left in flight; for
one we do not take, a one-line refusal (exit status 2)."""

import subprocess
import sys

import pytest

from cluster.replay import ReplayRefused, plan
from cluster.run import run

from conftest import CORPUS  # noqa: E402

FILES = sorted(CORPUS.glob("*")) if CORPUS.is_dir() else []

pytestmark = pytest.mark.skipif(not FILES, reason="../shared/corpus/pcap not found")


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_corpus_file_replays(path):
    try:
        scn = plan(path)
    except ReplayRefused as e:
        msg = str(e)
        assert "\n" not in msg and msg
        return
    m = run(scn).metrics
    t = m["totals"]
    assert t["arrived"] == scn["replay"]["frames"]
    assert t["in_flight"] == 0
    assert t["arrived"] == t["delivered"] + t["dropped_total"] + t["absorbed_by_reassembly"]
    assert m["uma_leaked_after_teardown"] == {}
    for reason in t["dropped"]:
        assert reason.replace("_", "").replace(".", "").isalnum()


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "cluster.cli", *args],
                          capture_output=True, text=True, timeout=120)


def test_cli_refuses_unsupported_link_type(tmp_path):
    radiotap = [p for p in FILES if "radiotap" in p.name.lower() or "802_15_4" in p.name]
    assert radiotap, "the corpus should hold link types we do not take"
    p = _cli("replay", str(radiotap[0]), "--out", str(tmp_path / "r"))
    assert p.returncode == 2, p.stdout + p.stderr
    assert len(p.stderr.strip().splitlines()) == 1 and "link type" in p.stderr
    assert "Traceback" not in p.stderr
    assert not (tmp_path / "r").exists()


def test_cli_replays_and_writes_captures(tmp_path):
    f = CORPUS / "802.1D_spanning_tree.pcap"
    p = _cli("replay", str(f), "--json", "--out", str(tmp_path / "r"))
    assert p.returncode == 0, p.stderr
    import json
    r = json.loads(p.stdout)
    assert r["frames"] == r["delivered"] + r["dropped_total"] and r["in_flight"] == 0
    for name in ("delivered.pcapng", "dropped.pcapng", "metrics.json"):
        assert (tmp_path / "r" / name).exists()


def test_cut_short_capture_says_so(tmp_path):
    src = (CORPUS / "OSPFv2_Capture_FINAL.pcapng").read_bytes()
    cut = tmp_path / "cut.pcapng"
    cut.write_bytes(src[: len(src) * 2 // 3])
    p = _cli("replay", str(cut), "--json", "--out", str(tmp_path / "r"))
    assert p.returncode == 0, p.stderr
    import json
    r = json.loads(p.stdout)
    assert r["truncated"] is True and r["problem"]
    assert r["frames"] == r["delivered"] + r["dropped_total"]
