"""Synthetic traffic (actors/traffic.py) and the NIC's view of it (Nic.hw_rx).

Frames are checked with an independent parser, scapy: they must parse as
Ethernet/IP/UDP, carry the checksums scapy computes, the requested length,
the configured destination and the packet id in the first payload bytes.
(scapy.layers.* are the same classes `scapy.all` exports, loaded faster.)
"""

from __future__ import annotations

import ipaddress
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scapy.layers.inet import IP, UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import Ether
from scapy.packet import Padding, Raw

from actors.mbuf import (CSUM_DATA_VALID, CSUM_IP_CHECKED, CSUM_IP_VALID, CSUM_PSEUDO_HDR,
                         M_HASHTYPE_NONE, M_HASHTYPE_RSS_IPV4, M_HASHTYPE_RSS_IPV6)
from actors.nic import Nic
from actors.toeplitz import rss_hash_ip4_2tuple, rss_hash_ip6_2tuple
from actors.traffic import TrafficSource
from cluster.scenario import build, load

QUICKSTART = Path(__file__).resolve().parent.parent / "scenarios" / "quickstart.toml"

DST_MAC = "00:1b:21:0a:0b:0c"
DST4 = "10.0.0.1"
DST6 = "2001:db8::1"
PORTS = [5001, 5002, 7]
HDR = {"inet": 14 + 20 + 8 + 8, "inet6": 14 + 40 + 8 + 8}   # eth + ip + udp + packet id
IPL = {"inet": IP, "inet6": IPv6}


def source(family="inet", index=0, seed=1, **spec):
    spec = {"rate_pps": 1e6, "family": family, "flows": 5, **spec}
    return TrafficSource(spec, index, seed, bytes.fromhex(DST_MAC.replace(":", "")),
                         ipaddress.ip_address(DST4).packed, ipaddress.ip_address(DST6).packed, PORTS)


def ip_cksum_ok(p) -> bool:
    q = p.copy()
    del q[IP].chksum
    return Ether(bytes(q))[IP].chksum == p[IP].chksum


def udp_cksum_ok(p) -> bool:
    q = p.copy()
    del q[UDP].chksum
    return Ether(bytes(q))[UDP].chksum == p[UDP].chksum


# -- frames --------------------------------------------------------------------------

IDS = [0, 1, 0xFFFF, 0x0123_4567_89AB_CDEF, (3 << 40) + 12345, 2**64 - 1]


@pytest.mark.parametrize("family", ["inet", "inet6"])
@pytest.mark.parametrize("size", [64, 576, 1500, 9000])
def test_frame_parses_and_checksums_verify(family, size):
    src = source(family, size=size)
    for f in range(5):
        for pid in IDS:
            raw = src.frame(f, size, pid, 0)
            assert len(raw) == max(size - 4, HDR[family])
            p = Ether(raw)
            ip = p[IPL[family]]
            assert p.dst == DST_MAC and p.type == (0x0800 if family == "inet" else 0x86DD)
            assert ip.dst == (DST4 if family == "inet" else DST6)
            net = "198.18.0.0/15" if family == "inet" else "2001:db8:ffff::/48"
            assert ipaddress.ip_address(ip.src) in ipaddress.ip_network(net)
            u = p[UDP]
            assert u.dport == PORTS[f % len(PORTS)]
            assert u.len == len(raw) - (34 if family == "inet" else 54)
            if family == "inet":
                assert (ip.ihl, ip.proto, ip.len, ip.frag, ip.flags) == (5, 17, len(raw) - 14, 0, 0)
                assert ip_cksum_ok(p)
            else:
                assert (ip.nh, ip.plen) == (17, len(raw) - 54)
            assert udp_cksum_ok(p)
            assert p.haslayer(Raw) and not p.haslayer(Padding)
            payload = bytes(u.payload)
            assert payload[:8] == pid.to_bytes(8, "big")
            # and the whole frame is what scapy itself builds for those fields
            ipl = (IP(src=ip.src, dst=ip.dst, ttl=64, id=0) if family == "inet"
                   else IPv6(src=ip.src, dst=ip.dst, hlim=64))
            ref = (Ether(dst=DST_MAC, src=p.src) / ipl / UDP(sport=u.sport, dport=u.dport)
                   / Raw(payload))
            assert bytes(ref) == raw


@pytest.mark.parametrize("family", ["inet", "inet6"])
def test_udp_checksum_that_sums_to_zero_is_sent_as_ffff(family):
    """RFC 768: a computed checksum of 0 goes on the wire as 0xffff."""
    src = source(family)
    off = 34 + 6 if family == "inet" else 54 + 6
    hits = [pid for pid in range(0x10000) if src.frame(0, 64, pid, 0)[off:off + 2] == b"\xff\xff"]
    assert hits, "no packet id produced checksum 0xffff"
    assert all(src.frame(0, 64, pid, 0)[off:off + 2] != b"\0\0" for pid in range(0, 0x10000, 97))
    for pid in hits[:3]:
        p = Ether(src.frame(0, 64, pid, 0))
        assert p[UDP].chksum == 0xFFFF and udp_cksum_ok(p)


def test_frame_size_mix_follows_weights():
    src = source("inet", sizes=[[64, 7], [576, 4], [1500, 1]])
    T, F, S, C = src.arrivals(0, 30_000_000)
    n = len(S)
    for size, w in ((64, 7), (576, 4), (1500, 1)):
        assert abs(S.count(size) / n - w / 12) < 0.01


def test_bad_ip_checksum_ratio_1():
    src = source("inet", bad_ip_cksum_ratio=1)
    T, F, S, C = src.arrivals(0, 100_000)
    assert len(C) == 100 and set(C) == {1}
    for f, s, c, pid in zip(F, S, C, range(len(C))):
        p = Ether(src.frame(f, s, pid, c))
        assert not ip_cksum_ok(p)
        assert udp_cksum_ok(p)


@pytest.mark.parametrize("family", ["inet", "inet6"])
def test_bad_udp_checksum_ratio_1(family):
    src = source(family, bad_udp_cksum_ratio=1)
    T, F, S, C = src.arrivals(0, 100_000)
    assert len(C) == 100 and set(C) == {2}
    for f, s, c, pid in zip(F, S, C, range(len(C))):
        p = Ether(src.frame(f, s, pid, c))
        assert not udp_cksum_ok(p)
        if family == "inet":
            assert ip_cksum_ok(p)


def test_bad_checksum_ratios_are_fractions():
    src = source("inet", bad_ip_cksum_ratio=0.1, bad_udp_cksum_ratio=0.25)
    C = src.arrivals(0, 40_000_000)[3]
    n = len(C)
    assert abs(C.count(1) / n - 0.1) < 0.01
    assert abs(C.count(2) / n - 0.25) < 0.01
    assert C.count(0) + C.count(1) + C.count(2) == n


# -- arrivals -----------------------------------------------------------------------------


@pytest.mark.parametrize("rate,dur_ns", [(1e6, 10_000_000), (3e5, 10_000_000), (250_000, 20_000_000),
                                         (7e5, 10_000_000), (1e5, 100_000_000), (12_345, 1_000_000_000)])
def test_constant_rate_exact_and_evenly_spaced(rate, dur_ns):
    src = source(rate_pps=rate)
    T = src.arrivals(0, dur_ns)[0]
    assert len(T) == round(rate * dur_ns / 1e9)
    gap = 1e9 / rate
    d = np.diff(T)
    assert T[0] == 0 and d.min() >= int(gap) and d.max() <= int(gap) + 1
    assert all(0 <= k * gap - t < 1 for k, t in enumerate(T))   # k/rate, truncated to ns
    assert src.arrivals(dur_ns, dur_ns + int(gap))[0][0] >= dur_ns - 1


def test_constant_rate_start_stop():
    src = source(rate_pps=1e6, start_ms=0.5, stop_ms=1.5)
    T = src.arrivals(0, 3_000_000)[0]
    assert T == list(range(500_000, 1_500_000, 1000))


def test_poisson_interarrivals():
    src = source(rate_pps=1e6, arrivals="poisson")
    T = np.array(src.arrivals(0, 60_000_000)[0][:50_001], dtype=np.float64)
    assert len(T) == 50_001
    gaps = np.diff(T)
    assert abs(gaps.mean() - 1000) < 30                    # within 3% of 1/rate
    cv = gaps.std() / gaps.mean()
    assert 0.97 < cv < 1.03                                # exponential: CV = 1
    assert np.all(gaps >= 0)


def _cut(src, edges):
    """The arrivals over windows cut at `edges`; each window's lie in it."""
    out = ([], [], [], [])
    for a, b in zip(edges, edges[1:]):
        parts = src.arrivals(a, b)
        assert all(a <= t < b for t in parts[0])
        for acc, part in zip(out, parts):
            acc += part
    return out


@pytest.mark.parametrize("arrivals", ["constant", "poisson"])
def test_arrivals_independent_of_window_cuts(arrivals):
    spec = dict(rate_pps=2e6, arrivals=arrivals, flows=100, popularity="zipf",
                sizes=[[64, 1], [1500, 1]], bad_ip_cksum_ratio=0.1, bad_udp_cksum_ratio=0.1)
    end = 5_000_000                                        # 10k arrivals: crosses several blocks
    fine = _cut(source(**spec), list(range(0, end + 1, 1_000)))
    coarse = _cut(source(**spec), list(range(0, end + 1, 100_000)))
    rng = np.random.default_rng(0)
    ragged = _cut(source(**spec), [0] + sorted(rng.integers(1, end, 300).tolist()) + [end])
    whole = _cut(source(**spec), [0, end])
    assert len(fine[0]) > 8000
    assert fine == coarse == ragged == whole
    assert source(**spec, seed=2).arrivals(0, end) != whole     # the seed matters


def test_zipf_makes_flow_0_most_popular():
    src = source(rate_pps=1e6, flows=50, popularity="zipf", zipf_s=1.0)
    counts = np.bincount(src.arrivals(0, 50_000_000)[1], minlength=50)
    assert counts.sum() == 50_000
    assert counts.argmax() == 0
    assert counts[0] > counts[1] > counts[4] > counts[20]
    assert 1.8 < counts[0] / counts[1] < 2.2              # 1/k^s with s = 1


def test_uniform_spreads_evenly():
    n_flows = 50
    src = source(rate_pps=1e6, flows=n_flows, popularity="uniform")
    counts = np.bincount(src.arrivals(0, 50_000_000)[1], minlength=n_flows)
    assert counts.sum() == 50_000 and len(counts) == n_flows
    exp = 50_000 / n_flows
    chi2 = ((counts - exp) ** 2 / exp).sum()
    assert chi2 < 100                                      # 49 dof: mean 49, sd ~10
    assert counts.min() > 0.8 * exp and counts.max() < 1.2 * exp


# -- RSS and checksum offload on the NIC --------------------------------------------------


@pytest.fixture(scope="module")
def nic():
    actors = build(load(QUICKSTART))
    nics = [a for a in actors if isinstance(a, Nic)]
    assert len(nics) == 1
    return nics[0]


GOOD4 = CSUM_IP_CHECKED | CSUM_IP_VALID | CSUM_DATA_VALID | CSUM_PSEUDO_HDR
GOOD6 = CSUM_DATA_VALID | CSUM_PSEUDO_HDR


def _addrs(p):
    ip = p[IP] if IP in p else p[IPv6]
    return ipaddress.ip_address(ip.src).packed, ipaddress.ip_address(ip.dst).packed


def test_hw_rx_hash_and_flags(nic):
    src = nic.sources[0]
    seen = set()
    for f in range(0, len(src.flows), 7):
        for size in (64, 1500):
            raw = src.frame(f, size, (1 << 40) + f, 0)
            p = Ether(raw)
            s, d = _addrs(p)
            h, htype, csum = nic.hw_rx(raw)
            if IP in p:
                seen.add(4)
                assert (h, htype, csum) == (rss_hash_ip4_2tuple(s, d), M_HASHTYPE_RSS_IPV4, GOOD4)
            else:
                seen.add(6)
                assert (h, htype, csum) == (rss_hash_ip6_2tuple(s, d), M_HASHTYPE_RSS_IPV6, GOOD6)
    assert seen == {4, 6}
    assert M_HASHTYPE_RSS_IPV4 == 0x81 and M_HASHTYPE_RSS_IPV6 == 0x83


def test_hw_rx_short_and_tagged_frames(nic):
    """A frame cut before its ethertype (or a tag's) gets no hash and no
    flags; a tagged frame gets the hash of its untagged self (RSS looks past
    up to two tags)."""
    from scapy.layers.l2 import Dot1AD, Dot1Q
    p = (Ether(dst="02:00:00:00:00:01") / IP(src="10.1.0.2", dst="10.0.0.1")
         / UDP(sport=7, dport=5001) / Raw(b"x" * 20))
    plain = nic.hw_rx(bytes(p))
    assert plain[1] == M_HASHTYPE_RSS_IPV4
    one = Ether(dst="02:00:00:00:00:01") / Dot1Q(vlan=100) / p[IP]
    two = Ether(dst="02:00:00:00:00:01") / Dot1AD(vlan=7) / Dot1Q(vlan=100) / p[IP]
    for tagged in (one, two):
        raw = bytes(tagged)
        assert nic.hw_rx(raw) == plain
        for cut in range(0, len(raw) - len(p[IP]) + 2):
            assert nic.hw_rx(raw[:cut]) == (0, M_HASHTYPE_NONE, 0)


def test_hw_rx_on_scapy_frames(nic):
    """Frames built by scapy alone (not by TrafficSource) get the same treatment."""
    eth = Ether(dst="00:1b:21:0a:0b:0c", src="02:00:00:00:00:01")
    p4 = eth / IP(src="192.0.2.7", dst="10.0.0.1") / UDP(sport=1234, dport=5001) / Raw(b"x" * 37)
    p6 = eth / IPv6(src="2001:db8:1::7", dst="2001:db8::1") / UDP(sport=1234, dport=5001) / Raw(b"y" * 99)
    for p, hf, ht, good in ((p4, rss_hash_ip4_2tuple, M_HASHTYPE_RSS_IPV4, GOOD4),
                            (p6, rss_hash_ip6_2tuple, M_HASHTYPE_RSS_IPV6, GOOD6)):
        raw = bytes(p)
        assert nic.hw_rx(raw) == (hf(*_addrs(p)), ht, good)
        bad = p.copy()
        bad[UDP].chksum = Ether(raw)[UDP].chksum ^ 0x8000
        _, _, csum = nic.hw_rx(bytes(bad))
        assert not csum & (CSUM_DATA_VALID | CSUM_PSEUDO_HDR)
    bad = p4.copy()
    bad[IP].chksum = Ether(bytes(p4))[IP].chksum ^ 0x0001
    _, _, csum = nic.hw_rx(bytes(bad))
    assert csum & CSUM_IP_CHECKED and not csum & CSUM_IP_VALID


def test_hw_rx_corrupted_frames_lack_valid_bits(nic):
    src = nic.sources[0]
    v4 = next(f for f, fl in enumerate(src.flows) if fl[0] == "inet")
    v6 = next(f for f, fl in enumerate(src.flows) if fl[0] == "inet6")
    _, _, c = nic.hw_rx(src.frame(v4, 576, 99, 1))           # bad IPv4 header checksum
    assert c & CSUM_IP_CHECKED and not c & CSUM_IP_VALID
    _, _, c = nic.hw_rx(src.frame(v4, 576, 99, 2))           # bad UDP checksum
    assert c & CSUM_IP_VALID and not c & (CSUM_DATA_VALID | CSUM_PSEUDO_HDR)
    _, _, c = nic.hw_rx(src.frame(v6, 576, 99, 2))
    assert not c & (CSUM_DATA_VALID | CSUM_PSEUDO_HDR)
    # flip one payload bit of a good frame: the UDP checksum no longer holds
    raw = bytearray(src.frame(v4, 576, 99, 0))
    raw[-1] ^= 0x01
    _, _, c = nic.hw_rx(bytes(raw))
    assert c == CSUM_IP_CHECKED | CSUM_IP_VALID


def _ones_sum(b: bytes) -> int:
    """RFC 1071, plainly: 16-bit words added with end-around carry."""
    s = 0
    for i in range(0, len(b), 2):
        s += b[i] << 8 | b[i + 1]
        while s >> 16:
            s = (s & 0xFFFF) + (s >> 16)
    return s


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.integers(5, 15), st.binary(min_size=60, max_size=60), st.booleans())
def test_hw_rx_ip_header_checksum_as_rfc1071(nic, ihl, rest, fix):
    """The NIC marks an IPv4 header valid exactly when its words sum to 0xffff
    in ones'-complement arithmetic (any header length, options and bytes;
    half the headers get a correct checksum)."""
    hdr = bytearray(bytes([0x40 | ihl]) + rest[:4 * ihl - 1])
    if fix:
        hdr[10:12] = b"\0\0"
        hdr[10:12] = (0xFFFF - _ones_sum(bytes(hdr))).to_bytes(2, "big")
    frame = bytes.fromhex("001b210a0b0c020000000001") + b"\x08\x00" + bytes(hdr) + rest
    _, _, csum = nic.hw_rx(frame)
    assert csum & CSUM_IP_CHECKED
    assert bool(csum & CSUM_IP_VALID) == (_ones_sum(bytes(hdr)) == 0xFFFF)
    if fix:
        assert csum & CSUM_IP_VALID


# -- fragments -------------------------------------------------------------------------

def _fragment2_ref(frame: bytes, ident: int):
    """fragment2 as first written (slices, to_bytes, in_cksum): the reference
    the in-place version must match byte for byte."""
    from actors.inet import in_cksum
    if frame[12:14] == b"\x08\x00":
        hl = (frame[14] & 15) * 4
        ip = frame[14:14 + hl]
        pay = frame[14 + hl:14 + int.from_bytes(frame[16:18], "big")]
        cut = max(8, (len(pay) // 2) & ~7)
        out = []
        for off, part, mf in ((0, pay[:cut], 0x2000), (cut, pay[cut:], 0)):
            h = bytearray(ip)
            h[2:4] = (hl + len(part)).to_bytes(2, "big")
            h[4:6] = (ident & 0xFFFF).to_bytes(2, "big")
            h[6:8] = (mf | (off >> 3)).to_bytes(2, "big")
            h[10:12] = b"\0\0"
            h[10:12] = in_cksum(bytes(h)).to_bytes(2, "big")
            out.append(frame[:14] + bytes(h) + part)
        return out[0], out[1]
    ip6 = frame[14:54]
    pay = frame[54:54 + int.from_bytes(frame[18:20], "big")]
    cut = max(8, (len(pay) // 2) & ~7)
    out = []
    for off, part, m in ((0, pay[:cut], 1), (cut, pay[cut:], 0)):
        h = bytearray(ip6)
        h[4:6] = (8 + len(part)).to_bytes(2, "big")
        nxt = h[6]
        h[6] = 44
        fh = bytes([nxt, 0]) + (off | m).to_bytes(2, "big") + (ident & 0xFFFFFFFF).to_bytes(4, "big")
        out.append(frame[:14] + bytes(h) + fh + part)
    return out[0], out[1]


@pytest.mark.parametrize("family", ["inet", "inet6"])
@pytest.mark.parametrize("size", [64, 65, 576, 1500, 9000])
def test_fragments_reassemble_in_scapy(family, size):
    """The two fragments of a generated datagram, read by scapy: valid
    headers, the offsets and the more-fragments bit, and the datagram's
    payload split between them at a multiple of 8."""
    from scapy.layers.inet6 import IPv6ExtHdrFragment
    from actors.traffic import fragment2
    src = source(family, size=size)
    for pid in IDS:
        raw = src.frame(1, size, pid, 0)
        a, b = fragment2(raw, pid)
        pa, pb = Ether(a), Ether(b)
        if family == "inet":
            whole = Ether(raw)[IP]
            for p in (pa, pb):
                assert ip_cksum_ok(p) and p[IP].id == pid & 0xFFFF and p[IP].len == len(p[IP])
            assert (pa[IP].flags, pa[IP].frag) == ("MF", 0)
            cut = len(bytes(pa[IP].payload))
            assert cut % 8 == 0 and (pb[IP].flags, pb[IP].frag * 8) == (0, cut)
            assert bytes(pa[IP].payload) + bytes(pb[IP].payload) == bytes(whole.payload)
        else:
            whole = Ether(raw)[IPv6]
            fa, fb = pa[IPv6ExtHdrFragment], pb[IPv6ExtHdrFragment]
            assert pa[IPv6].nh == pb[IPv6].nh == 44 and fa.nh == fb.nh == 17
            assert (fa.m, fa.offset, fa.id) == (1, 0, pid & 0xFFFFFFFF)
            cut = len(bytes(fa.payload))
            assert cut % 8 == 0 and (fb.m, fb.offset * 8, fb.id) == (0, cut, pid & 0xFFFFFFFF)
            assert pa[IPv6].plen == 8 + cut and pb[IPv6].plen == len(bytes(fb))
            assert bytes(fa.payload) + bytes(fb.payload) == bytes(whole.payload)


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(["inet", "inet6"]), st.one_of(st.integers(60, 90), st.integers(60, 1600)),
       st.integers(0, 2**64 - 1),
       st.one_of(st.none(), st.integers(0, 64), st.integers(0, 0xFFFF)), st.integers(0, 40))
def test_fragment2_matches_its_reference(family, size, pid, iplen, cut_tail):
    """fragment2 against its first form, byte for byte, also for a length
    field that disagrees with the frame (longer, shorter, below the header)
    and a frame cut short."""
    from actors.traffic import fragment2
    raw = bytearray(source(family).frame(0, size, pid, 0))
    if iplen is not None:
        at = 16 if family == "inet" else 18
        raw[at:at + 2] = iplen.to_bytes(2, "big")
    raw = bytes(raw[:max(54, len(raw) - cut_tail)])
    assert fragment2(raw, pid) == _fragment2_ref(raw, pid)
    # a tagged frame (802.1Q, or QinQ): the tags kept in both fragments
    for tag in (bytes.fromhex("81000064"), bytes.fromhex("88a8012c8100012d")):
        tagged = raw[:12] + tag + raw[12:]
        want = tuple(x[:12] + tag + x[12:] for x in _fragment2_ref(raw, pid))
        assert fragment2(tagged, pid, 14 + len(tag)) == want


@pytest.mark.parametrize("vlan", [100, [300, 301]])
def test_tagged_source_frames_are_the_untagged_ones_with_the_tags(vlan):
    """A VLAN source's frames (fragments too) carry its tags after the MAC
    addresses and are otherwise its untagged twin's, byte for byte."""
    spec = {"fragment_ratio": 0.3, "family": "mix", "sizes": [[64, 1], [1500, 1]]}
    plain, tagged = source(**spec), source(vlan=vlan, **spec)
    tag = tagged.tag
    a, b = plain.frames(0, 200_000), tagged.frames(0, 200_000)
    assert len(a) == len(b) > 100 and tag is not None
    assert any(fr[12 + len(tag):14 + len(tag)] in (b"\x08\x00", b"\x86\xdd") for _, fr, _ in b)
    for (t1, f1, id1), (t2, f2, id2) in zip(a, b):
        assert (t1, id1) == (t2, id2)
        assert f2 == f1[:12] + tag + f1[12:]
