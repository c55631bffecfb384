"""The packed placement (cluster/placement.py): its estimate of where packets
go holds for the real model, and the layouts it picks keep packets inside a
Ray actor where the host allows it.  No Ray here: each group is stepped as a
`Host` in this process, exactly as a Ray actor would step it."""

import pytest

from cluster.engine import Host, is_pkts
from cluster.placement import crossing, flows, groups_for, loads, makespan, pipeline_groups
from cluster.scenario import build, load
from conftest import SCENARIOS

ALL = sorted(SCENARIOS.glob("*.toml"))
JAILS = SCENARIOS / "bench-4nic-jails.toml"
BENCH = SCENARIOS / "bench-4nic.toml"


def _packet_edges(scn: dict, groups: list, hosts_out=None) -> dict:
    """Run the scenario with each group in its own Host (messages between
    them passed along as a Ray actor would); {(sender, receiver): packets}
    for the messages that went from one group to another."""
    actors = build(scn)
    hosts = [Host([a for a in actors if a.name in set(g)], scn["quantum_ns"]) for g in groups]
    host_of = {n: i for i, g in enumerate(groups) for n in g}
    known = set(host_of)
    edges = {}
    for _ in range(scn["windows"]):
        out = [m for h in hosts for m in h.step(known)]
        for m in out:
            if is_pkts(m[4]):
                edges[(m[1], m[3])] = edges.get((m[1], m[3]), 0) + len(m[5])
            hosts[host_of[m[3]]].deliver([m])
    if hosts_out is not None:
        hosts_out.extend(hosts)
    return edges


def _short(path):
    # long enough for traffic to flow everywhere; the 500 us benches need 4 windows
    return load(path, ["scenario.duration_ms=2"])


@pytest.mark.parametrize("path", ALL, ids=lambda p: p.stem)
def test_every_packet_edge_the_model_uses_is_in_the_estimate(path):
    """Per-component (every edge visible): each sender -> receiver pair
    that carried packets is one the estimate knows."""
    scn = _short(path)
    names = [a.name for a in build(scn)]
    used = _packet_edges(scn, [[n] for n in names])
    assert used, "the scenario moved no packets between components"
    est = flows(scn)
    missing = sorted(e for e in used if e not in est)
    assert not missing, f"packets went where the estimate says they cannot: {missing}"


@pytest.mark.parametrize("path", ALL, ids=lambda p: p.stem)
@pytest.mark.parametrize("k", [1, 2, 3, 4])
def test_packed_groups_partition_the_components(path, k):
    scn = load(path)
    names = [a.name for a in build(scn)]
    g = groups_for(names, "packed", k, scn)
    flat = [n for grp in g for n in grp]
    assert sorted(flat) == sorted(names) and len(flat) == len(set(flat))
    assert 1 <= len(g) <= k and all(g)
    assert g == groups_for(list(reversed(names)), "packed", k, scn)     # deterministic


@pytest.mark.parametrize("k", [2, 4])
def test_jails_split_into_islands_and_no_packet_crosses(k):
    """bench-4nic-jails: each NIC, its workstream, its vnet and its CPU stay
    together; stepping the groups apart, no message between them carries a
    packet (only the CPUs' reports cross)."""
    scn = load(JAILS, ["scenario.duration_ms=5"])
    names = [a.name for a in build(scn)]
    g = groups_for(names, "packed", k, scn)
    assert len(g) == k
    vnet = {"ix0": "vnet.vnet0", "ix1": "vnet.j1", "ix2": "vnet.j2", "ix3": "vnet.j3"}
    where = {n: i for i, grp in enumerate(g) for n in grp}
    for i in range(4):
        assert where[f"ix{i}"] == where[f"netisr{i}"] == where[vnet[f"ix{i}"]] == where[f"cpu{i}"]
    assert crossing(g, flows(scn)) == 0
    hosts = []
    crossed = _packet_edges(scn, g, hosts)
    assert not crossed
    delivered = {s["name"]: s["delivered"] for h in hosts for s in h.summaries()
                 if s["name"].startswith("vnet.")}
    assert len(delivered) == 4 and min(delivered.values()) > 1000, delivered


def test_shared_stack_gets_the_pipeline_cut():
    """bench-4nic hashes every NIC's flows over all workstreams into one
    vnet: one island, so the packed placement cuts the pipeline (NICs on one
    worker) and every packet crosses once."""
    scn = load(BENCH)
    names = [a.name for a in build(scn)]
    g = groups_for(names, "packed", 2, scn)
    assert g[0] == ["ix0", "ix1", "ix2", "ix3"]
    fl = flows(scn)
    assert crossing(g, fl) == pytest.approx(4_000_000)
    assert g == pipeline_groups(sorted(names), 2, loads(sorted(names), scn, fl))


def test_makespan_charges_the_codec_to_both_ends():
    fl = {("a", "b"): 100.0}
    ld = {"a": 10.0, "b": 1.0}
    assert makespan([["a", "b"]], ld, fl) == 11.0
    apart = makespan([["a"], ["b"]], ld, fl)
    assert apart > 10.0 + 100.0         # the sender pays to encode
    assert makespan([["a"], ["b"]], ld, {}) == 10.0
