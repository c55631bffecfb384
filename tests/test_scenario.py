"""Scenario files are checked before anything runs.

A bad scenario raises ScenarioError naming the file, the key and the reason
(str: "file: key: reason").  Each case below starts from a small valid
scenario, breaks one thing, writes it to a TOML file and checks that the
error names exactly the key that was broken.  Also: `--set` overrides,
net.isr.maxthreads semantics (netisr_init), and that every shipped scenario
loads.
"""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path

import pytest

from cluster.scenario import ScenarioError, build, load

REPO = Path(__file__).resolve().parent.parent
QUICKSTART = REPO / "scenarios" / "quickstart.toml"

# -- a tiny TOML writer (enough for scenarios) ---------------------------------


def _val(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        if math.isnan(v):
            return "nan"
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        return repr(v)
    if isinstance(v, int):
        return str(v)
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, list):
        return "[" + ", ".join(_val(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{json.dumps(k)} = {_val(x)}" for k, x in v.items()) + "}"
    raise TypeError(v)


def dump(d: dict) -> str:
    head, body = [], []
    for k, v in d.items():
        if isinstance(v, dict):
            body.append(f"[{k}]")
            body += [f"{json.dumps(kk)} = {_val(vv)}" for kk, vv in v.items()]
        elif isinstance(v, list) and v and all(isinstance(x, dict) for x in v):
            for item in v:
                body.append(f"[[{k}]]")
                body += [f"{json.dumps(kk)} = {_val(vv)}" for kk, vv in item.items()]
        else:
            head.append(f"{json.dumps(k)} = {_val(v)}")
    return "\n".join(head + body) + "\n"


BASE = {
    "scenario": {"name": "t", "duration_ms": 1, "seed": 3},
    "engine": {"quantum_ns": 20_000},
    "host": {"cpus": 2, "clock_ghz": 3.0},
    "sysctl": {"net.isr.maxthreads": 2},
    "costs": {"interrupt": 1000},
    "nic": [{"name": "ix0", "queues": 2, "irq_cpus": [0, 1], "mac": "00:1b:21:0a:0b:0c",
             "inet": ["10.0.0.1/24"], "inet6": ["2001:db8::1/64"]}],
    "socket": [{"name": "u4", "bind": "*:5001"}, {"name": "u6", "bind": "[::]:5001"}],
    "traffic": [{"nic": "ix0", "family": "mix", "flows": 8, "rate_pps": 100_000,
                 "sizes": [[64, 3], [1500, 1]]}],
}


def write(tmp_path, data: dict, name="s.toml") -> Path:
    p = tmp_path / name
    p.write_text(dump(data))
    return p


def test_base_scenario_is_valid(tmp_path):
    s = load(write(tmp_path, BASE))
    assert s["cpus"] == 2 and s["nics"][0]["queues"] == 2
    assert len(s["traffic"]) == 1 and s["traffic"][0]["dst_ports"] == [5001]
    build(s)


def test_error_format():
    e = ScenarioError("a/b.toml", "host.cpus", "must be 1..1024")
    assert (e.file, e.key, e.reason) == ("a/b.toml", "host.cpus", "must be 1..1024")
    assert str(e) == "a/b.toml: host.cpus: must be 1..1024"


# -- bad scenarios -----------------------------------------------------------------
# (id, mutation of a deep copy of BASE, key named, fragment of the reason)


def _set(path: str, value):
    """Mutation setting BASE[path] (path like 'nic.0.queues' or 'host.cpus')."""
    def f(d):
        *parents, last = path.split(".")
        cur = d
        for p in parents:
            cur = cur[int(p)] if isinstance(cur, list) else cur.setdefault(p, {})
        if isinstance(cur, list):
            cur[int(last)] = value
        else:
            cur[last] = value
    return f


def _sysctl(name: str, value):
    return lambda d: d.setdefault("sysctl", {}).__setitem__(name, value)


def _del(path: str):
    def f(d):
        *parents, last = path.split(".")
        cur = d
        for p in parents:
            cur = cur[int(p)] if isinstance(cur, list) else cur[p]
        del cur[last]
    return f


def _append(table: str, item: dict):
    return lambda d: d[table].append(item)


def _seq(*fs):
    def f(d):
        for g in fs:
            g(d)
    return f


BAD = [
    # unknown tables and keys
    ("unknown-table", _set("bogus", {"x": 1}), "bogus", "unknown table"),
    ("unknown-key-scenario", _set("scenario.colour", "red"), "scenario.colour", "unknown key"),
    ("unknown-key-engine", _set("engine.turbo", True), "engine.turbo", "unknown key"),
    ("unknown-key-host", _set("host.ram_gb", 64), "host.ram_gb", "unknown key"),
    ("unknown-key-nic", _set("nic.0.speed", 10), "nic[0].speed", "unknown key"),
    ("unknown-key-nic1", _append("nic", {"name": "ix1", "ttl": 1}), "nic[1].ttl", "unknown key"),
    ("unknown-key-traffic", _set("traffic.0.ttl", 64), "traffic[0].ttl", "unknown key"),
    ("unknown-key-socket", _set("socket.1.reuseport", True), "socket[1].reuseport", "unknown key"),
    # wrong types
    ("str-for-int", _set("host.cpus", "2"), "host.cpus", "must be a int"),
    ("bool-for-int", _set("host.cpus", True), "host.cpus", "must be a int"),
    ("float-for-int", _set("host.cpus", 2.0), "host.cpus", "must be a int"),
    ("float-for-int-quantum", _set("engine.quantum_ns", 2e4), "engine.quantum_ns", "int"),
    ("float-for-int-seed", _set("scenario.seed", 1.5), "scenario.seed", "int"),
    ("str-for-number", _set("scenario.duration_ms", "1"), "scenario.duration_ms", "number"),
    ("bool-for-number", _set("traffic.0.rate_pps", True), "traffic[0].rate_pps", "number"),
    ("int-for-bool", _set("engine.codec_check", 1), "engine.codec_check", "bool"),
    ("str-for-int-queues", _set("nic.0.queues", "2"), "nic[0].queues", "int"),
    ("bool-for-int-flows", _set("traffic.0.flows", True), "traffic[0].flows", "int"),
    ("float-for-int-size", _set("traffic.0.size", 64.0), "traffic[0].size", "int"),
    ("str-for-list", _set("nic.0.irq_cpus", "0,1"), "nic[0].irq_cpus", "list"),
    ("int-for-str-mac", _set("nic.0.mac", 1), "nic[0].mac", "str"),
    ("str-for-int-sysctl", _sysctl("net.isr.maxthreads", "2"), "sysctl.net.isr.maxthreads", "int"),
    ("bool-for-int-sysctl", _sysctl("net.isr.maxthreads", True), "sysctl.net.isr.maxthreads", "int"),
    ("float-for-int-sysctl", _sysctl("net.isr.maxthreads", 2.0), "sysctl.net.isr.maxthreads", "int"),
    ("float-cost", _set("costs.interrupt", 1.5), "costs.interrupt", "whole number"),
    ("bool-cost", _set("costs.interrupt", True), "costs.interrupt", "whole number"),
    ("table-as-value", _set("host", 4), "host", "must be a table"),
    ("sysctl-not-table", _set("sysctl", 5), "sysctl", "table"),
    ("socket-not-array", _set("socket", 5), "socket", "[[socket]]"),
    ("traffic-not-array", _set("traffic", 5), "traffic", "[[traffic]]"),
    # impossible values
    ("irq-cpu-missing", _set("nic.0.irq_cpus", [0, 2]), "nic[0].irq_cpus", "does not exist"),
    ("irq-cpu-negative", _set("nic.0.irq_cpus", [-1, 0]), "nic[0].irq_cpus", "does not exist"),
    ("irq-cpu-bool", _set("nic.0.irq_cpus", [True, 0]), "nic[0].irq_cpus", "does not exist"),
    ("irq-cpus-short", _set("nic.0.irq_cpus", [0]), "nic[0].irq_cpus", "one CPU per queue"),
    ("irq-cpus-long", _set("nic.0.irq_cpus", [0, 1, 0]), "nic[0].irq_cpus", "one CPU per queue"),
    ("queues-0", _set("nic.0.queues", 0), "nic[0].queues", "1..128"),
    ("queues-129", _seq(_set("nic.0.queues", 129), _del("nic.0.irq_cpus")), "nic[0].queues", "1..128"),
    ("cpus-0", _set("host.cpus", 0), "host.cpus", "1..1024"),
    ("duration-negative", _set("scenario.duration_ms", -1), "scenario.duration_ms", "> 0"),
    ("duration-zero", _set("scenario.duration_ms", 0), "scenario.duration_ms", "> 0"),
    ("duration-nan", _set("scenario.duration_ms", math.nan), "scenario.duration_ms", ""),
    ("duration-inf", _set("scenario.duration_ms", math.inf), "scenario.duration_ms", "finite"),
    ("itr-inf", _set("nic.0.itr_us", math.inf), "nic[0].itr_us", "finite"),
    ("rate-inf", _set("traffic.0.rate_pps", math.inf), "traffic[0].rate_pps", "finite"),
    ("rate-zero", _set("traffic.0.rate_pps", 0), "traffic[0].rate_pps", "> 0"),
    ("rate-missing", _del("traffic.0.rate_pps"), "traffic[0].rate_pps", "required"),
    ("quantum-longer-than-run", _set("scenario.duration_ms", 0.01), "engine.quantum_ns", "longer"),
    ("quantum-zero", _set("engine.quantum_ns", 0), "engine.quantum_ns", "> 0"),
    ("ip-ratio-above-1", _set("traffic.0.bad_ip_cksum_ratio", 1.5), "traffic[0].bad_ip_cksum_ratio", "between 0 and 1"),
    ("udp-ratio-negative", _set("traffic.0.bad_udp_cksum_ratio", -0.1), "traffic[0].bad_udp_cksum_ratio", "between 0 and 1"),
    ("inet6-fraction-2", _set("traffic.0.inet6_fraction", 2), "traffic[0].inet6_fraction", "between 0 and 1"),
    ("mac-5-octets", _set("nic.0.mac", "00:1b:21:0a:0b"), "nic[0].mac", "MAC"),
    ("mac-not-hex", _set("nic.0.mac", "00:1b:21:0a:0b:zz"), "nic[0].mac", ""),
    ("mac-octet-256", _set("nic.0.mac", "00:1b:21:0a:0b:100"), "nic[0].mac", ""),
    ("bad-ipv4", _set("nic.0.inet", ["10.0.0.300/24"]), "nic[0].inet", "not an IP address"),
    ("bad-ipv6", _set("nic.0.inet6", ["2001:db8::g"]), "nic[0].inet6", "not an IP address"),
    ("ipv6-in-inet", _set("nic.0.inet", ["2001:db8::1/64"]), "nic[0].inet", "not an IPv4 address"),
    ("ipv4-in-inet6", _set("nic.0.inet6", ["10.0.0.1"]), "nic[0].inet6", "not an IPv6 address"),
    ("int-in-inet", _set("nic.0.inet", [1]), "nic[0].inet", ""),
    ("nic-names-clash", _append("nic", {"name": "ix0"}), "nic", "unique"),
    ("no-nic", _set("nic", []), "nic", "at least one"),
    ("bind-port-0", _set("socket.0.bind", "*:0"), "socket[0].bind", "bad port"),
    ("bind-port-65536", _set("socket.0.bind", "*:65536"), "socket[0].bind", "bad port"),
    ("bind-port-text", _set("socket.0.bind", "*:http"), "socket[0].bind", "bad port"),
    ("bind-no-port", _set("socket.0.bind", "*"), "socket[0].bind", "bad port"),
    ("bind-bad-host", _set("socket.1.bind", "[10.0.0.1]:5001"), "socket[1].bind", "IPv6"),
    ("bind-missing", _del("socket.0.bind"), "socket[0].bind", "required"),
    ("bind-duplicate", _append("socket", {"bind": "*:5001"}), "socket[2].bind", "EADDRINUSE"),
    ("bind-duplicate-any", _append("socket", {"bind": "0.0.0.0:5001"}), "socket[2].bind", "EADDRINUSE"),
    ("bind-duplicate-v6", _append("socket", {"bind": "[*]:5001"}), "socket[2].bind", "EADDRINUSE"),
    ("socket-unknown-vnet", _set("socket.0.vnet", "vnet7"), "socket[0].vnet", "vnet7"),
    ("socket-proto", _set("socket.0.proto", "sctp"), "socket[0].proto", "one of"),
    ("traffic-no-such-nic", _set("traffic.0.nic", "ix9"), "traffic[0].nic", "ix9"),
    ("traffic-family", _set("traffic.0.family", "ipx"), "traffic[0].family", "one of"),
    ("traffic-no-v4-addr", _seq(_set("nic.0.inet", []), _set("traffic.0.family", "inet")),
     "traffic[0].family", "no IPv4"),
    ("traffic-size-63", _set("traffic.0.size", 63), "traffic[0].size", "64..9018"),
    ("traffic-dst-port-0", _set("traffic.0.dst_ports", [5001, 0]), "traffic[0].dst_ports", "bad port"),
    ("traffic-dst-port-bool", _set("traffic.0.dst_ports", [True]), "traffic[0].dst_ports", "bad port"),
    ("src-net-host-bits", _set("traffic.0.src_net", "198.18.0.1/15"), "traffic[0].src_net", "not a network"),
    ("src-net-v6", _set("traffic.0.src_net", "2001:db8::/32"), "traffic[0].src_net", "IPv4"),
    ("src-net6-v4", _set("traffic.0.src_net6", "10.0.0.0/8"), "traffic[0].src_net6", "IPv6"),
    ("sizes-one-element", _set("traffic.0.sizes", [[64, 1], [576]]), "traffic[0].sizes[1]", "frame_size"),
    ("sizes-too-small", _set("traffic.0.sizes", [[10, 1]]), "traffic[0].sizes[0]", "frame_size"),
    ("sizes-zero-weight", _set("traffic.0.sizes", [[64, 1], [64, 0]]), "traffic[0].sizes[1]", "weight"),
    ("sizes-bool-weight", _set("traffic.0.sizes", [[64, True]]), "traffic[0].sizes[0]", "weight"),
    ("sizes-str-size", _set("traffic.0.sizes", [["64", 1]]), "traffic[0].sizes[0]", "frame_size"),
    ("sizes-flat", _set("traffic.0.sizes", [64, 1]), "traffic[0].sizes[0]", "frame_size"),
    # sysctls and costs
    ("unknown-sysctl", _sysctl("net.inet.tcp.mssdflt", 1460), "sysctl.net.inet.tcp.mssdflt", "unknown"),
    ("dispatch-bogus", _sysctl("net.isr.dispatch", "bogus"), "sysctl.net.isr.dispatch", "must be one of"),
    ("bindthreads-2", _sysctl("net.isr.bindthreads", 2), "sysctl.net.isr.bindthreads", "0 or 1"),
    ("ip-qlen-above-max", _sysctl("net.inet.ip.intr_queue_maxlen", 20_000),
     "sysctl.net.inet.ip.intr_queue_maxlen", "exceeds net.isr.maxqlimit"),
    ("ip6-qlen-above-max", _seq(_sysctl("net.isr.maxqlimit", 100),
                                _sysctl("net.inet6.ip6.intr_queue_maxlen", 101)),
     "sysctl.net.inet6.ip6.intr_queue_maxlen", "exceeds net.isr.maxqlimit 100"),
    ("unknown-cost", _set("costs.teleport", 5), "costs.teleport", "unknown cost"),
    ("negative-cost", _set("costs.interrupt", -1), "costs.interrupt", ">= 0"),
    ("sweep-not-list", _set("sweep", {"host.cpus": 4}), "sweep.host.cpus", "non-empty list"),
]


@pytest.mark.parametrize("mutate,key,reason", [c[1:] for c in BAD], ids=[c[0] for c in BAD])
def test_bad_scenario_names_file_key_reason(tmp_path, mutate, key, reason):
    data = copy.deepcopy(BASE)
    mutate(data)
    p = write(tmp_path, data)
    with pytest.raises(ScenarioError) as ei:
        load(p)
    e = ei.value
    assert e.file == str(p)
    assert e.key == key, str(e)
    assert reason in e.reason
    assert str(e) == f"{p}: {key}: {e.reason}"


def test_not_toml(tmp_path):
    p = tmp_path / "bad.toml"
    p.write_text("[host]\ncpus = = 4\n")
    with pytest.raises(ScenarioError) as ei:
        load(p)
    assert (ei.value.file, ei.value.key) == (str(p), "-")
    assert "not valid TOML" in ei.value.reason and "line 2" in ei.value.reason


def test_missing_file(tmp_path):
    p = tmp_path / "nope.toml"
    with pytest.raises(ScenarioError) as ei:
        load(p)
    assert (ei.value.file, ei.value.key, ei.value.reason) == (str(p), "-", "no such file")


# -- --set overrides ------------------------------------------------------------------


def test_set_overrides_apply():
    s = load(QUICKSTART, ["net.isr.maxthreads=2", "host.clock_ghz=2.5", "scenario.name=other",
                          "traffic.0.rate_pps=5000", "nic.ix0.queues=2", "nic.ix0.irq_cpus=[3, 1]",
                          "scenario.duration_ms=2"])
    assert s["sysctl"]["net.isr.maxthreads"] == 2
    assert s["netisr"]["workstreams"] == ["netisr0", "netisr1"]
    assert s["ghz"] == 2.5
    assert s["name"] == "other"                      # not TOML -> taken as a string
    assert s["traffic"][0]["rate_pps"] == 5000
    assert s["nics"][0]["queues"] == 2 and s["nics"][0]["irq_cpus"] == [3, 1]
    assert s["duration_ns"] == 2_000_000


def test_set_by_index_and_by_name_and_all(tmp_path):
    data = copy.deepcopy(BASE)
    data["traffic"].append({"nic": "ix0", "rate_pps": 7, "family": "inet"})
    data["nic"].append({"name": "ix1", "queues": 1})
    p = write(tmp_path, data)
    s = load(p, ["traffic.1.rate_pps=9"])
    assert [t["rate_pps"] for t in s["traffic"]] == [100_000, 9]
    s = load(p, ["traffic.rate_pps=42"])               # every [[traffic]] entry
    assert [t["rate_pps"] for t in s["traffic"]] == [42, 42]
    s = load(p, ["nic.ix1.queues=2"])
    assert [n["queues"] for n in s["nics"]] == [2, 2]
    s = load(p, ["nic.1.ring_size=64"])
    assert [n["ring_size"] for n in s["nics"]] == [1024, 64]
    s = load(p, ["socket.u6.bind=[::]:6000"])
    assert sorted(x["port"] for x in s["vnets"]["vnet0"]["sockets"]) == [5001, 6000]


@pytest.mark.parametrize("ov,file_is_set,key,reason", [
    ("host.cpus=0", False, "host.cpus", "1..1024"),
    ("host.cpus=two", False, "host.cpus", "must be a int"),
    ("net.isr.dispatch=bogus", False, "sysctl.net.isr.dispatch", "must be one of"),
    ("net.inet.tcp.mssdflt=1460", False, "sysctl.net.inet.tcp.mssdflt", "unknown"),
    ("traffic.0.rate_pps=-1", False, "traffic[0].rate_pps", "> 0"),
    ("traffic.bad_ip_cksum_ratio=2", False, "traffic[0].bad_ip_cksum_ratio", "between 0 and 1"),
    ("nic.ix0.queues=2", False, "nic[0].irq_cpus", "one CPU per queue"),   # quickstart pins 4
    ("nic.ix0.irq_cpus=[0, 1, 2, 4]", False, "nic[0].irq_cpus", "does not exist"),
    ("bogus.key=1", False, "bogus", "unknown table"),
    ("traffic.3.rate_pps=1", True, "traffic.3.rate_pps", "no traffic entry"),
    ("nic.ix9.queues=1", True, "nic.ix9.queues", "no nic entry"),
    ("a.b.c=1", True, "a.b.c", "expected"),
    ("host.cpus", True, "host.cpus", "KEY=VALUE"),
])
def test_set_overrides_are_validated(ov, file_is_set, key, reason):
    with pytest.raises(ScenarioError) as ei:
        load(QUICKSTART, [ov])
    e = ei.value
    assert e.file == ("--set" if file_is_set else str(QUICKSTART))
    assert e.key == key, str(e)
    assert reason in e.reason


# -- net.isr.maxthreads (netisr_init) ------------------------------------------------------


@pytest.mark.parametrize("maxthreads,expect", [(-1, 4), (0, 1), (-7, 1), (1, 1), (3, 3), (4, 4), (64, 4)])
def test_maxthreads(maxthreads, expect):
    s = load(QUICKSTART, [f"net.isr.maxthreads={maxthreads}", "host.cpus=4"])
    assert s["netisr"]["workstreams"] == [f"netisr{i}" for i in range(expect)]
    assert len(s["netisr"]["cpus"]) == expect


def test_maxthreads_follows_cpus():
    s = load(QUICKSTART, ["net.isr.maxthreads=-1", "host.cpus=6"])
    assert len(s["netisr"]["workstreams"]) == 6
    s = load(QUICKSTART, ["net.isr.maxthreads=16", "host.cpus=6"])
    assert len(s["netisr"]["workstreams"]) == 6


# -- shipped scenarios -------------------------------------------------------------------------

SHIPPED = sorted((REPO / "scenarios").glob("*.toml"))


def test_there_are_shipped_scenarios():
    assert QUICKSTART in SHIPPED


@pytest.mark.parametrize("path", SHIPPED, ids=[p.name for p in SHIPPED])
def test_shipped_scenario_loads(path):
    s = load(path)
    assert s["windows"] >= 1 and s["nics"]
    assert build(s)
