"""`netcabal replay PCAP`: a capture through a host, every frame accounted for.

The default host has 2 CPUs, one NIC `ix0` with 2 RSS queues that accepts
every destination MAC (`rxfilter = "any"`), 2 netisr workstreams, and one
vnet that takes every destination address as its own and has a UDP socket on
every port (`accept_any_addr`, `udp_sink`): what the capture's frames meet is
then the stack's input path itself, not the luck of its addresses.  With
`--scenario S` the scenario's host is used instead, the capture replacing its
traffic on its first NIC.  Frames arrive in file order at `--pps` (default
100,000 a second, so that nothing queues); the run lasts until every frame
has been delivered or dropped.

Exit status: 0 when the replay ran (a capture cut short is replayed as far as
it goes, and the output says so); 2, with a one-line reason, when the file is
not a capture, its link type is not one we take, or the scenario is bad.
"""

from __future__ import annotations

import copy
import tomllib
from pathlib import Path

from actors.pcap import CaptureError, linktype_name, open_capture
from actors.traffic import CAPTURE_LINKS

from .scenario import ScenarioError, validate

DEFAULT_HOST = {
    "scenario": {"name": "replay", "seed": 1},
    "engine": {"quantum_ns": 20_000},
    "host": {"cpus": 2, "clock_ghz": 3.0},
    "sysctl": {"net.isr.maxthreads": 2, "net.isr.dispatch": "deferred"},
    "nic": [{"name": "ix0", "queues": 2, "ring_size": 4096, "rxfilter": "any",
             "mac": "00:1b:21:0a:0b:0c", "inet": ["10.0.0.1/24"], "inet6": ["2001:db8::1/64"]}],
    "vnet": [{"name": "vnet0", "accept_any_addr": True, "udp_sink": True}],
}


class ReplayRefused(Exception):
    """Not a capture / a link type we do not take: exit status 2."""


def inspect(pcap) -> tuple:
    """(frames, link type, format) of a capture, streaming; ReplayRefused if unusable."""
    try:
        cap = open_capture(pcap)
    except CaptureError as e:
        raise ReplayRefused(str(e)) from None
    with cap:
        lt = cap.linktype
        if lt is not None and lt not in CAPTURE_LINKS:
            raise ReplayRefused(f"{pcap}: link type {lt} ({linktype_name(lt)}) is not supported "
                                "(Ethernet, raw IPv4/IPv6 and Linux cooked capture are)")
        n = sum(1 for _ in cap)
        return n, lt, cap.format, cap.truncated, cap.problem


def plan(pcap, scenario=None, pps: float = 100_000.0, quantum_ns: int | None = None) -> dict:
    """The validated scenario that replays `pcap`."""
    frames, lt, fmt, truncated, problem = inspect(pcap)
    if scenario is not None:
        data = tomllib.loads(Path(scenario).read_text())
        file = scenario
    else:
        data = copy.deepcopy(DEFAULT_HOST)
        data["scenario"]["name"] = f"replay-{Path(pcap).stem}"
        file = "<replay host>"
    if quantum_ns:
        data.setdefault("engine", {})["quantum_ns"] = quantum_ns
    nic = data["nic"][0]
    q = data.get("engine", {}).get("quantum_ns", 20_000)
    # long enough for the last frame to be delivered or dropped
    data.setdefault("scenario", {})["duration_ms"] = (frames / pps * 1e9 + 5e6 + 50 * q) / 1e6
    data["traffic"] = [{"nic": nic.get("name", "ix0"), "pcap": str(Path(pcap).resolve()),
                        "rate_pps": pps}]
    data.pop("sweep", None)
    scn = validate(data, file)
    scn["replay"] = {"file": str(pcap), "format": fmt, "frames": frames, "linktype": lt,
                     "linktype_name": linktype_name(lt), "truncated": truncated,
                     "problem": problem}
    return scn


def summary(scn: dict, metrics: dict) -> dict:
    t = metrics["totals"]
    r = scn["replay"]
    return {"file": r["file"], "format": r["format"], "linktype": r["linktype_name"],
            "frames": t["arrived"], "delivered": t["delivered"],
            "delivered_by": t.get("delivered_by", {}),
            "dropped": t["dropped"], "dropped_total": t["dropped_total"],
            "in_flight": t["in_flight"], "truncated": r["truncated"], "problem": r["problem"]}


__all__ = ["plan", "summary", "inspect", "ReplayRefused", "ScenarioError"]
