"""Fragment reassembly (IPv4 ip_reass, IPv6 frag6_input) and the IPv6
extension-header chain, against fragments and headers built by scapy."""

import random

from hypothesis import given, settings, strategies as st

from scapy.layers.inet import IP, UDP, fragment
from scapy.layers.inet6 import (IPv6, IPv6ExtHdrDestOpt, IPv6ExtHdrFragment, IPv6ExtHdrHopByHop,
                                IPv6ExtHdrRouting, fragment6)
from scapy.layers.l2 import Ether

from actors.inet import cksum_sum, in_cksum
from actors.ip_reass import rebuild_v4, rebuild_v6
from actors.mbuf import Uma

from test_link_input import MAC, replay

DG4 = IP(src="198.51.100.7", dst="10.0.0.1", id=4242) / UDP(sport=1234, dport=5001) / (bytes(range(256)) * 12)
DG6 = (IPv6(src="2001:db8:ffff::7", dst="2001:db8::1") / IPv6ExtHdrFragment(id=77)
       / UDP(sport=1234, dport=5001) / (bytes(range(256)) * 12))


def eth(p):
    return bytes(Ether(dst=MAC) / p)


def frags4(size=800):
    return [eth(f) for f in fragment(DG4, fragsize=size)]


def frags6(size=800):
    return [eth(f) for f in fragment6(DG6, size)]


def check_accounted(m, n):
    t = m["totals"]
    assert t["arrived"] == n and t["in_flight"] == 0 and m["leaked"] == {}
    assert t["arrived"] == t["delivered"] + t["dropped_total"] + t["absorbed_by_reassembly"]


def counters(m):
    """ipstat/ip6stat counters summed over every thread that ran the stack."""
    return m["stats"]


def test_ipv4_reassembly_any_order():
    for order in ("in", "reversed", "shuffled", "duplicated"):
        fr = frags4()
        assert len(fr) == 4
        if order == "reversed":
            fr = fr[::-1]
        elif order == "shuffled":
            random.Random(3).shuffle(fr)
        elif order == "duplicated":      # the older copy is freed, the newer kept
            fr = fr[:2] + fr[1:]
        m, out = replay(fr)
        check_accounted(m, len(fr))
        c = counters(m)
        assert c["ips_reassembled"] == 1 and c["ips_fragments"] == len(fr), order
        assert m["totals"]["delivered_by"].get("socket") == 1, (order, m["totals"]["dropped"])
        assert m["totals"]["absorbed_by_reassembly"] == 3
        assert m["totals"]["dropped"] == ({"ips_fragdropped": 1} if order == "duplicated" else {})


def test_ipv4_overlap_trimmed_and_delivered():
    # fragments [0,800) [400,1600) [1600,end): the second overlaps the first
    raw = bytes(DG4[UDP])
    def f(off, data, mf):
        return eth(IP(src="198.51.100.7", dst="10.0.0.1", id=4242, proto=17, flags="MF" if mf else 0,
                      frag=off // 8) / data)
    fr = [f(0, raw[:800], True), f(400, raw[400:1600], True), f(1600, raw[1600:], False)]
    m, _ = replay(fr)
    check_accounted(m, 3)
    assert counters(m)["ips_reassembled"] == 1
    assert m["totals"]["delivered_by"].get("socket") == 1      # the UDP checksum held


def test_ipv4_missing_fragment_times_out():
    """A datagram missing a fragment waits net.inet.ip.fragttl, then its
    fragments are counted as ips_fragtimeout."""
    m = replay_long(frags4()[:-1])
    check_accounted(m, 3)
    assert m["totals"]["dropped"] == {"ips_fragtimeout": 3}
    assert counters(m)["ips_fragtimeout"] == 3


def replay_long(frames):
    """Frames through a host with a 1 s fragttl, for 1.2 s of virtual time in 1 ms windows."""
    import test_link_input as t
    from cluster.engine import LocalExecutor
    from cluster.run import gather, leaked
    from cluster.scenario import build, validate
    data = {"scenario": {"name": "ttl", "duration_ms": 1200, "seed": 1},
            "engine": {"quantum_ns": 1_000_000}, "host": {"cpus": 2},
            "sysctl": {"net.isr.maxthreads": 2, "net.inet.ip.fragttl": 1},
            "nic": [{"name": "ix0", "queues": 2, "mac": MAC, "inet": ["10.0.0.1/24"]}],
            "socket": [{"name": "u4", "bind": "*:5001"}]}
    scn = validate(data)
    actors = build(scn)
    next(a for a in actors if a.name == "ix0").sources = [t.ListSource(frames)]
    ex = LocalExecutor(actors, scn["quantum_ns"])
    ex.run(scn["windows"])
    summ = ex.summaries()
    for s in summ:
        s.pop("tap", None)
    m = gather(scn, summ, ex.in_flight_packets(), ex.window, ex.messages)
    m["leaked"] = leaked(ex.teardown())
    return m


def test_ipv4_too_many_fragments():
    fr = [eth(f) for f in fragment(DG4, fragsize=96)]
    assert len(fr) > 17
    m, _ = replay(fr)
    t = m["totals"]
    # the 17th fragment drops the queue (16 stored, n+1 accepted); the rest
    # start a new queue that waits for its missing head until it times out
    assert t["dropped"] == {"ips_fragdropped": 17}
    assert t["in_flight"] == len(fr) - 17
    assert t["arrived"] == t["dropped_total"] + t["in_flight"] and m["leaked"] == {}
    assert counters(m).get("ips_reassembled", 0) == 0


def test_ipv4_bad_fragment_length():
    raw = bytes(DG4[UDP])
    bad = eth(IP(src="198.51.100.7", dst="10.0.0.1", id=9, proto=17, flags="MF", frag=0) / raw[:100])
    m, _ = replay([bad])
    assert m["totals"]["dropped"] == {"ips_toosmall": 1}


def test_ipv6_reassembly_and_overlap():
    fr = frags6()
    assert len(fr) >= 3
    m, _ = replay(fr[::-1])
    check_accounted(m, len(fr))
    assert counters(m)["ip6s_reassembled"] == 1
    assert m["totals"]["delivered_by"].get("socket") == 1
    # an exact duplicate is dropped alone; the datagram still completes
    m, _ = replay(fr[:1] + fr[:1] + fr[1:])
    check_accounted(m, len(fr) + 1)
    assert m["totals"]["delivered_by"].get("socket") == 1
    assert m["totals"]["dropped"] == {"ip6s_fragdropped": 1}
    # a non-identical overlap drops the newcomer and the whole queue (RFC 8200)
    bad = bytearray(fr[1])
    bad[-1] ^= 0xFF
    m, _ = replay([fr[0], fr[1], bytes(bad)])
    check_accounted(m, 3)
    assert m["totals"]["dropped"] == {"ip6s_fragdropped": 3}


def test_ipv6_atomic_fragment():
    p = (IPv6(src="2001:db8:ffff::7", dst="2001:db8::1") / IPv6ExtHdrFragment(id=5, m=0, offset=0)
         / UDP(sport=9, dport=5001) / b"atomic")
    m, _ = replay([eth(p)])
    check_accounted(m, 1)
    assert counters(m)["ip6s_atomicfrags"] == 1
    assert m["totals"]["delivered_by"] == {"socket": 1}


def test_ipv6_extension_headers():
    base = IPv6(src="2001:db8:ffff::7", dst="2001:db8::1")
    udp = UDP(sport=9, dport=5001) / b"x"
    cases = [
        (base / IPv6ExtHdrHopByHop() / IPv6ExtHdrDestOpt() / udp, None),
        (base / IPv6ExtHdrDestOpt() / IPv6ExtHdrHopByHop() / udp, "ip6s_badoptions"),
        (base / IPv6ExtHdrRouting(type=0, addresses=["2001:db8::9"], segleft=1) / udp, "ip6s_badoptions"),
        (base / IPv6ExtHdrRouting(type=0, addresses=[], segleft=0) / udp, None),
        (base / (IPv6ExtHdrDestOpt() / IPv6ExtHdrDestOpt()) / IPv6ExtHdrDestOpt() / udp, None),
    ]
    deep = IPv6ExtHdrDestOpt()
    for _ in range(15):
        deep = deep / IPv6ExtHdrDestOpt()
    cases.append((base / deep / udp, "ip6s_toomanyhdr"))
    for pkt, want in cases:
        m, out = replay([eth(pkt)])
        check_accounted(m, 1)
        if want is None:
            assert m["totals"]["delivered_by"] == {"socket": 1}, (pkt.summary(), m["totals"]["dropped"])
        else:
            assert m["totals"]["dropped"] == {want: 1}, (pkt.summary(), m["totals"]["dropped"])


def test_ipv4_options():
    from scapy.layers.inet import IPOption_LSRR, IPOption_NOP, IPOption_RR
    u = UDP(sport=9, dport=5001) / b"o"
    ok = IP(src="198.51.100.7", dst="10.0.0.1", options=[IPOption_NOP(), IPOption_RR()]) / u
    lsrr = IP(src="198.51.100.7", dst="10.0.0.1", options=[IPOption_LSRR(routers=["10.9.9.9"])]) / u
    bad = bytearray(bytes(ok))
    bad[21] = 0x07          # RR
    bad[22] = 0x40          # length past the header
    bad[10:12] = b"\0\0"
    from actors.inet import in_cksum
    bad[10:12] = in_cksum(bytes(bad[:(bad[0] & 15) * 4])).to_bytes(2, "big")
    m, _ = replay([eth(ok), eth(lsrr), eth(IP(bytes(bad)))])
    check_accounted(m, 3)
    assert m["totals"]["delivered_by"] == {"socket": 1}
    assert m["totals"]["dropped"] == {"ips_cantforward": 1, "ips_badoptions": 1}


@settings(max_examples=300, deadline=None)
@given(st.binary(min_size=14, max_size=22), st.integers(0, 10), st.binary(min_size=20, max_size=20),
       st.one_of(st.binary(max_size=64),
                 st.integers(0, 65_000).map(lambda n: bytes(i * 7 & 0xFF for i in range(n)))))
def test_rebuilt_datagram_headers(l2, opt_words, iph, payload):
    """The datagram ip_reass / frag6_input rebuild, against the fields set
    one by one and the header checksum computed by in_cksum (RFC 1071)."""
    hl = 20 + 4 * opt_words
    hdr = bytes([0x40 | hl >> 2]) + iph[1:] + bytes(range(hl - 20))
    uma = Uma()
    m = rebuild_v4(l2 + hdr + b"trailing", len(l2), hl, payload, uma)
    d = m.st.data
    want = bytearray(hdr)
    want[2:4] = (hl + len(payload)).to_bytes(2, "big")
    want[6:8] = want[10:12] = b"\0\0"
    want[10:12] = in_cksum(bytes(want)).to_bytes(2, "big")
    assert d == l2 + bytes(want) + payload
    assert (m.off, m.len) == (len(l2), hl + len(payload))
    assert cksum_sum(d[m.off:m.off + hl]) == 0xFFFF         # the header verifies
    unfrag = 40 + 8 * opt_words
    head6 = bytes([0x60]) + iph[1:] + bytes(range(unfrag - 20))
    m6 = rebuild_v6(l2 + head6 + b"fraghdr!", len(l2), unfrag, payload, uma)
    want6 = bytearray(head6)
    want6[4:6] = (unfrag - 40 + len(payload)).to_bytes(2, "big")
    assert m6.st.data == l2 + bytes(want6) + payload
    assert (m6.off, m6.len) == (len(l2), unfrag + len(payload))


def test_rebuilt_header_whose_sum_is_zero():
    """A header whose words sum to 0 mod 0xffff: in_cksum writes 0 there,
    not 0xffff (both verify; FreeBSD's in_cksum gives 0)."""
    payload = bytes(100)
    hdr = bytearray(bytes.fromhex("4500") + bytes(2) + bytes.fromhex("1234 2000 4011 0000 c6336407 0a000001"))
    hdr[2:4] = (20 + len(payload)).to_bytes(2, "big")
    hdr[6:8] = b"\0\0"
    s = sum(int.from_bytes(hdr[i:i + 2], "big") for i in range(0, 20, 2)) % 0xFFFF
    ident = (0x1234 - s) % 0xFFFF          # the id word that brings the sum to 0
    hdr[4:6] = ident.to_bytes(2, "big")
    hdr[2:4] = b"\0\0"                     # the rebuild sets the length and offset again
    hdr[6:8] = b"\x20\x00"
    m = rebuild_v4(bytes(14) + bytes(hdr), 14, 20, payload, Uma())
    assert m.st.data[14 + 10:14 + 12] == b"\0\0"
    assert in_cksum(bytes(m.st.data[14:34])) == 0
