"""Synthetic traffic: real Ethernet/IP/UDP frames arriving on a wire.

What this models.  A traffic source is a set of N UDP flows (over IPv4, IPv6
or a mix) from distinct remote hosts to the host's address on one NIC,
with uniform or Zipf(s) popularity, constant-rate or Poisson arrivals at a
given packet rate, and fixed or mixed frame sizes.  Every frame is built as
real bytes with a correct IPv4 header checksum and UDP checksum computed at
the source (a scenario can corrupt a fraction of them on purpose).  The first
8 bytes of every UDP payload carry the packet's per-run id, so ordering can be
checked from the bytes alone.

Frame sizes are given as on the wire including the 4-byte FCS (64..1518);
the bytes we build exclude the FCS, as a capture does.  A size too small for
the headers is raised to the smallest frame that holds them (74 on the wire
for IPv6).  `bad_ip_cksum_ratio` corrupts IPv4 header checksums only: IPv6
has no header checksum.

Determinism: every random draw comes from a numpy PCG64 generator seeded
from the scenario seed and the source's index, drawn in fixed-size blocks,
so the arrival sequence does not depend on the quantum or on how windows
are cut.  TCP connections come from TcpSource (below).  Left out: IP
options and other protocols from the generator (pcap replay brings those).
"""

from __future__ import annotations

import ipaddress
import struct

import numpy as np

from .inet import IPPROTO_UDP, ETHERTYPE_IP, ETHERTYPE_IPV6, frozen, hdr_cksum, in_cksum

# a frame's UDP checksum, then its 8-byte packet id, written into its template
_CKID_INTO = struct.Struct("!HQ").pack_into

try:                        # compiled (actors/_core.py): the frame builder stores in C
    import cython
    COMPILED = cython.compiled
except ImportError:         # plain Python without Cython installed
    COMPILED = False

BLOCK = 4096
FCS = 4


class TrafficSource:
    def __init__(self, spec: dict, index: int, seed: int, dst_mac: bytes,
                 dst4: bytes | None, dst6: bytes | None, dst_ports: list, id_base: int = 0):
        self.index = index
        self.next_id = id_base | (index << 32)   # per-run packet ids, in wire order
        self.rate = float(spec["rate_pps"])
        self.start_ns = int(spec.get("start_ms", 0) * 1_000_000)
        stop = spec.get("stop_ms")
        self.stop_ns = None if stop is None else int(stop * 1_000_000)
        self.poisson = spec.get("arrivals", "constant") == "poisson"
        self.rng = np.random.Generator(np.random.PCG64([seed, index]))
        nflows = int(spec.get("flows", 1))
        # popularity CDF
        if spec.get("popularity", "uniform") == "zipf":
            s = float(spec.get("zipf_s", 1.0))
            w = 1.0 / np.arange(1, nflows + 1, dtype=np.float64) ** s
        else:
            w = np.ones(nflows)
        self.flow_cdf = np.cumsum(w) / w.sum()
        sizes = spec.get("sizes") or [[int(spec.get("size", 64)), 1]]
        sw = np.array([float(x[1]) for x in sizes])
        self.sizes = [int(x[0]) for x in sizes]
        self.size_cdf = np.cumsum(sw) / sw.sum()
        self.bad_ip = float(spec.get("bad_ip_cksum_ratio", 0.0))
        self.bad_udp = float(spec.get("bad_udp_cksum_ratio", 0.0))
        self.frag = float(spec.get("fragment_ratio", 0.0))
        vid = spec.get("vlan")
        # tags after the MAC addresses: one VID is an 802.1Q tag, [outer,
        # inner] an 802.1ad tag then an 802.1Q tag (QinQ)
        if vid is None:
            self.tag = None
        elif isinstance(vid, int):
            self.tag = b"\x81\x00" + vid.to_bytes(2, "big")
        else:
            self.tag = b"\x88\xa8" + vid[0].to_bytes(2, "big") + b"\x81\x00" + vid[1].to_bytes(2, "big")
        fam = spec.get("family", "inet")
        v6frac = {"inet": 0.0, "inet6": 1.0}.get(fam, float(spec.get("inet6_fraction", 0.5)))
        src4 = ipaddress.IPv4Network(spec.get("src_net", "198.18.0.0/15"))
        src6 = ipaddress.IPv6Network(spec.get("src_net6", "2001:db8:ffff::/48"))
        self.flows = []
        for f in range(nflows):
            v6 = (f + 0.5) / nflows < v6frac if 0 < v6frac < 1 else v6frac == 1.0
            smac = bytes([0x02, 0, (f >> 16) & 0xFF, (f >> 8) & 0xFF, f & 0xFF, index & 0xFF])
            sport = 1024 + (f * 7919) % 64000
            dport = dst_ports[f % len(dst_ports)]
            if v6:
                src = (src6.network_address + 1 + f).packed
                self.flows.append(("inet6", smac, src, dst6, sport, dport))
            else:
                src = (src4.network_address + 1 + f).packed
                self.flows.append(("inet", smac, src, dst4, sport, dport))
        self.dst_mac = dst_mac
        self.templates = {}
        self.next_t = float(self.start_ns)
        self.sent = 0                    # constant arrivals drawn so far
        self.blk = None
        self.pos = BLOCK

    # -- frames ---------------------------------------------------------------
    def _template(self, f: int, size: int):
        """Flow f's frames of `size` on the wire (and the source's VLAN
        tags after the MAC addresses, `size` not counting them): the frame
        with its IPv4 header checksum right and with it wrong (IPv6: the
        same), each a bytearray the packet's UDP checksum and id are
        written into (the 10 bytes from `at`), and the UDP checksum's sum
        without the id."""
        key = (f << 16) | size              # sizes are below 2**16 (scenario: 64..9018)
        t = self.templates.get(key)
        if t is not None:
            return t
        fam, smac, src, dst, sport, dport = self.flows[f]
        eth = self.dst_mac + smac + (self.tag or b"")
        if fam == "inet":
            flen = max(size - FCS, 14 + 20 + 8 + 8)
            plen = flen - 14 - 28           # UDP payload
            ulen = 8 + plen
            iph = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + ulen, 0, 0, 64, IPPROTO_UDP, 0, src, dst)
            iph = iph[:10] + in_cksum(iph).to_bytes(2, "big") + iph[12:]
            bad = iph[:10] + (int.from_bytes(iph[10:12], "big") ^ 0x0101).to_bytes(2, "big") + iph[12:]
            l2 = eth + ETHERTYPE_IP.to_bytes(2, "big")
            pseudo = src + dst + bytes([0, IPPROTO_UDP]) + ulen.to_bytes(2, "big")
        else:
            flen = max(size - FCS, 14 + 40 + 8 + 8)
            plen = flen - 14 - 48
            ulen = 8 + plen
            iph = struct.pack("!IHBB16s16s", 0x60000000, ulen, IPPROTO_UDP, 64, src, dst)
            bad = iph
            l2 = eth + ETHERTYPE_IPV6.to_bytes(2, "big")
            pseudo = src + dst + ulen.to_bytes(4, "big") + bytes([0, 0, 0, IPPROTO_UDP])
        udph = struct.pack("!HHH", sport, dport, ulen)
        # checksum over pseudo header + UDP header (sum 0) + zero payload; the
        # 8-byte packet id is added per packet (its value mod 0xffff).
        base = ~in_cksum(pseudo + udph + b"\0\0") & 0xFFFF
        rest = bytes(2 + plen)              # the checksum field, then the payload (id first)
        t = (bytearray(l2 + iph + udph + rest), bytearray(l2 + bad + udph + rest),
             len(l2) + len(iph) + 6, base)
        self.templates[key] = t
        return t

    def frame(self, f: int, size: int, pkt_id: int, corrupt: int) -> bytes:
        """Flow f's frame of `size` (tags not counted) carrying packet id `pkt_id` (0 <= id
        < 2**64), its UDP checksum right for it; `corrupt` bit 0 spoils the
        IPv4 header checksum, bit 1 the UDP checksum."""
        good, bad, at, base = self._template(f, size)
        s = (base + pkt_id % 0xFFFF) % 0xFFFF
        ck = ~(s or 0xFFFF) & 0xFFFF or 0xFFFF   # 0 is sent as 0xffff (RFC 768)
        if corrupt & 2:
            ck ^= 0x0040
        b = bad if corrupt & 1 else good
        if COMPILED:                             # ten C stores
            b[at] = ck >> 8
            b[at + 1] = ck & 0xFF
            for i in range(8):                   # the id, big-endian
                b[at + 2 + i] = (pkt_id >> (56 - 8 * i)) & 0xFF
        else:                                    # one call, not ten item stores
            _CKID_INTO(b, at, ck, pkt_id)
        return frozen(b)

    # -- arrivals -------------------------------------------------------------
    def _refill(self):
        rng = self.rng
        if self.poisson:
            gaps = rng.exponential(1e9 / self.rate, BLOCK)
            times = self.next_t + np.concatenate(([0.0], np.cumsum(gaps)))
        else:
            # arrival k at start + k * 1e9 / rate, from its index: a running sum
            # of rounded gaps drifts and can put an arrival in the wrong window
            k = np.arange(self.sent, self.sent + BLOCK + 1, dtype=np.float64)
            times = self.start_ns + k * 1e9 / self.rate
            self.sent += BLOCK
        flows = np.searchsorted(self.flow_cdf, rng.random(BLOCK), side="right")
        sizes = np.searchsorted(self.size_cdf, rng.random(BLOCK), side="right")
        u = rng.random(BLOCK)
        corrupt = (u < self.bad_ip).astype(np.int64) + 2 * ((u >= self.bad_ip) & (u < self.bad_ip + self.bad_udp))
        if self.frag:
            corrupt = corrupt + 4 * (rng.random(BLOCK) < self.frag)
        sz = np.array(self.sizes)[np.minimum(sizes, len(self.sizes) - 1)]
        self.next_t = float(times[-1])
        blk = tuple(np.ascontiguousarray(a, dtype=np.int64) for a in (
            times[:-1], np.minimum(flows, len(self.flows) - 1), sz, corrupt))
        self.blk = blk
        # compiled, C int64 views of the block (frames() reads them with no
        # Python int made each); from source just the arrays again
        self.vt, self.vf, self.vs, self.vc = blk
        self.pos = 0

    def arrivals(self, start: int, end: int):
        """(times, flows, sizes, corrupt) lists for arrivals with t in [start, end)."""
        if self.stop_ns is not None and end > self.stop_ns:
            end = self.stop_ns
        T, F, S, C = [], [], [], []
        while True:
            if self.pos >= BLOCK:
                self._refill()
            p = self.pos
            # the first arrival at or after `end` (an arrival's time is the
            # integer part of a non-negative float: it is at or after the
            # integer `end` exactly when the float is); the ones before pos
            # came before the previous window's end
            k = _first_at(self.vt, end, p)
            if k > p:
                times, flows, sizes, corrupt = self.blk
                T += times[p:k].tolist()
                F += flows[p:k].tolist()
                S += sizes[p:k].tolist()
                C += corrupt[p:k].tolist()
            self.pos = k
            if k < BLOCK:
                return T, F, S, C

    def frames(self, start: int, end: int) -> list:
        """(t_ns, frame bytes, packet id) for the arrivals in [start, end):
        those arrivals() lists, read from the block where they lie."""
        if self.stop_ns is not None and end > self.stop_ns:
            end = self.stop_ns
        pid = self.next_id
        l2 = 14 if self.tag is None else 14 + len(self.tag)
        out = []
        while True:
            if self.pos >= BLOCK:
                self._refill()
            p = self.pos
            k = _first_at(self.vt, end, p)      # as in arrivals()
            if COMPILED:                        # the block's C int64 views
                times = self.vt
                flows = self.vf
                sizes = self.vs
                corrupt = self.vc
                o = 0
            else:                               # Python ints, not numpy scalars
                times, flows, sizes, corrupt = [a[p:k].tolist() for a in self.blk]
                o = p
            for i in range(p, k):
                t = times[i - o]
                c = corrupt[i - o]
                fr = self.frame(flows[i - o], sizes[i - o], pid, c)     # tagged already
                if c & 4:                      # sent as two fragments, 1 ns apart
                    a, b = fragment2(fr, pid, l2)
                    out.append((t, a, pid))
                    out.append((t + 1, b, pid + 1))
                    pid += 2
                    continue
                out.append((t, fr, pid))
                pid += 1
            self.pos = k
            if k < BLOCK:
                break
        self.next_id = pid
        return out


def _first_at(times, end: int, lo: int) -> int:
    """bisect_left(times, end, lo): the first index from lo whose time is
    at or after `end` (compiled, a binary search over the C int64 view)."""
    hi = len(times)
    while lo < hi:
        mid = (lo + hi) >> 1
        if times[mid] < end:
            lo = mid + 1
        else:
            hi = mid
    return lo


def _payload_end(frame: bytes, h: int, e: int) -> int:
    """Where a payload from h that its header says ends at e ends in the
    frame: as frame[h:e] would (cut at the frame's end, empty if e < h)."""
    if e > len(frame):
        e = len(frame)
    return e if e > h else h


def _cut(n: int) -> int:
    """The first fragment's share of an n-byte payload: half, rounded down
    to 8 bytes, at least 8."""
    cut = (n // 2) & ~7
    return cut if cut > 8 else 8


def fragment2(frame: bytes, ident: int, l2: int = 14):
    """Split an Ethernet + IPv4/IPv6 datagram into two fragments (the first
    half of the IP payload rounded down to 8 bytes, then the rest; the
    datagram's own length, not the frame's, says where its payload ends).
    `l2`: the link header's length, tags included (the type field ends it)."""
    if frame[l2 - 2] == 8 and frame[l2 - 1] == 0:
        hl = (frame[l2] & 15) * 4
        h = l2 + hl                                 # the payload's start
        e = _payload_end(frame, h, l2 + ((frame[l2 + 2] << 8) | frame[l2 + 3]))
        cut = _cut(e - h)
        mid = h + cut if h + cut < e else e
        a = bytearray(frame[:mid])
        b = bytearray(frame[:h])
        b += frame[mid:e]
        n = mid - h
        a[l2 + 2] = (hl + n) >> 8 & 0xFF
        a[l2 + 3] = (hl + n) & 0xFF
        n = e - mid
        b[l2 + 2] = (hl + n) >> 8 & 0xFF
        b[l2 + 3] = (hl + n) & 0xFF
        for x in (a, b):
            x[l2 + 4] = ident >> 8 & 0xFF
            x[l2 + 5] = ident & 0xFF
            x[l2 + 10] = 0
            x[l2 + 11] = 0
        a[l2 + 6] = 0x20                            # MF, offset 0
        a[l2 + 7] = 0
        off = cut >> 3
        b[l2 + 6] = off >> 8 & 0xFF                 # offset cut / 8, MF clear
        b[l2 + 7] = off & 0xFF
        c = hdr_cksum(frozen(a), l2, h)
        a[l2 + 10] = c >> 8
        a[l2 + 11] = c & 0xFF
        c = hdr_cksum(frozen(b), l2, h)
        b[l2 + 10] = c >> 8
        b[l2 + 11] = c & 0xFF
        return frozen(a), frozen(b)
    h = l2 + 40
    e = _payload_end(frame, h, h + ((frame[l2 + 4] << 8) | frame[l2 + 5]))
    cut = _cut(e - h)
    mid = h + cut if h + cut < e else e
    nxt = frame[l2 + 6]
    a = bytearray(frame[:h])
    b = bytearray(frame[:h])
    for x, first in ((a, True), (b, False)):
        n = (mid - h) if first else (e - mid)
        x[l2 + 4] = (8 + n) >> 8 & 0xFF
        x[l2 + 5] = (8 + n) & 0xFF
        x[l2 + 6] = 44                              # a fragment header follows
        off = 0 if first else cut
        m = 1 if first else 0
        x += bytes((nxt, 0, (off | m) >> 8 & 0xFF, (off | m) & 0xFF, ident >> 24 & 0xFF,
                    ident >> 16 & 0xFF, ident >> 8 & 0xFF, ident & 0xFF))
    a += frame[h:mid]
    b += frame[mid:e]
    return frozen(a), frozen(b)


# link types of captures -> the NIC's link layer
CAPTURE_LINKS = {1: "ether", 101: "raw", 228: "raw", 229: "raw", 113: "sll", 276: "sll2"}


class PcapSource:
    """Frames replayed from a pcap / pcapng file, read as a stream.

    The frames arrive in file order, one every 1/rate_pps seconds from
    `start_ms` (capture timestamps are not used: a capture may span hours, and
    replay is about what the stack does with each frame).  The file is read as
    the windows need it, so memory stays bounded whatever its size.  A file
    cut short is replayed as far as it goes; `truncated` and `problem` say so.
    """

    def __init__(self, spec: dict, index: int, id_base: int = 0):
        from .pcap import open_capture
        self.index = index
        self.path = spec["pcap"]
        self.cap = open_capture(self.path)
        self.it = iter(self.cap)
        self.gap = 1e9 / float(spec.get("rate_pps", 1_000_000))
        self.t0 = float(spec.get("start_ms", 0)) * 1e6
        self.k = 0
        self.next_id = id_base | (index << 32)
        self.done = False

    @property
    def truncated(self) -> bool:
        return bool(self.cap.truncated)

    @property
    def problem(self):
        return self.cap.problem

    def frames(self, start: int, end: int) -> list:
        out = []
        while not self.done:
            t = int(self.t0 + self.k * self.gap)
            if t >= end:
                break
            fr = next(self.it, None)
            if fr is None:
                self.done = True
                self.cap.close()
                break
            out.append((t, fr.data, self.next_id))
            self.next_id += 1
            self.k += 1
        return out


# -- TCP ----------------------------------------------------------------------------

TH_FIN, TH_SYN, TH_RST, TH_PUSH, TH_ACK = 0x01, 0x02, 0x04, 0x08, 0x10


def client_iss(index: int, f: int) -> int:
    return (0x1000 + index * 2654435761 + f * 40503) & 0xFFFFFFFF


def server_iss(faddr: bytes, fport: int, laddr: bytes, lport: int) -> int:
    """The ISS our host answers a SYN with (tcp_new_isn's role): a function of
    the 4-tuple both ends of the model can compute - the generator is open
    loop, so it must know what the SYN-ACK it never sees would have said."""
    import zlib
    return zlib.crc32(faddr + fport.to_bytes(2, "big") + laddr + lport.to_bytes(2, "big"))


class TcpSource(TrafficSource):
    """TCP connections as an open-loop peer sends them: `flows` connections
    to the host's listener, each a stream of segments (the frame sizes give
    their lengths) with consecutive sequence numbers, real TCP checksums, the
    per-run packet id in the first 8 payload bytes.  `handshake`: each
    connection starts with a SYN and, `rtt_us` later, the ACK of the SYN-ACK
    (computed, not seen: see server_iss); else they are established from the
    start (the vnet creates them so).  `loss_ratio`: a segment is lost and
    sent again `rto_us` later; `reorder_ratio`: one is held back
    `reorder_us`, so later ones overtake it."""

    def __init__(self, spec: dict, index: int, seed: int, dst_mac: bytes,
                 dst4, dst6, dst_ports: list, id_base: int = 0):
        super().__init__(spec, index, seed, dst_mac, dst4, dst6, dst_ports, id_base)
        self.handshake = bool(spec.get("handshake", False))
        self.rtt = int(spec.get("rtt_us", 20) * 1000)
        self.loss = float(spec.get("loss_ratio", 0.0))
        self.reorder = float(spec.get("reorder_ratio", 0.0))
        self.rto = int(spec.get("rto_us", 200) * 1000)
        self.reorder_ns = int(spec.get("reorder_us", 5) * 1000)
        self.snd_nxt = [client_iss(index, f) + 1 for f in range(len(self.flows))]
        self.opened = [not self.handshake] * len(self.flows)
        self.later = []                 # (t, seq-of-insertion, frame, pkt id) held back or resent
        self.nlater = 0
        self.trng = np.random.Generator(np.random.PCG64([seed, index, 6]))
        self.resent = 0

    def resend(self, t: int, frame: bytes, pkt_id: int) -> None:
        """The host dropped this segment on arrival (its ring was full): it is
        never ACKed, and the peer sends it again an RTO later.  (What a netisr
        queue or a socket drops is not resent: that needs the ACKs the model
        does not send.)"""
        if self.tag is not None:            # stored untagged: frames() tags what it sends
            frame = frame[:12] + frame[12 + len(self.tag):]
        if frame[12:14] == b"\x08\x00" and frame[23] == 6 or frame[12:14] == b"\x86\xdd" and frame[20] == 6:
            self.nlater += 1
            self.later.append((t + self.rto, self.nlater, frame, pkt_id))
            self.resent += 1

    def flow_iss(self, f: int) -> int:
        return client_iss(self.index, f)

    def _ack(self, f: int) -> int:
        fam, _, src, dst, sport, dport = self.flows[f]
        return (server_iss(src, sport, dst, dport) + 1) & 0xFFFFFFFF

    def segment(self, f: int, flags: int, seq: int, payload: bytes) -> bytes:
        fam, smac, src, dst, sport, dport = self.flows[f]
        ack = self._ack(f) if flags & TH_ACK else 0
        tcph = struct.pack("!HHIIBBHHH", sport, dport, seq, ack, 5 << 4, flags, 65535, 0, 0)
        tlen = 20 + len(payload)
        if fam == "inet":
            pseudo = src + dst + bytes([0, 6]) + tlen.to_bytes(2, "big")
            ck = in_cksum(pseudo + tcph + payload)
            tcph = tcph[:16] + ck.to_bytes(2, "big") + tcph[18:]
            iph = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + tlen, 0, 0, 64, 6, 0, src, dst)
            iph = iph[:10] + in_cksum(iph).to_bytes(2, "big") + iph[12:]
            return self.dst_mac + smac + ETHERTYPE_IP.to_bytes(2, "big") + iph + tcph + payload
        pseudo = src + dst + tlen.to_bytes(4, "big") + bytes([0, 0, 0, 6])
        ck = in_cksum(pseudo + tcph + payload)
        tcph = tcph[:16] + ck.to_bytes(2, "big") + tcph[18:]
        iph = struct.pack("!IHBB16s16s", 0x60000000, tlen, 6, 64, src, dst)
        return self.dst_mac + smac + ETHERTYPE_IPV6.to_bytes(2, "big") + iph + tcph + payload

    def frames(self, start: int, end: int) -> list:
        T, F, S, C = self.arrivals(start, end)
        pid = self.next_id
        out = []
        rnd = self.trng.random(2 * len(T)).tolist() if T else []
        for i, (t, f, size) in enumerate(zip(T, F, S)):
            fam = self.flows[f][0]
            if not self.opened[f]:          # SYN now, the handshake's ACK an RTT later
                self.opened[f] = True
                out.append((t, self.segment(f, TH_SYN, self.flow_iss(f), b""), pid))
                pid += 1
                self.nlater += 1
                self.later.append((t + self.rtt, self.nlater,
                                   self.segment(f, TH_ACK, self.snd_nxt[f], b""), pid))
                pid += 1
                continue
            hdr = 14 + (20 if fam == "inet" else 40) + 20
            plen = max(8, size - FCS - hdr)
            payload = pid.to_bytes(8, "big") + bytes(plen - 8)
            seg = self.segment(f, TH_ACK | TH_PUSH, self.snd_nxt[f], payload)
            self.snd_nxt[f] = (self.snd_nxt[f] + plen) & 0xFFFFFFFF
            if rnd[2 * i] < self.loss:      # lost: the peer retransmits after its RTO
                self.nlater += 1
                self.later.append((t + self.rto, self.nlater, seg, pid))
            elif rnd[2 * i + 1] < self.reorder:
                self.nlater += 1
                self.later.append((t + self.reorder_ns, self.nlater, seg, pid))
            else:
                out.append((t, seg, pid))
            pid += 1
        self.next_id = pid
        if self.later:
            self.later.sort()
            k = 0
            while k < len(self.later) and self.later[k][0] < end:
                t, _, seg, p = self.later[k]
                out.append((max(t, start), seg, p))
                k += 1
            del self.later[:k]
            out.sort(key=lambda a: (a[0], a[2]))
        if self.tag is not None:
            out = [(t, fr[:12] + self.tag + fr[12:], p) for t, fr, p in out]
        return out
