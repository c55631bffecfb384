"""The protocol input routines a kernel thread runs, with that thread's
counters: ip_input / ip6_input (with ip_reass / frag6_input), then udp_input,
tcp_input's checks, icmp_input, icmp6_input, arp input.

What this models: the work of netisr's protocol handlers (nh_handler) as it
runs in whichever thread dispatches it - a netisr workstream's thread under
deferred dispatch, the NIC's ithread under direct dispatch - with ipstat,
ip6stat, udpstat, icmpstat counters kept per thread and summed by the run,
as FreeBSD keeps them per CPU (counter(9)).  The reassembly queues belong to
the thread (see actors/ip_reass.py on why that is right for the source and
flow policies).  A datagram that passes udp_input's header checks goes on to
its vnet (in_pcblookup and the socket buffer live there).
"""

from __future__ import annotations

from collections import defaultdict

from .counter import IP6S_FRAGMENTS, IPS_FRAGMENTS, Stat
from .cache import IFADDR_LINES, shared_rec
from .costs import to_ns
from .ether_input import NETISR_IP, NETISR_IPV6
from .icmp_input import arp_input, icmp6_input, icmp_input
from .inet import IPPROTO_TCP, IPPROTO_UDP, bslice, frozen
from .ip6_input import ip6_input, ip6_nexthdr
from .ip_input import ip_deliver, ip_input
from .ip_reass import IPV4_FRAGTTL_NS, IPV6_FRAGTTL_NS, Reass, rebuild_v4, rebuild_v6
from .mbuf import M_BCAST, M_MCAST, Uma, m_freem
from .udp_input import tcp_input_hdr, udp_input_hdr
from .base import make_tap

# C constants when compiled: input's tests box no int
_IP = NETISR_IP
_IP6 = NETISR_IPV6
_TCP = IPPROTO_TCP
_UDP = IPPROTO_UDP


class ProtoInput:
    """Protocol input for one thread: its counters, drops, reassembly, tap."""

    def __init__(self, host: dict, vnets: dict, cpu: int, uma: Uma | None = None, tap=None,
                 mem=None):
        ghz = host["ghz"]
        c = host["costs"]
        self.c_ip = to_ns(c["ip_input"], ghz)
        self.c_ip6 = to_ns(c["ip6_input"], ghz)
        self.c_udp = to_ns(c["udp_input"], ghz)
        self.c_tcp = to_ns(c["tcp_input"], ghz)
        self.c_reass = to_ns(c.get("ip_reass", 0), ghz)
        self.Q = host["quantum_ns"]
        self.cpu = cpu              # the running thread's CPU (its owner keeps it current)
        self.mem = mem              # the owner's MemView (actors/cache.py), or None
        # cache records of the address hashes, per core (actors/cache.py)
        self.ifaddr_rec = shared_rec(mem.t.ncpu) if mem is not None else None
        self.ifaddr6_rec = shared_rec(mem.t.ncpu) if mem is not None else None
        # vnet name -> {"actor":..., "inet": set, "inet6": set, "inet4": the
        # IPv4 addresses as integers (ip_input's check), "any": bool}
        self.vnets = vnets
        self.vnet_actor = {k: v["actor"] for k, v in vnets.items()}
        # the (vnet, window, kind) batch of `out` the last datagram joined
        # (_to_vnet); forgotten at the window's end (expire)
        self.l_out = self.l_vnet = self.l_kind = self.l_batch = None
        self.l_w = -1
        self.uma = uma if uma is not None else Uma()
        self.tap = tap if uma is not None else make_tap(host)
        self.drops = {}
        self.counters = Stat()              # ipstat/udpstat-style counters (actors/counter.py)
        self.consumed = defaultdict(int)    # packets that ended in arp / icmp / icmp6 input
        self.absorbed = 0           # fragments that became part of a reassembled datagram
        rs = host.get("reass", {})
        self.reass4 = Reass(False, rs.get("ip_maxfragpackets", 800),
                            rs.get("ip_maxfragsperpacket", 16), rs.get("ip_fragttl_ns", IPV4_FRAGTTL_NS))
        self.reass6 = Reass(True, rs.get("ip6_maxfragpackets", 6400),
                            rs.get("ip6_maxfragsperpacket", 64), IPV6_FRAGTTL_NS)

    def holding(self) -> int:
        return self.reass4.holding() + self.reass6.holding()

    def expire(self, now: int) -> None:
        """ip_slowtimo / frag6_slowtimo: free queues older than their TTL.
        Called at a window's end, when its output is sent."""
        self.l_out = self.l_batch = None
        if self.reass4.q or self.reass6.q:
            self.reass4.expire(now, self.counters, self._end_frag)
            self.reass6.expire(now, self.counters, self._end_frag)

    def teardown(self) -> None:
        for r in (self.reass4, self.reass6):
            for q in r.q.values():
                for f in q.frags:
                    m_freem(self.uma, f[2])
            r.q.clear()

    def _end(self, m, reason, consumer) -> None:
        """m's way ends here: dropped for `reason`, or (reason None) consumed
        by `consumer`'s input routine."""
        if reason is None:
            self.consumed[consumer] += 1
            if self.tap is not None:
                self.tap.add(m, False, f"delivered to {consumer} input")
        else:
            self.drops[reason] = self.drops.get(reason, 0) + 1
            if self.tap is not None:
                self.tap.add(m, True, reason)
        m_freem(self.uma, m)

    # -- reassembly ----------------------------------------------------------
    def _absorb(self, frags: list, datagram) -> None:
        """The fragments went into `datagram`: their mbufs are freed; all but
        one of the frames are accounted as absorbed (the datagram carries on
        for the last)."""
        tap = self.tap
        uma = self.uma
        for f in frags:
            fm = f[2]
            if tap is not None:
                tap.add(fm, False, f"fragment reassembled into datagram {datagram.pkt_id}")
            m_freem(uma, fm)
        self.absorbed += len(frags) - 1

    def _adopt(self, m2, first) -> None:
        """The reassembled datagram takes the packet header of its first fragment."""
        m2.rcvif = first.rcvif
        m2.vnet = first.vnet
        m2.flowid = first.flowid
        m2.hashtype = first.hashtype
        m2.fib = first.fib
        m2.vlan = first.vlan
        m2.arrival_ns = first.arrival_ns
        m2.stamp_ns = first.stamp_ns
        m2.pkt_id = first.pkt_id
        m2.line_cpu = first.line_cpu
        m2.line_at = first.line_at
        m2.line_pat = first.line_pat
        m2.flags |= first.flags & (M_BCAST | M_MCAST)

    def _reass4(self, m, hl: int, now: int, cnt):
        d = m.st.data
        o = m.off
        offw = (d[o + 6] << 8) | d[o + 7]
        mf = (offw & 0x2000) != 0
        off = (offw & 0x1FFF) << 3
        data = bslice(d, o + hl, o + m.len)
        if not data or (mf and len(data) & 7):
            cnt["ips_toosmall"] += 1
            cnt["ips_fragdropped"] += 1
            self._end(m, "ips_toosmall", None)
            return None
        cnt.v[IPS_FRAGMENTS] += 1
        key = (bslice(d, o + 12, o + 20), bslice(d, o + 4, o + 6), d[o + 9])
        res = self.reass4.input(m, key, off, mf, (bslice(d, 0, o + hl), o, hl, m), data, now,
                                cnt, self._end_frag)
        if res is None:
            return None
        payload, frags, first = res
        fhl = first[2]
        if fhl + len(payload) > 65535:
            cnt["ips_toolong"] += 1
            for f in frags:
                cnt["ips_fragdropped"] += 1
                self._end(f[2], "ips_toolong", None)
            return None
        m2 = rebuild_v4(first[0], first[1], fhl, payload, self.uma)
        self._adopt(m2, first[3])
        self._absorb(frags, m2)
        return m2

    def _reass6(self, m, foff: int, nxt_off: int, now: int, cnt):
        d = m.st.data
        o = m.off
        f = o + foff
        nxt = d[f]
        offw = (d[f + 2] << 8) | d[f + 3]
        mf = (offw & 1) != 0
        off = offw & 0xFFF8
        data = bslice(d, f + 8, o + m.len)
        # the fragment header's next header takes its place in the chain
        first = bytearray(bslice(d, 0, f))
        first[o + nxt_off] = nxt
        if off == 0 and not mf:                      # an atomic fragment (RFC 6946)
            cnt["ip6s_atomicfrags"] += 1
            m2 = rebuild_v6(frozen(first), o, foff, data, self.uma)
            self._adopt(m2, m)
            self._absorb([[0, 0, m, b""]], m2)
            return m2
        if mf and (len(data) & 7 or not data):
            self._end(m, "ip6s_badfrag", None)   # ICMPv6 parameter problem, not a fragment
            return None
        cnt.v[IP6S_FRAGMENTS] += 1
        key = (bslice(d, o + 8, o + 40), bslice(d, f + 4, f + 8))
        res = self.reass6.input(m, key, off, mf, (frozen(first), o, foff, m), data, now, cnt,
                                self._end_frag)
        if res is None:
            return None
        payload, frags, hdr = res
        unfrag = hdr[2]
        if unfrag - 40 + len(payload) > 65535:
            cnt["ip6s_toolong"] += 1
            for fr in frags:
                cnt["ip6s_fragdropped"] += 1
                self._end(fr[2], "ip6s_toolong", None)
            return None
        m2 = rebuild_v6(hdr[0], hdr[1], unfrag, payload, self.uma)
        self._adopt(m2, hdr[3])
        self._absorb(frags, m2)
        return m2

    def _end_frag(self, m, reason: str) -> None:
        self._end(m, reason, None)

    def input(self, m, proto: int, out: dict, now: int) -> int:
        """Run protocol `proto`'s input path for m at time `now`; return its
        cost.  A datagram for a socket is appended to out[(vnet actor,
        window)], stamped with the time it leaves this thread."""
        cnt = self.counters
        if proto == _IP:
            cost = self.c_ip
            r = ip_input(m, self.vnets, cnt)
            if self.mem is not None:    # "ours?": the address hash (read-mostly)
                cost += self.mem.touch_shared(self.cpu, self.ifaddr_rec, IFADDR_LINES)
        elif proto == _IP6:
            cost = self.c_ip6
            r = ip6_input(m, self.vnets, cnt)
            if self.mem is not None:
                cost += self.mem.touch_shared(self.cpu, self.ifaddr6_rec, IFADDR_LINES)
        else:
            self._end(m, arp_input(m, cnt), "arp")
            return self.c_ip
        if type(r) is str:
            self._end(m, r, None)
            return cost
        if r[0] < 0:                                 # a fragment: reassemble first
            cost += self.c_reass
            if proto == _IP6:
                m = self._reass6(m, r[1], r[2], now, cnt)
            else:
                m = self._reass4(m, r[1], now, cnt)
            if m is None:
                return cost
            r = ip6_nexthdr(m, cnt, first=False) if proto == NETISR_IPV6 else ip_deliver(m, r[1], cnt)
            if type(r) is str:
                self._end(m, r, None)
                return cost
            if r[0] < 0:                             # a second fragment header
                self._end(m, "ip6s_badfrag", None)
                return cost
        ulp, off = r
        if ulp == _TCP:                              # checked here, the rest in the vnet
            cost += self.c_tcp
            r = tcp_input_hdr(m, off, proto == NETISR_IPV6, cnt)
            if r is not None:
                self._end(m, r, None)
                return cost
            self._to_vnet(m, out, now + cost, "pkts.tcp")
            return cost
        if ulp != _UDP:                              # ICMP / ICMPv6: consumed here
            r = (icmp6_input if proto == NETISR_IPV6 else icmp_input)(m, off, cnt)
            self._end(m, r, "icmp6" if proto == NETISR_IPV6 else "icmp")
            return cost
        cost += self.c_udp
        r = udp_input_hdr(m, off, proto == _IP6, cnt)
        if r is not None:
            self._end(m, r, None)
            return cost
        self._to_vnet(m, out, now + cost, "pkts.udp")
        return cost

    def _to_vnet(self, m, out: dict, done: int, kind: str) -> None:
        """The transport's stateful half runs in the vnet: m goes there,
        stamped with the time it leaves this thread."""
        m.stamp_ns = done
        w = done // self.Q
        v = m.vnet
        if out is self.l_out and w == self.l_w and kind == self.l_kind and v == self.l_vnet:
            self.l_batch.append(m)      # the batch the last datagram went to
            return
        key = (self.vnet_actor[v], w, kind)
        b = out.get(key)
        if b is None:
            b = out[key] = [m]
        else:
            b.append(m)
        self.l_out = out
        self.l_w = w
        self.l_kind = kind
        self.l_vnet = v
        self.l_batch = b

