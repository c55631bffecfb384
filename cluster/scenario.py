"""Scenario files: TOML that speaks FreeBSD, checked before anything runs.

A scenario describes a host (cores, NICs, sysctls, sockets, costs) and its
traffic.  `load(path, overrides)` parses it, applies `--set KEY=VALUE`
overrides, and validates every key: an unknown key, a value of the wrong
type or an impossible value (a queue pinned to a CPU that does not exist, a
socket in a vnet nobody declared) raises `ScenarioError` naming the file,
the key and the reason.  Nothing is built until the whole file is good.

`build(scn)` turns a validated scenario into the actors of the emulated host.
"""

from __future__ import annotations

import copy
import ipaddress
import math
import tomllib
from pathlib import Path

from actors.costs import DEFAULT_COSTS, merged

SCHEMA_VERSION = 2   # 2: the cost model (per-CPU memory, switches, interrupts, migrations; cost_per_packet)


class ScenarioError(Exception):
    def __init__(self, file, key: str, reason: str):
        self.file, self.key, self.reason = str(file), key, reason
        super().__init__(f"{file}: {key}: {reason}")


NUM = (int, float)

# sysctl name -> (type, default, check or None)
SYSCTLS = {
    "net.isr.maxthreads": (int, 1, None),
    # FreeBSD's default is 0 (unbound); unbound netisr threads need the
    # scheduler model, so only bound threads (1) are modelled, and 0 is refused
    # FreeBSD's default is 0: netisr threads unbound, placed by the scheduler
    # (actors/sched.py); 1 binds workstream i's thread to CPU i
    "net.isr.bindthreads": (int, 0, lambda v: v in (0, 1) or "must be 0 or 1"),
    # FreeBSD's default: direct (the stack runs in the thread calling if_input)
    "net.isr.dispatch": (str, "direct",
                         lambda v: v in ("deferred", "direct", "hybrid")
                         or "must be one of deferred, hybrid, direct"),
    "net.isr.defaultqlimit": (int, 256, lambda v: v >= 1 or "must be >= 1"),
    "net.isr.maxqlimit": (int, 10240, lambda v: v >= 1 or "must be >= 1"),
    "net.inet.ip.intr_queue_maxlen": (int, 0, lambda v: v >= 0 or "must be >= 0"),
    "net.inet6.ip6.intr_queue_maxlen": (int, 0, lambda v: v >= 0 or "must be >= 0"),
    "net.route.netisr_maxqlen": (int, 0, lambda v: v >= 0 or "must be >= 0"),
    "net.inet.udp.recvspace": (int, 42080, lambda v: v >= 1 or "must be >= 1"),
    "net.inet.tcp.recvspace": (int, 65536, lambda v: v >= 1 or "must be >= 1"),
    "net.inet.ip.forwarding": (int, 0, lambda v: v == 0 or "forwarding is not modelled yet"),
    # reassembly (2006 defaults: maxfragpackets = nmbclusters / 32 = 800, 16
    # fragments a datagram; IPv6: nmbclusters / 4 = 6400, modern 64 a datagram)
    "net.inet.ip.maxfragpackets": (int, 800, lambda v: v >= 0 or "must be >= 0"),
    "net.inet.ip.maxfragsperpacket": (int, 16, lambda v: v >= 0 or "must be >= 0"),
    "net.inet.ip.fragttl": (int, 30, lambda v: v >= 1 or "must be >= 1 (seconds)"),
    "net.inet6.ip6.maxfragpackets": (int, 6400, lambda v: v >= 0 or "must be >= 0"),
    "net.inet6.ip6.maxfragsperpacket": (int, 64, lambda v: v >= 0 or "must be >= 0"),
}

_pos = lambda v: v > 0 or "must be > 0"          # noqa: E731
_nonneg = lambda v: v >= 0 or "must be >= 0"     # noqa: E731
_ratio = lambda v: 0 <= v <= 1 or "must be between 0 and 1"   # noqa: E731


def _oneof(*opts):
    return lambda v: v in opts or f"must be one of {', '.join(map(str, opts))}"


TABLES = {
    "scenario": {"name": (str, None), "description": (str, None),
                 "duration_ms": (NUM, _pos), "seed": (int, _nonneg)},
    "engine": {"quantum_ns": (int, _pos), "codec_check": (bool, None),
               "tap_max": (int, _nonneg)},
    "pcb": {"locking": (str, _oneof("global", "pcbref", "pcbgroup")),
            "groups": (int, lambda v: 1 <= v <= 1024 or "must be 1..1024")},
    "wakeup": {"mode": (str, _oneof("immediate", "deferred", "batched")),
               "batch": (int, lambda v: 1 <= v <= 65536 or "must be 1..65536"),
               "timeout_us": (NUM, _nonneg)},
    "host": {"cpus": (int, lambda v: 1 <= v <= 1024 or "must be 1..1024"),
             "clock_ghz": (NUM, _pos),
             "packages": (int, lambda v: 1 <= v <= 64 or "must be 1..64"),
             "l2_kb": (int, _pos), "llc_kb": (int, _pos), "cache_model": (bool, None)},
}
NIC_KEYS = {"name": (str, None), "queues": (int, lambda v: 1 <= v <= 128 or "must be 1..128"),
            "ring_size": (int, _pos), "itr_us": (NUM, _nonneg), "mac": (str, None),
            "inet": (list, None), "inet6": (list, None), "irq_cpus": ((list, str), None),
            "ithread_cpus": ((list, str), None),
            "rxcsum": (bool, None), "rss": (bool, None), "promisc": (bool, None), "vnet": (str, None),
            "rxfilter": (str, _oneof("mac", "any")),
            "linktype": (str, _oneof("ether", "raw", "sll", "sll2"))}
SOCKET_KEYS = {"name": (str, None), "vnet": (str, None), "proto": (str, _oneof("udp", "tcp")),
               "bind": (str, None), "rcvbuf": (int, _pos), "read_pps": (NUM, _pos),
               "reader_cpu": ((int, str), None)}
APP_KEYS = {"name": (str, None), "vnet": (str, None), "kind": (str, _oneof("udp_send")),
            "to": (str, None), "from_port": (int, lambda v: 1 <= v <= 65535 or "must be 1..65535"),
            "cpu": ((int, str), None), "rate_pps": (NUM, lambda v: 0 < v <= 1e8 or "must be > 0 and at most 1e8"),
            "burst": (int, lambda v: 1 <= v <= 4096 or "must be 1..4096"),
            "payload": (int, lambda v: 8 <= v <= 1400 or "must be 8..1400 bytes"),
            "start_ms": (NUM, _nonneg), "stop_ms": (NUM, _nonneg)}
TRAFFIC_KEYS = {"nic": (str, None), "proto": (str, _oneof("udp", "tcp")),
                "handshake": (bool, None), "loss_ratio": (NUM, _ratio), "reorder_ratio": (NUM, _ratio),
                "rto_us": (NUM, _pos), "rtt_us": (NUM, _pos), "reorder_us": (NUM, _pos),
                "family": (str, _oneof("inet", "inet6", "mix")), "inet6_fraction": (NUM, _ratio),
                "flows": (int, lambda v: 1 <= v <= 1_000_000 or "must be 1..1000000"),
                "popularity": (str, _oneof("uniform", "zipf")), "zipf_s": (NUM, _pos),
                "arrivals": (str, _oneof("constant", "poisson")), "rate_pps": (NUM, lambda v: 0 < v <= 1e9 or "must be > 0 and at most 1e9 (1 Gpps)"),
                "size": (int, lambda v: 64 <= v <= 9018 or "must be 64..9018"),
                "sizes": (list, None), "dst_ports": (list, None),
                "src_net": (str, None), "src_net6": (str, None),
                "start_ms": (NUM, _nonneg), "stop_ms": (NUM, _nonneg),
                "bad_ip_cksum_ratio": (NUM, _ratio), "bad_udp_cksum_ratio": (NUM, _ratio),
                "pcap": (str, None), "fragment_ratio": (NUM, _ratio),
                "connected": (bool, None),
                "vlan": ((int, list), lambda v: (
                    (isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= 4094)
                    or (isinstance(v, list) and len(v) == 2
                        and all(isinstance(x, int) and not isinstance(x, bool) and 1 <= x <= 4094 for x in v)))
                    or "must be a VLAN id 1..4094, or [outer, inner] for QinQ")}
TOP = set(TABLES) | {"sysctl", "costs", "nic", "socket", "traffic", "sweep", "ifconfig", "vnet",
                     "netisr", "app"}
NETISR_KEYS = {"policy": (str, _oneof("source", "flow", "cpu", "spread")), "pin": (dict, None),
               "rxq_offset": (int, _nonneg)}
VNET_KEYS = {"name": (str, None), "accept_any_addr": (bool, None), "udp_sink": (bool, None)}


def _check(file, where: str, table: dict, schema: dict) -> None:
    if not isinstance(table, dict):
        raise ScenarioError(file, where, "must be a table")
    for k, v in table.items():
        key = f"{where}.{k}"
        if k not in schema:
            raise ScenarioError(file, key, f"unknown key (known: {', '.join(sorted(schema))})")
        typ, chk = schema[k]
        ok = isinstance(v, typ) and not (typ is not bool and isinstance(v, bool))
        if typ is NUM:
            ok = isinstance(v, NUM) and not isinstance(v, bool)
        if not ok:
            tname = {NUM: "number", int: "integer", str: "string", bool: "boolean",
                     list: "list"}.get(typ, getattr(typ, "__name__", str(typ)))
            raise ScenarioError(file, key, f"must be a {tname}, not {type(v).__name__} {v!r}")
        if typ is NUM and not math.isfinite(v):
            raise ScenarioError(file, key, f"must be a finite number, not {v!r}")
        if chk is not None:
            r = chk(v)
            if r is not True:
                raise ScenarioError(file, key, r)


def set_override(data: dict, key: str, raw: str) -> None:
    """Apply `--set KEY=VALUE` (VALUE parsed as TOML, else a string)."""
    try:
        value = tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw
    if key in SYSCTLS or key.startswith(("net.", "kern.")):
        data.setdefault("sysctl", {})[key] = value
        return
    parts = key.split(".")
    if parts[0] in ("nic", "traffic", "socket", "app"):
        items = data.get(parts[0], [])
        if len(parts) == 2:              # every entry
            for it in items:
                it[parts[1]] = value
            return
        sel, field = parts[1], ".".join(parts[2:])
        default = {"nic": "ix{}", "socket": "udp{}", "traffic": "{}", "app": "app{}"}[parts[0]]
        targets = [it for i, it in enumerate(items)
                   if str(i) == sel or it.get("name", default.format(i)) == sel]
        if not targets:
            raise ScenarioError("--set", key, f"no {parts[0]} entry {sel!r}")
        for it in targets:
            it[field] = value
        return
    if len(parts) == 2:
        data.setdefault(parts[0], {})[parts[1]] = value
        return
    raise ScenarioError("--set", key, "expected a sysctl name, TABLE.KEY, or LIST.INDEX|NAME.KEY")


def load(path, overrides: list | None = None) -> dict:
    """Parse, override and validate a scenario file; return its checked form."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise ScenarioError(path, "-", "no such file") from None
    except tomllib.TOMLDecodeError as e:
        raise ScenarioError(path, "-", f"not valid TOML: {e}") from None
    for kv in overrides or []:
        if "=" not in kv:
            raise ScenarioError("--set", kv, "expected KEY=VALUE")
        k, v = kv.split("=", 1)
        set_override(data, k.strip(), v.strip())
    return validate(data, path)


def _addr(file, key, s: str, v6: bool) -> bytes:
    if not isinstance(s, str):
        raise ScenarioError(file, key, f"not an IP address: {s!r}")
    try:
        a = ipaddress.ip_interface(s).ip
    except ValueError:
        raise ScenarioError(file, key, f"not an IP address: {s!r}") from None
    if (a.version == 6) != v6:
        raise ScenarioError(file, key, f"{s!r} is not an IPv{'6' if v6 else '4'} address")
    return a.packed


def _pcap_traffic(file, where: str, t: dict, nic: dict) -> None:
    """A traffic entry replaying a capture: the file must open and its link
    type must be one we take; the NIC takes the capture's link type."""
    from actors.pcap import CaptureError, linktype_name, open_capture
    from actors.traffic import CAPTURE_LINKS
    path = Path(t["pcap"])
    if not path.is_absolute() and str(file) not in ("<scenario>", "--set"):
        path = Path(str(file)).parent / path
    t["pcap"] = str(path)
    try:
        cap = open_capture(path)
    except CaptureError as e:
        raise ScenarioError(file, f"{where}.pcap", str(e)) from None
    lt = cap.linktype
    cap.close()
    if lt not in CAPTURE_LINKS:
        raise ScenarioError(file, f"{where}.pcap",
                            f"link type {lt} ({linktype_name(lt)}) is not supported "
                            "(Ethernet, raw IPv4/IPv6, Linux cooked capture are)")
    nic["linktype"] = CAPTURE_LINKS[lt]
    t.setdefault("rate_pps", 1_000_000)


def _ifconfig(file, lines, nic_by_name: dict, vnet_names: set) -> None:
    """VLAN interfaces in ifconfig form, attached to the NIC they come in on:
    `vlan100 create vlan 100 vlandev ix0 [vlanproto 802.1q|802.1ad]`,
    `vlan100 inet 10.100.0.1/24`, `vlan100 inet6 2001:db8:100::1/64`,
    `vlan100 vnet web` (QinQ: a VLAN whose vlandev is another VLAN)."""
    if not isinstance(lines, list):
        raise ScenarioError(file, "ifconfig", "must be a list of ifconfig command lines")
    vl = {}          # name -> vlan record
    root = {}        # name -> the physical NIC it arrives on
    for i, line in enumerate(lines):
        key = f"ifconfig[{i}]"
        if not isinstance(line, str):
            raise ScenarioError(file, key, "must be a string like 'vlan100 create vlan 100 vlandev ix0'")
        w = line.split()
        if len(w) >= 6 and w[1] == "create" and w[2] == "vlan" and w[4] == "vlandev":
            name, vid, parent = w[0], w[3], w[5]
            if name in vl or name in nic_by_name:
                raise ScenarioError(file, key, f"interface {name} exists already (EEXIST)")
            if not vid.isdigit() or not 1 <= int(vid) <= 4094:
                raise ScenarioError(file, key, f"VLAN id {vid!r} must be 1..4094")
            if parent not in nic_by_name and parent not in vl:
                raise ScenarioError(file, key, f"vlandev {parent} does not exist")
            rest = w[6:]
            if rest and not (len(rest) == 2 and rest[0] == "vlanproto" and rest[1] in ("802.1q", "802.1ad")):
                raise ScenarioError(file, key, f"unexpected {' '.join(rest)!r} (vlanproto 802.1q|802.1ad)")
            r = root.get(parent, parent)
            if any(v["parent"] == parent and v["vid"] == int(vid) for v in vl.values()):
                raise ScenarioError(file, key, f"VLAN {vid} exists already on {parent}")
            vl[name] = {"name": name, "vid": int(vid), "parent": parent,
                        "vnet": (vl[parent]["vnet"] if parent in vl else nic_by_name[r]["vnet"])}
            root[name] = r
            nic_by_name[r]["vlans"].append(vl[name])
        elif len(w) == 3 and w[1] in ("inet", "inet6", "vnet"):
            name = w[0]
            if name not in vl:
                raise ScenarioError(file, key, f"no VLAN interface {name} (create it first)")
            if w[1] == "vnet":
                vl[name]["vnet"] = w[2]
                vnet_names.add(w[2])
            else:
                vl[name].setdefault(w[1], []).append(_addr(file, key, w[2], w[1] == "inet6"))
        else:
            raise ScenarioError(file, key, "expected 'NAME create vlan VID vlandev PARENT' or "
                                           "'NAME inet|inet6 ADDR' or 'NAME vnet VNET'")


def _cpu_list(file, key: str, v, n: int, ncpu: int) -> list:
    """One CPU per queue, or "float" (for all): a list of int or None."""
    if v == "float":
        return [None] * n
    if not isinstance(v, list):
        raise ScenarioError(file, key, f'must be a list of CPUs (one per queue), "pinned", "float" '
                                       f'or "balanced", not {v!r}')
    if len(v) != n:
        raise ScenarioError(file, key, f"needs one CPU per queue ({n}), got {len(v)}")
    out = []
    for c in v:
        if c == "float":
            out.append(None)
        elif not isinstance(c, int) or isinstance(c, bool) or not 0 <= c < ncpu:
            raise ScenarioError(file, key, f"CPU {c!r} does not exist (host.cpus = {ncpu})")
        else:
            out.append(c)
    return out


def _host_port(file, key: str, text: str) -> tuple:
    """'HOST:PORT' (HOST may be '*', an address, or '[v6 address]') ->
    (HOST, PORT as text), refusing a bad port."""
    host, _, port = text.rpartition(":")
    if not port.isdigit() or not 1 <= int(port) <= 65535:
        raise ScenarioError(file, key, f"bad port in {text!r}")
    return host, port


LOOPBACK4 = bytes([127, 0, 0, 1])
LOOPBACK6 = bytes(15) + b"\1"


def _apps(file, data: dict, out: dict, ncpu: int) -> None:
    """[[app]]: application threads; `udp_send` sends over lo0 to `to`."""
    apps = data.get("app", [])
    if not isinstance(apps, list):
        raise ScenarioError(file, "app", "must be an array of tables ([[app]])")
    names = set()
    for i, a in enumerate(apps):
        where = f"app[{i}]"
        _check(file, where, a, APP_KEYS)
        name = a.get("name", f"app{i}")
        if name in names:
            raise ScenarioError(file, f"{where}.name", f"{name!r} is used twice")
        names.add(name)
        vn = a.get("vnet", "vnet0")
        if vn not in out["vnets"]:
            raise ScenarioError(file, f"{where}.vnet", f"no vnet {vn!r}")
        to = a.get("to")
        if to is None:
            raise ScenarioError(file, f"{where}.to", "required, e.g. '127.0.0.1:5001' or '[::1]:5001'")
        h, port = _host_port(file, f"{where}.to", to)
        v6 = h.startswith("[")
        dst = _addr(file, f"{where}.to", h[1:-1] if v6 else h, v6)
        if dst not in out["vnets"][vn]["inet6" if v6 else "inet"]:
            raise ScenarioError(file, f"{where}.to",
                                f"{h} is not an address of vnet {vn}: only local (lo0) sends are modelled")
        if "rate_pps" not in a:
            raise ScenarioError(file, f"{where}.rate_pps", "required (datagrams a second)")
        if a.get("stop_ms") is not None and a["stop_ms"] <= a.get("start_ms", 0):
            raise ScenarioError(file, f"{where}.stop_ms", "must be after start_ms")
        cpu = _cpu_list(file, f"{where}.cpu", [a.get("cpu", 0)], 1, ncpu)[0]
        out["vnets"][vn].setdefault("apps", []).append({
            "name": name, "vnet": vn, "v6": v6, "src": dst, "dst": dst,
            "sport": a.get("from_port", 10000 + i), "dport": int(port), "cpu": cpu,
            "rate_pps": float(a["rate_pps"]), "burst": a.get("burst", 1),
            "payload": a.get("payload", 18), "start_ms": a.get("start_ms", 0),
            "stop_ms": a.get("stop_ms")})


def validate(data: dict, file="<scenario>") -> dict:
    for k in data:
        if k not in TOP:
            raise ScenarioError(file, k, f"unknown table (known: {', '.join(sorted(TOP))})")
    for t, schema in TABLES.items():
        _check(file, t, data.get(t, {}), schema)
    scn = data.get("scenario", {})
    eng = data.get("engine", {})
    hst = data.get("host", {})
    ncpu = hst.get("cpus", 1)
    if ncpu % hst.get("packages", 1):
        raise ScenarioError(file, "host.packages",
                            f"{hst['packages']} packages cannot share {ncpu} CPUs evenly")
    out = {
        "name": scn.get("name", Path(str(file)).stem),
        "description": scn.get("description", ""),
        "seed": scn.get("seed", 1),
        "duration_ns": int(round(scn.get("duration_ms", 10) * 1e6)),
        "quantum_ns": eng.get("quantum_ns", 20_000),
        "codec_check": eng.get("codec_check", False),
        "tap_max": eng.get("tap_max", 100_000),
        "cpus": ncpu,
        "ghz": float(hst.get("clock_ghz", 3.0)),
        "packages": hst.get("packages", 1),
        "l2_bytes": hst.get("l2_kb", 256) << 10,
        "llc_bytes": hst.get("llc_kb", 8192) << 10,
        "cache_model": hst.get("cache_model", True),
        "file": str(file),
    }
    # sysctls
    sc = {}
    if not isinstance(data.get("sysctl", {}), dict):
        raise ScenarioError(file, "sysctl", "must be a table")
    for t in ("socket", "traffic"):
        if not isinstance(data.get(t, []), list):
            raise ScenarioError(file, t, f"must be an array of tables ([[{t}]])")
    for k, v in data.get("sysctl", {}).items():
        key = f"sysctl.{k}"
        if k not in SYSCTLS:
            raise ScenarioError(file, key, "unknown or unmodelled sysctl (known: "
                                + ", ".join(sorted(SYSCTLS)) + ")")
        typ, _, chk = SYSCTLS[k]
        if not isinstance(v, typ) or isinstance(v, bool):
            raise ScenarioError(file, key, f"must be {typ.__name__}, not {v!r}")
        if chk is not None and chk(v) is not True:
            raise ScenarioError(file, key, chk(v))
        sc[k] = v
    sysctl = {k: sc.get(k, d) for k, (_, d, _) in SYSCTLS.items()}
    mt = sysctl["net.isr.maxthreads"]
    # netisr_init: -1 means all CPUs, 0 or < -1 become 1, above ncpus clamped
    nws = ncpu if mt == -1 else (1 if mt < 1 else min(mt, ncpu))
    maxq = sysctl["net.isr.maxqlimit"]
    dq = min(sysctl["net.isr.defaultqlimit"], maxq)

    def ql(name):
        v = sysctl[name]
        if v > maxq:
            raise ScenarioError(file, f"sysctl.{name}", f"{v} exceeds net.isr.maxqlimit {maxq}")
        return v or dq
    out["sysctl"] = sysctl
    nt = data.get("netisr", {})
    _check(file, "netisr", nt, NETISR_KEYS)
    pol = nt.get("policy", "flow")
    pin = {}
    for k, v in nt.get("pin", {}).items():
        if not isinstance(v, int) or isinstance(v, bool) or not 0 <= v < nws:
            raise ScenarioError(file, f"netisr.pin.{k}",
                                f"workstream {v!r} does not exist (net.isr.maxthreads gives {nws})")
        pin[k] = v
    out["netisr"] = {"workstreams": [f"netisr{i}" for i in range(nws)],
                     "rxq_offset": nt.get("rxq_offset"),
                     "cpus": list(range(nws)), "ncpus": ncpu,
                     "policy": {"ip": pol, "ip6": pol}, "pin": pin,
                     "dispatch": sysctl["net.isr.dispatch"],
                     "bindthreads": sysctl["net.isr.bindthreads"],
                     "qlimit": {"ip": ql("net.inet.ip.intr_queue_maxlen"),
                                "ip6": ql("net.inet6.ip6.intr_queue_maxlen"),
                                "arp": dq, "ether": dq}}
    # costs
    costs = data.get("costs", {})
    if not isinstance(costs, dict):
        raise ScenarioError(file, "costs", "must be a table")
    for k, v in costs.items():
        if k not in DEFAULT_COSTS:
            raise ScenarioError(file, f"costs.{k}", f"unknown cost (known: {', '.join(sorted(DEFAULT_COSTS))})")
        if not isinstance(v, int) or isinstance(v, bool) or v < 0:
            raise ScenarioError(file, f"costs.{k}", "must be a whole number of cycles >= 0")
    out["costs"] = merged(costs)
    # NICs
    nics = data.get("nic", [])
    if not isinstance(nics, list) or not nics:
        raise ScenarioError(file, "nic", "at least one [[nic]] is needed")
    vnet_names = {"vnet0"}
    out["nics"] = []
    vector_base = 0
    for i, n in enumerate(nics):
        if i:
            vector_base += out["nics"][-1]["queues"]
        where = f"nic[{i}]"
        _check(file, where, n, NIC_KEYS)
        name = n.get("name", f"ix{i}")
        q = n.get("queues", 1)
        if n.get("rss") is False and q != 1:
            raise ScenarioError(file, f"{where}.rss", f"a NIC without RSS has one rx queue, not {q}")
        # MSI-X vectors: one per rx queue, each pinned to a CPU (cpuset -x) or
        # "float"; ithreads bound with their vectors unless ithread_cpus says
        irq = n.get("irq_cpus", "pinned")
        if irq == "pinned":                   # queue j's vector on CPU j mod ncpu
            irq = [j % ncpu for j in range(q)]
        balanced = irq == "balanced"          # the model's balancer moves the vectors
        irq = _cpu_list(file, f"{where}.irq_cpus", "float" if balanced else irq, q, ncpu)
        ith = n.get("ithread_cpus", "bound")
        if ith == "bound":                    # with their vectors (intr_event_bind)
            ith = None
        if ith is not None:
            ith = _cpu_list(file, f"{where}.ithread_cpus", ith, q, ncpu)
        elif any(c is None for c in irq):
            ith = [None] * q                  # a floating vector: its ithread floats too
        try:
            from actors.inet import mac
            m = mac(n.get("mac", f"00:1b:21:00:00:{i + 1:02x}"))
        except ValueError as e:
            raise ScenarioError(file, f"{where}.mac", str(e)) from None
        vn = n.get("vnet", "vnet0")
        vnet_names.add(vn)
        out["nics"].append({
            "name": name, "if_index": i + 1, "queues": q,
            "ring_size": n.get("ring_size", 1024),
            "itr_ns": int(round(n.get("itr_us", 8.0) * 1000)),
            "mac": m, "irq_cpus": irq, "ithread_cpus": ith, "vector_base": vector_base,
            "irq_balance": balanced,
            "rxcsum": n.get("rxcsum", True), "rss": n.get("rss", True),
            "promisc": n.get("promisc", False), "vnet": vn,
            "rxfilter": n.get("rxfilter", "mac"), "linktype": n.get("linktype", "ether"),
            "vlans": [],
            "inet": [_addr(file, f"{where}.inet", a, False) for a in n.get("inet", [f"10.0.{i}.1"])],
            "inet6": [_addr(file, f"{where}.inet6", a, True) for a in n.get("inet6", [f"2001:db8:{i}::1"])],
        })
    nic_by_name = {n["name"]: n for n in out["nics"]}
    out["netisr"]["nics"] = [n["name"] for n in out["nics"]]
    off = out["netisr"].pop("rxq_offset")
    if off is not None:
        # netcabal's shorthand: rx queue j of every NIC to the workstream on
        # the CPU `off` after its vector's (0: the interrupt's own CPU)
        for n in out["nics"]:
            for j, c in enumerate(n["irq_cpus"]):
                key = f"{n['name']}:rxq{j}"
                if key not in pin:
                    pin[key] = ((j if c is None else c) + off) % nws
    if len(nic_by_name) != len(out["nics"]):
        raise ScenarioError(file, "nic", "NIC names must be unique")
    _ifconfig(file, data.get("ifconfig", []), nic_by_name, vnet_names)
    # sockets
    vopts = {}
    vlist = data.get("vnet", [])
    if not isinstance(vlist, list):
        raise ScenarioError(file, "vnet", "must be a list of [[vnet]] tables")
    for i, v in enumerate(vlist):
        _check(file, f"vnet[{i}]", v, VNET_KEYS)
        if "name" not in v:
            raise ScenarioError(file, f"vnet[{i}].name", "required")
        vopts[v["name"]] = v
        vnet_names.add(v["name"])
    out["vnets"] = {v: {"name": v, "sockets": [], "inet": set(), "inet6": set(),
                        "accept_any_addr": vopts.get(v, {}).get("accept_any_addr", False),
                        "udp_sink": vopts.get(v, {}).get("udp_sink", False)}
                    for v in sorted(vnet_names)}
    for v in out["vnets"].values():          # lo0 is in every vnet
        v["inet"].add(LOOPBACK4)
        v["inet6"].add(LOOPBACK6)
    for n in out["nics"]:
        out["vnets"][n["vnet"]]["inet"].update(n["inet"])
        out["vnets"][n["vnet"]]["inet6"].update(n["inet6"])
        for v in n["vlans"]:
            out["vnets"][v["vnet"]]["inet"].update(v.get("inet", []))
            out["vnets"][v["vnet"]]["inet6"].update(v.get("inet6", []))
    for i, s in enumerate(data.get("socket", [])):
        where = f"socket[{i}]"
        _check(file, where, s, SOCKET_KEYS)
        vn = s.get("vnet", "vnet0")
        if vn not in out["vnets"]:
            raise ScenarioError(file, f"{where}.vnet", f"no NIC is in vnet {vn!r}")
        b = s.get("bind")
        if b is None:
            raise ScenarioError(file, f"{where}.bind", "required, e.g. '*:5001' or '[::]:5001'")
        host, port = _host_port(file, f"{where}.bind", b)
        if host in ("*", "0.0.0.0"):
            fam, laddr = 4, b""
        elif host in ("[::]", "[*]"):
            fam, laddr = 6, b""
        elif host.startswith("["):
            fam, laddr = 6, _addr(file, f"{where}.bind", host[1:-1], True)
        else:
            fam, laddr = 4, _addr(file, f"{where}.bind", host, False)
        if laddr and laddr not in out["vnets"][vn]["inet" if fam == 4 else "inet6"]:
            raise ScenarioError(file, f"{where}.bind",
                                f"{host} is not an address of vnet {vn} (EADDRNOTAVAIL)")
        key = (s.get("proto", "udp"), fam, laddr, int(port))
        if any((x["proto"], x["family"], x["laddr"], x["port"]) == key
               for x in out["vnets"][vn]["sockets"]):
            raise ScenarioError(file, f"{where}.bind", f"{b} is already bound (EADDRINUSE)")
        rc = s.get("reader_cpu")
        if rc is not None:
            if "read_pps" in s:
                raise ScenarioError(file, f"{where}.reader_cpu",
                                    "a socket has a reading thread (reader_cpu) or a read rate (read_pps), not both")
            rc = _cpu_list(file, f"{where}.reader_cpu", [rc], 1, ncpu)[0]
        out["vnets"][vn]["sockets"].append({
            "name": s.get("name", f"{s.get('proto', 'udp')}{i}"), "proto": s.get("proto", "udp"),
            "family": fam, "laddr": laddr, "port": int(port),
            "rcvbuf": s.get("rcvbuf", sysctl["net.inet.tcp.recvspace" if s.get("proto") == "tcp"
                                             else "net.inet.udp.recvspace"]),
            "read_pps": s.get("read_pps"),
            "reader": "reader_cpu" in s, "reader_cpu": rc})
    _apps(file, data, out, ncpu)
    # pcb locking: "pcbref" (the default: the pcbinfo lock for the lookup,
    # then the pcb's own lock, as FreeBSD has done since 7.x/8.x), "global"
    # (2006: the pcbinfo lock across lookup and input), "pcbgroup"
    pc = data.get("pcb", {})
    nb = 1
    while nb < 2 * ncpu and nb < 128:           # rss_bits: buckets >= 2 x CPUs
        nb <<= 1
    out["pcb"] = {"locking": pc.get("locking", "pcbref"), "groups": pc.get("groups", nb)}
    wk = data.get("wakeup", {})
    out["wakeup"] = {"mode": wk.get("mode", "immediate"), "batch": wk.get("batch", 1),
                     "timeout_ns": int(round(wk.get("timeout_us", 0) * 1000))}
    if out["wakeup"]["mode"] == "batched" and "batch" not in wk and "timeout_us" not in wk:
        raise ScenarioError(file, "wakeup.batch", "batched wakeups need a batch size, a timeout_us, or both")
    # traffic
    out["traffic"] = []
    for i, t in enumerate(data.get("traffic", [])):
        where = f"traffic[{i}]"
        _check(file, where, t, TRAFFIC_KEYS)
        nic = t.get("nic", out["nics"][0]["name"])
        if nic not in nic_by_name:
            raise ScenarioError(file, f"{where}.nic", f"no NIC named {nic!r}")
        t = dict(t, nic=nic)
        if "pcap" in t:
            _pcap_traffic(file, where, t, nic_by_name[nic])
            out["traffic"].append(t)
            continue
        if "rate_pps" not in t:
            raise ScenarioError(file, f"{where}.rate_pps", "required")
        if "sizes" in t:
            for j, e in enumerate(t["sizes"]):
                if (not isinstance(e, list) or len(e) != 2 or not isinstance(e[0], int)
                        or not 64 <= e[0] <= 9018 or not isinstance(e[1], NUM)
                        or isinstance(e[1], bool) or not 0 < e[1] < math.inf):
                    raise ScenarioError(file, f"{where}.sizes[{j}]", "must be [frame_size 64..9018, weight > 0]")
        fam = t.get("family", "inet")
        socks = out["vnets"][nic_by_name[nic]["vnet"]]["sockets"]
        ports = t.get("dst_ports") or sorted({s["port"] for s in socks}) or [9]
        for p in ports:
            if not isinstance(p, int) or isinstance(p, bool) or not 1 <= p <= 65535:
                raise ScenarioError(file, f"{where}.dst_ports", f"bad port {p!r}")
        t["dst_ports"] = ports
        if fam in ("inet", "mix") and not nic_by_name[nic]["inet"]:
            raise ScenarioError(file, f"{where}.family", f"{nic} has no IPv4 address")
        if fam in ("inet6", "mix") and not nic_by_name[nic]["inet6"]:
            raise ScenarioError(file, f"{where}.family", f"{nic} has no IPv6 address")
        for k, dflt in (("src_net", "198.18.0.0/15"), ("src_net6", "2001:db8:ffff::/48")):
            t.setdefault(k, dflt)
            try:
                net = ipaddress.ip_network(t[k])
            except ValueError:
                raise ScenarioError(file, f"{where}.{k}", f"not a network: {t[k]!r}") from None
            if net.version != (4 if k == "src_net" else 6):
                raise ScenarioError(file, f"{where}.{k}", f"{t[k]!r} is not an IPv{4 if k == 'src_net' else 6} network")
            if net.num_addresses - 2 < t.get("flows", 1):
                raise ScenarioError(file, f"{where}.{k}",
                                    f"{t[k]} has too few addresses for {t.get('flows', 1)} flows")
        out["traffic"].append(t)
    if out["quantum_ns"] > out["duration_ns"]:
        raise ScenarioError(file, "engine.quantum_ns", "longer than the whole run")
    out["windows"] = math.ceil(out["duration_ns"] / out["quantum_ns"])
    sw = data.get("sweep", {})
    if not isinstance(sw, dict):
        raise ScenarioError(file, "sweep", "must be a table of KEY = [values]")
    for k, v in sw.items():
        if not isinstance(v, list) or not v:
            raise ScenarioError(file, f"sweep.{k}", "must be a non-empty list of values")
    out["sweep"] = sw
    out["raw"] = copy.deepcopy(data)
    return out


def build(scn: dict) -> list:
    """The actors of the emulated host, from a validated scenario."""
    from actors.cpu import Cpu
    from actors.netisr import Netisr
    from actors.nic import Nic
    from actors.traffic import PcapSource, TcpSource, TrafficSource
    from actors.vnet import Vnet

    sc = scn["sysctl"]
    from actors.cache import Topology
    host = {"ghz": scn["ghz"], "costs": scn["costs"], "quantum_ns": scn["quantum_ns"],
            "cpus": scn["cpus"], "packages": scn.get("packages", 1),
            "l2_bytes": scn.get("l2_bytes", 256 << 10), "llc_bytes": scn.get("llc_bytes", 8 << 20),
            "netisr": scn["netisr"], "tap_max": scn.get("tap_max", 0),
            "wakeup": scn.get("wakeup", {}), "lo0_index": len(scn["nics"]) + 1,
            "pcb": scn.get("pcb", {}),
            "loopback": any(v.get("apps") for v in scn["vnets"].values()),
            "reass": {"ip_maxfragpackets": sc["net.inet.ip.maxfragpackets"],
                      "ip_maxfragsperpacket": sc["net.inet.ip.maxfragsperpacket"],
                      "ip_fragttl_ns": sc["net.inet.ip.fragttl"] * 10**9,
                      "ip6_maxfragpackets": sc["net.inet6.ip6.maxfragpackets"],
                      "ip6_maxfragsperpacket": sc["net.inet6.ip6.maxfragsperpacket"]}}
    # "inet4": the IPv4 addresses as integers, for ip_input's check of the
    # destination (read from the header as one, with no bytes made)
    vnets = {name: {"actor": f"vnet.{name}", "inet": v["inet"], "inet6": v["inet6"],
                    "inet4": frozenset(int.from_bytes(a, "big") for a in v["inet"]),
                    "any": v["accept_any_addr"]}
             for name, v in scn["vnets"].items()}
    topo = Topology(host) if scn.get("cache_model", True) else None
    host["topology"] = topo
    pkg = topo.pkg if topo else [0] * scn["cpus"]
    # every actor that runs threads hears each CPU's counters and load
    subs = ([n["name"] for n in scn["nics"]] + list(scn["netisr"]["workstreams"])
            + [f"vnet.{name}" for name in scn["vnets"]])
    actors = [Cpu(i, scn["ghz"], scn["quantum_ns"], subs, pkg[i]) for i in range(scn["cpus"])]
    connected = {}          # vnet -> the connected UDP sockets traffic asks for
    tcp_conns = {}          # vnet -> TCP connections established from the start
    for idx, n in enumerate(scn["nics"]):
        sources = []
        for ti, t in enumerate(scn["traffic"]):
            if t["nic"] != n["name"]:
                continue
            if "pcap" in t:
                sources.append(PcapSource(t, ti, id_base=n["if_index"] << 40))
                continue
            cls = TcpSource if t.get("proto") == "tcp" else TrafficSource
            sources.append(cls(t, ti, scn["seed"], n["mac"],
                               n["inet"][0] if n["inet"] else None,
                               n["inet6"][0] if n["inet6"] else None, t["dst_ports"],
                               id_base=n["if_index"] << 40))
        actors.append(Nic(n, host, sources, vnets))
        for src, t in zip([x for x in sources], [t for t in scn["traffic"] if t["nic"] == n["name"]]):
            if t.get("proto") == "tcp" and not t.get("handshake") and hasattr(src, "flow_iss"):
                # connections established from the scenario: the peer's ISS known
                conns = tcp_conns.setdefault(n["vnet"], [])
                lis = {(x["family"], x["laddr"], x["port"]): x["name"]
                       for x in scn["vnets"][n["vnet"]]["sockets"] if x.get("proto") == "tcp"}
                for f, (fam, _, fsrc, dst, sport, dport) in enumerate(src.flows):
                    fm = 6 if fam == "inet6" else 4
                    conns.append({"family": fm, "faddr": fsrc, "fport": sport, "laddr": dst,
                                  "lport": dport, "irs": src.flow_iss(f),
                                  "listener": lis.get((fm, dst, dport), lis.get((fm, b"", dport)))})
                continue
            if t.get("connected") and hasattr(src, "flows"):
                # one connected UDP socket per flow (connect(2) to the flow's source)
                conns = connected.setdefault(n["vnet"], [])
                for fam, _, fsrc, dst, sport, dport in src.flows:
                    conns.append({"name": f"conn{len(conns)}", "family": 6 if fam == "inet6" else 4,
                                  "faddr": fsrc, "fport": sport, "laddr": dst, "lport": dport,
                                  "rcvbuf": sc["net.inet.udp.recvspace"]})
    for ws, cpu in enumerate(scn["netisr"]["cpus"]):
        actors.append(Netisr(ws, cpu, host, vnets))
    for vi, (name, v) in enumerate(scn["vnets"].items()):
        # packet ids of loopback datagrams: lo0's if_index above the NICs', then the vnet
        actors.append(Vnet(dict(v, connected=connected.get(name, []),
                                tcp_conns=tcp_conns.get(name, [])),
                           dict(host, lo_id_base=(host["lo0_index"] << 40) + (vi << 36))))
    return actors
