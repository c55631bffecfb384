"""The link layer and IP input against frames built by an independent
library (scapy), and a hypothesis fuzz of random and mutated frames: nothing
raises, every frame is accounted for."""

import shutil
import subprocess

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from scapy.layers.inet import ICMP, IP, TCP, UDP
from scapy.layers.inet6 import (ICMPv6EchoRequest, IPv6, IPv6ExtHdrDestOpt, IPv6ExtHdrFragment,
                                IPv6ExtHdrHopByHop)
from scapy.layers.l2 import ARP, LLC, SNAP, STP, Dot1AD, Dot1Q, Dot3, Ether

from cluster.scenario import validate

MAC = "00:1b:21:0a:0b:0c"
OTHER = "00:11:22:33:44:55"


def host(frames, promisc=False, rxfilter="mac"):
    data = {
        "scenario": {"name": "link", "duration_ms": 2, "seed": 1},
        "engine": {"quantum_ns": 20000},
        "host": {"cpus": 2},
        "sysctl": {"net.isr.maxthreads": 2},
        "nic": [{"name": "ix0", "queues": 2, "mac": MAC, "promisc": promisc, "rxfilter": rxfilter,
                 "inet": ["10.0.0.1/24", "192.168.7.1/24"], "inet6": ["2001:db8::1/64"]}],
        "ifconfig": ["vlan100 create vlan 100 vlandev ix0", "vlan100 inet 10.100.0.1/24",
                     "vlan200 create vlan 200 vlandev ix0 vlanproto 802.1ad",
                     "vlan201 create vlan 201 vlandev vlan200", "vlan201 inet6 2001:db8:201::1/64"],
        "socket": [{"name": "u4", "bind": "*:5001"}, {"name": "u6", "bind": "[::]:5001"}],
    }
    scn = validate(data)
    return scn, frames


class ListSource:
    """Frames handed to the NIC one microsecond apart."""

    def __init__(self, frames):
        self.items = [(1000 + i * 1000, bytes(f), i) for i, f in enumerate(frames)]

    def frames(self, start, end):
        return [x for x in self.items if start <= x[0] < end]


def replay(frames, **kw):
    from cluster.engine import LocalExecutor
    from cluster.run import gather, leaked
    from cluster.scenario import build
    scn, frames = host(frames, **kw)
    scn["duration_ns"] = max(2_000_000, len(frames) * 1000 + 1_000_000)
    scn["windows"] = scn["duration_ns"] // scn["quantum_ns"]
    actors = build(scn)
    nic = next(a for a in actors if a.name == "ix0")
    nic.sources = [ListSource(frames)]
    ex = LocalExecutor(actors, scn["quantum_ns"])
    ex.run(scn["windows"])
    summ = ex.summaries()
    taps = [s.pop("tap") for s in summ if "tap" in s]
    m = gather(scn, summ, ex.in_flight_packets(), ex.window, ex.messages)
    m["leaked"] = leaked(ex.teardown())
    outcome = {}
    for fs, _ in taps:
        for arrival, pid, rcvif, dropped, what, data in fs:
            outcome[pid] = (dropped, what, rcvif)
    return m, outcome


U4 = IP(src="198.51.100.7", dst="10.0.0.1") / UDP(sport=1234, dport=5001) / (b"x" * 20)
U6 = IPv6(src="2001:db8:ffff::7", dst="2001:db8::1") / UDP(sport=1234, dport=5001) / (b"y" * 20)

CASES = [
    # (frame, expected: ("delivered", consumer) or ("dropped", reason), rcvif)
    (Ether(dst=MAC) / U4, ("delivered", "socket u4"), "ix0"),
    (Ether(dst=MAC) / U6, ("delivered", "socket u6"), "ix0"),
    (Ether(dst="ff:ff:ff:ff:ff:ff") / ARP(pdst="10.0.0.1"), ("delivered", "arp input"), "ix0"),
    (Ether(dst=MAC) / IP(dst="10.0.0.1") / ICMP(), ("delivered", "icmp input"), "ix0"),
    (Ether(dst=MAC) / IPv6(dst="2001:db8::1") / ICMPv6EchoRequest(), ("delivered", "icmp6 input"), "ix0"),
    (Ether(dst=MAC) / Dot1Q(vlan=100) / IP(src="198.51.100.7", dst="10.100.0.1") / UDP(dport=5001) / b"v",
     ("delivered", "socket u4"), "vlan100"),
    (Ether(dst=MAC) / Dot1Q(vlan=0) / U4, ("delivered", "socket u4"), "ix0"),        # priority tag
    (Ether(dst=MAC) / Dot1AD(vlan=200) / Dot1Q(vlan=201)
     / IPv6(src="2001:db8:ffff::9", dst="2001:db8:201::1") / UDP(dport=5001) / b"q",
     ("delivered", "socket u6"), "vlan201"),                                           # QinQ
    (Ether(dst=MAC) / Dot1Q(vlan=999) / U4, ("dropped", "if_noproto"), "ix0"),
    # a tag inside vlan100's, which has no VLAN interfaces of its own
    (Ether(dst=MAC) / Dot1Q(vlan=100) / Dot1Q(vlan=201) / U4, ("dropped", "if_noproto"), "vlan100"),
    (Dot3(dst=MAC) / LLC(dsap=0xAA, ssap=0xAA, ctrl=3) / SNAP(OUI=0, code=0x0800) / U4,
     ("delivered", "socket u4"), "ix0"),
    (Dot3(dst="01:80:c2:00:00:00") / LLC(dsap=0x42, ssap=0x42, ctrl=3) / STP(), ("dropped", "llc_unsupported"), "ix0"),
    (Ether(dst=OTHER) / U4, ("dropped", "ether_otherhost"), "ix0"),
    (Ether(dst=MAC[:-1] + ("d" if MAC[-1] != "d" else "e")) / U4, ("dropped", "ether_otherhost"), "ix0"),
    (Ether(dst="fe:ff:ff:ff:ff:ff") / U4, ("dropped", "ether_otherhost"), "ix0"),   # unicast, not broadcast
    (Ether(dst=MAC, type=0x88B5) / b"local experimental ethertype", ("dropped", "ether_unknown_type"), "ix0"),
    (Ether(dst=MAC) / IP(src="198.51.100.7", dst="10.0.0.1", chksum=0x1234) / UDP(dport=5001),
     ("dropped", "ips_badsum"), "ix0"),
    (Ether(dst=MAC) / IP(src="198.51.100.7", dst="10.0.0.1") / UDP(dport=5001, chksum=0x1234) / b"z",
     ("dropped", "udps_badsum"), "ix0"),
    (Ether(dst=MAC) / IP(src="198.51.100.7", dst="10.0.0.1") / UDP(dport=7777) / b"z",
     ("dropped", "udps_noport"), "ix0"),
    (Ether(dst=MAC) / IP(src="198.51.100.7", dst="10.9.9.9") / UDP(dport=5001),
     ("dropped", "ips_cantforward"), "ix0"),
    (Ether(dst=MAC) / IP(src="198.51.100.7", dst="10.0.0.2") / UDP(dport=5001),
     ("dropped", "ips_cantforward"), "ix0"),                          # our address but its last octet
    (Ether(dst="ff:ff:ff:ff:ff:ff") / IP(src="198.51.100.7", dst="255.255.255.255") / UDP(dport=5001) / b"b",
     ("delivered", "socket u4"), "ix0"),                              # the limited broadcast
    (Ether(dst=MAC) / IP(src="198.51.100.7", dst="200.0.0.1") / UDP(dport=5001),
     ("dropped", "ips_cantforward"), "ix0"),                          # a high first octet, not ours
    (Ether(dst=MAC) / IP(src="198.51.100.7", dst="192.168.7.1") / UDP(dport=5001) / b"h",
     ("delivered", "socket u4"), "ix0"),                              # and one of ours
    (Ether(dst=MAC) / IP(src="127.0.0.1", dst="10.0.0.1") / UDP(dport=5001), ("dropped", "ips_badaddr"), "ix0"),
    (Ether(dst=MAC) / IPv6(src="2001:db8:ffff::7", dst="2001:db8::1") / UDP(dport=5001, chksum=0),
     ("dropped", "udps_nosum"), "ix0"),
    (Ether(dst=MAC) / IPv6(src="ff02::1", dst="2001:db8::1") / UDP(dport=5001), ("dropped", "ip6s_badscope"), "ix0"),
    # ip6_input's other address checks: the unspecified destination,
    # v4-mapped source or destination, ::1 from a wire
    (Ether(dst=MAC) / IPv6(src="2001:db8:ffff::7", dst="::") / UDP(dport=5001), ("dropped", "ip6s_badscope"), "ix0"),
    (Ether(dst=MAC) / IPv6(src="::ffff:198.51.100.7", dst="2001:db8::1") / UDP(dport=5001),
     ("dropped", "ip6s_badscope"), "ix0"),
    (Ether(dst=MAC) / IPv6(src="2001:db8:ffff::7", dst="::ffff:10.0.0.1") / UDP(dport=5001),
     ("dropped", "ip6s_badscope"), "ix0"),
    (Ether(dst=MAC) / IPv6(src="::1", dst="2001:db8::1") / UDP(dport=5001), ("dropped", "ip6s_badscope"), "ix0"),
    (Ether(dst=MAC) / IPv6(src="2001:db8:ffff::7", dst="::1") / UDP(dport=5001), ("dropped", "ip6s_badscope"), "ix0"),
    # near misses that are none of those: past the scope checks to the
    # address check (not ours), or delivered
    (Ether(dst=MAC) / IPv6(src="2001:db8:ffff::7", dst="::fffe:10.0.0.1") / UDP(dport=5001),
     ("dropped", "ip6s_cantforward"), "ix0"),
    (Ether(dst=MAC) / IPv6(src="2001:db8:ffff::7", dst="::2") / UDP(dport=5001), ("dropped", "ip6s_cantforward"), "ix0"),
    (Ether(dst=MAC) / IPv6(src="1::ffff:198.51.100.7", dst="2001:db8::1") / UDP(dport=5001) / b"m",
     ("delivered", "socket u6"), "ix0"),
    (Ether(dst=MAC) / IPv6(src="::1:0:0:0:1", dst="2001:db8::1") / UDP(dport=5001) / b"l",
     ("delivered", "socket u6"), "ix0"),
    (Ether(dst=MAC) / IP(src="198.51.100.7", dst="10.0.0.1") / TCP(dport=80), ("dropped", "tcps_noport"), "ix0"),
    (Ether(dst=MAC) / IP(src="198.51.100.7", dst="10.0.0.1") / TCP(dport=80, chksum=0x1234),
     ("dropped", "tcps_rcvbadsum"), "ix0"),
    (Ether(dst=MAC) / IPv6(src="2001:db8:ffff::7", dst="2001:db8::1") / TCP(dport=80, dataofs=15),
     ("dropped", "tcps_rcvbadoff"), "ix0"),
]


def test_demux_matches_scapy_frames():
    frames = [bytes(f) for f, _, _ in CASES]
    m, outcome = replay(frames)
    assert m["totals"]["arrived"] == len(CASES)
    assert m["totals"]["in_flight"] == 0 and m["leaked"] == {}
    for i, (f, (kind, what), rcvif) in enumerate(CASES):
        dropped, got, got_if = outcome[i]
        assert dropped == (kind == "dropped"), (i, f.summary(), got)
        assert got.startswith(f"delivered to {what}" if kind == "delivered" else what), (i, f.summary(), got)
        assert got_if == rcvif, (i, f.summary(), got_if)


def test_promiscuous_and_any_filters():
    frames = [bytes(Ether(dst=OTHER) / U4)]
    m, out = replay(frames, promisc=True)
    assert out[0][1] == "ether_promisc"
    m, out = replay(frames, rxfilter="any")
    assert out[0][1] == "delivered to socket u4"


@pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark not installed")
def test_tshark_reads_our_captures(tmp_path):
    """delivered.pcapng and dropped.pcapng open in tshark with the same counts,
    and tshark shows each drop reason as the packet comment."""
    from cluster.engine import LocalExecutor
    from cluster.run import Result, write_captures
    from cluster.scenario import build
    scn, frames = host([bytes(f) for f, _, _ in CASES])
    actors = build(scn)
    next(a for a in actors if a.name == "ix0").sources = [ListSource(frames)]
    ex = LocalExecutor(actors, scn["quantum_ns"])
    ex.run(scn["windows"])
    res = Result({}, {})
    res.taps = [s["tap"] for s in ex.summaries() if "tap" in s]
    res.linktype = 1
    write_captures(res, tmp_path)
    comments = {}
    for name in ("delivered.pcapng", "dropped.pcapng"):
        p = subprocess.run(["tshark", "-r", str(tmp_path / name), "-T", "fields", "-e", "frame.comment"],
                           capture_output=True, text=True, timeout=60)
        assert p.returncode == 0, p.stderr
        comments[name] = p.stdout.splitlines()
    want_drop = sum(1 for _, (k, _), _ in CASES if k == "dropped")
    assert len(comments["dropped.pcapng"]) == want_drop
    assert len(comments["delivered.pcapng"]) == len(CASES) - want_drop
    assert any(c.startswith("if_noproto") for c in comments["dropped.pcapng"])
    assert any(c.startswith("delivered to socket u6 (rcvif vlan201)") for c in comments["delivered.pcapng"])


# -- fuzz ---------------------------------------------------------------------

def _chain(n):
    """IPv6 with n destination-options headers before UDP (a long chain)."""
    p = IPv6ExtHdrHopByHop()
    for _ in range(n):
        p = p / IPv6ExtHdrDestOpt()
    return bytes(Ether(dst=MAC) / IPv6(src="2001:db8:ffff::7", dst="2001:db8::1") / p / UDP(dport=5001))


SEEDS = [bytes(f) for f, _, _ in CASES] + [
    bytes(Ether(dst=MAC) / IPv6(dst="2001:db8::1") / IPv6ExtHdrHopByHop() / IPv6ExtHdrDestOpt() / UDP()),
    bytes(Ether(dst=MAC) / Dot1Q(vlan=100) / Dot1Q(vlan=100) / Dot1Q(vlan=5) / U4),
    _chain(13), _chain(14), _chain(30),
    bytes(Ether(dst=MAC) / IP(src="198.51.100.7", dst="10.0.0.1", flags="MF", id=7) / UDP(dport=5001) / (b"f" * 64)),
    bytes(Ether(dst=MAC) / IP(src="198.51.100.7", dst="10.0.0.1", frag=8, id=7, proto=17) / (b"g" * 64)),
    bytes(Ether(dst=MAC) / IPv6(src="2001:db8:ffff::7", dst="2001:db8::1") / IPv6ExtHdrFragment(id=3, m=1)
          / UDP(dport=5001) / (b"h" * 64)),
    bytes(Ether(dst=MAC) / IP(src="198.51.100.7", dst="10.0.0.1") / TCP(dport=80)),
]


@st.composite
def mutated(draw):
    f = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(0, 6))):
        if not f:
            break
        i = draw(st.integers(0, len(f) - 1))
        f[i] ^= 1 << draw(st.integers(0, 7))
    if draw(st.booleans()):
        f = f[:draw(st.integers(0, len(f)))]
    if draw(st.booleans()):       # extra tags, pushed in front of the type field
        tag = bytes([0x81, 0x00, 0, draw(st.integers(0, 255))])
        f = f[:12] + tag * draw(st.integers(1, 6)) + f[12:]
    return bytes(f)


@settings(max_examples=60, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(st.lists(st.one_of(mutated(), st.binary(max_size=200)), min_size=1, max_size=40))
def test_random_and_mutated_frames_are_accounted(frames):
    m, outcome = replay(frames)
    t = m["totals"]
    assert t["arrived"] == len(frames)
    # fragments whose datagram never completes wait in a reassembly queue
    queued = sum(a["reassembly_queues"] for a in list(m["netisr"].values()) + list(m["nics"].values()))
    assert t["in_flight"] == 0 or queued
    assert t["arrived"] == (t["delivered"] + t["dropped_total"] + t["absorbed_by_reassembly"]
                            + t["in_flight"])
    assert len(outcome) + t["in_flight"] == len(frames)
    assert m["leaked"] == {}


# -- the NIC's checksum residue (actors/inet.word_sum) --------------------------

@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=1600), st.integers(-4, 1700), st.integers(-4, 1700),
       st.sampled_from([bytes, bytearray]))
def test_word_sum_is_the_ones_complement_residue(data, start, end, kind):
    """word_sum (a C loop when compiled, int.from_bytes from source) equals
    the 16-bit word sum of data[start:end] (clamped to the buffer, an odd
    last byte padded with zero) modulo 0xffff, computed word by word."""
    from actors.inet import word_sum
    a, b = max(0, start), min(len(data), end)
    seg = data[a:b] if a < b else b""
    if len(seg) & 1:
        seg += b"\0"
    ref = sum((seg[i] << 8) | seg[i + 1] for i in range(0, len(seg), 2)) % 0xFFFF
    assert word_sum(kind(data), start, end) == ref


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200), st.integers(-3, 220), st.integers(-3, 220))
def test_bslice_is_a_python_slice(data, start, end):
    """bslice (a copy out of the bytes in place when compiled) is
    data[start:end] for every start >= 0 and end >= 0, empty for a negative
    end (which Python would count from the tail: a length gone negative
    must not read the frame's tail), and refuses a negative start (where a
    C copy would read before the buffer)."""
    from actors.inet import bslice
    if start < 0:
        with pytest.raises(ValueError):
            bslice(data, start, end)
        return
    got = bslice(data, start, end)
    assert got == (data[start:end] if end >= 0 else b"")
    assert type(got) is bytes


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200))
def test_frozen_is_bytes_of_the_bytearray(data):
    """frozen (a copy straight out of the bytearray when compiled) is
    bytes(buf), and a copy: writing the bytearray afterwards leaves it be."""
    from actors.inet import frozen
    buf = bytearray(data)
    got = frozen(buf)
    assert got == data and type(got) is bytes
    if buf:
        buf[0] ^= 0xFF
        assert got == data


def test_flow_key_is_the_same_with_and_without_options():
    """The vnet keys a flow by its addresses and ports (for the order check,
    and flows_seen); IPv4 options and IPv6 extension headers between the
    addresses and the ports must not make a flow two."""
    from scapy.layers.inet import IPOption_NOP, IPOption_RR
    src, dst = "198.51.100.7", "10.0.0.1"
    s6, d6 = "2001:db8:ffff::7", "2001:db8::1"
    frames = []
    for i in range(3):
        frames.append(Ether(dst=MAC) / IP(src=src, dst=dst) / UDP(sport=1234, dport=5001) / b"a")
        frames.append(Ether(dst=MAC) / IP(src=src, dst=dst, options=[IPOption_NOP(), IPOption_RR()])
                      / UDP(sport=1234, dport=5001) / b"b")
        frames.append(Ether(dst=MAC) / IPv6(src=s6, dst=d6) / UDP(sport=1234, dport=5001) / b"c")
        frames.append(Ether(dst=MAC) / IPv6(src=s6, dst=d6) / IPv6ExtHdrDestOpt()
                      / UDP(sport=1234, dport=5001) / b"d")
    frames.append(Ether(dst=MAC) / IP(src=src, dst=dst) / UDP(sport=1235, dport=5001) / b"e")
    m, outcome = replay(frames)
    assert all(o[0] is False for o in outcome.values()), outcome
    v = m["vnets"]["vnet.vnet0"]
    assert v["delivered"] == len(frames)
    assert v["flows_seen"] == 3         # one IPv4 flow, one IPv6 flow, the other port
    assert v["reordered"] == 0


@settings(max_examples=500, deadline=None)
@given(st.one_of(st.binary(max_size=80), st.integers(0, 80).map(bytes)), st.integers(0, 90),
       st.integers(0, 90), st.one_of(st.just(0), st.integers(0, 2**256), st.integers(0, 0xFFFF)))
def test_cksum_ok_is_cksum_sum_without_the_slice(d, a, b, initial):
    """The in-place checksum test the input paths use says what RFC 1071's
    sum over the slice says, zero buffers and ranges past the end included."""
    from actors.inet import cksum_ok, cksum_sum
    if b < a:
        a, b = b, a
    assert cksum_ok(d, a, b, initial) == (cksum_sum(d[a:b], initial) == 0xFFFF)
    # and a buffer made to verify: a word that brings the sum to 0 mod 0xffff
    pad = d + b"\0" * (len(d) & 1)
    fix = -(int.from_bytes(pad, "big") + initial) % 0xFFFF
    buf = pad + fix.to_bytes(2, "big")
    assert cksum_ok(buf, 0, len(buf), initial) == (initial != 0 or any(buf))
    assert cksum_sum(buf, initial) == (0xFFFF if initial != 0 or any(buf) else 0)
