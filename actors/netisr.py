"""netisr: protocol dispatch to workstreams (sys/net/netisr.c, netisr2).

What this models.  FreeBSD 8+'s netisr2: `net.isr.maxthreads` workstreams,
each a software-interrupt thread ("swi1: netisr N", priority SWI_NET) with
one queue per registered protocol.  A packet handed to netisr is assigned a
workstream by its protocol's policy (netisr_select_cpuid):

  * one workstream: that one, whatever the policy;
  * FLOW (ip, ip6): the packet's flowid modulo the number of workstreams,
    when it carries any hash type; otherwise SOURCE;
  * SOURCE (arp, ether): (receiving ifnet's if_index + source) modulo the
    number of workstreams, source being 0 for netisr_dispatch.

Deferred dispatch (`net.isr.dispatch=deferred`) queues it: if the protocol's
queue on that workstream holds `qlimit` packets it is tail-dropped (QDrops);
else it is appended (Queued, WMark raised) and, if the thread sleeps, the
thread is woken (swi_sched) - at the cost `netisr_wakeup` when it starts to
run.  The worker handles protocols lowest number first, each time taking the
whole queue as a snapshot (so Len falls to 0 when a drain starts and up to
2 x qlimit packets can be outstanding, as netisr.c says), and runs the
protocol's input routine for each packet in the receiving interface's vnet.

The CPU policy asks RSS for the packet's bucket CPU (rss_soft_m2cpuid) and
folds it onto the workstreams; interfaces and rx queues can be pinned to a
workstream; a "spread" policy (netcabal's, not FreeBSD's) deals packets
round-robin to show what per-flow ordering is worth.

What it leaves out until the netisr work item: direct and hybrid dispatch,
bindthreads=0 (threads are placed on CPU i for workstream i), and the 2006
single `swi1: net` thread with its 50-packet ipintrq.
"""

from __future__ import annotations

from collections import defaultdict, deque

from .base import Actor, KThread, PRI_SWI_NET, make_tap
from .costs import to_ns
from .ether_input import NETISR_ARP, NETISR_IP, NETISR_IPV6, ISR_NAMES
from .ip6_input import ip6_input, ip6_nexthdr
from .ip_input import ip_deliver, ip_input
from .ip_reass import IPV4_FRAGTTL_NS, IPV6_FRAGTTL_NS, Reass, rebuild_v4, rebuild_v6
from .mbuf import M_BCAST, M_HASHTYPE_NONE, M_MCAST, Uma, m_freem
from .icmp_input import arp_input, icmp6_input, icmp_input
from .inet import IPPROTO_TCP, IPPROTO_UDP
from .udp_input import tcp_input_hdr, udp_input_hdr

POLICY_SOURCE, POLICY_FLOW, POLICY_CPU, POLICY_SPREAD = 1, 2, 3, 99
POLICY_NAMES = {POLICY_SOURCE: "source", POLICY_FLOW: "flow", POLICY_CPU: "cpu",
                POLICY_SPREAD: "spread"}
POLICY_BY_NAME = {v: k for k, v in POLICY_NAMES.items()}
# registered protocols: number -> (name, policy)
PROTOCOLS = {NETISR_IP: ("ip", POLICY_FLOW), NETISR_ARP: ("arp", POLICY_SOURCE),
             NETISR_IPV6: ("ip6", POLICY_FLOW)}
NAME_TO_PROTO = {v[0]: k for k, v in PROTOCOLS.items()}


class NetisrConfig:
    """What a dispatching thread needs to know: workstreams, policies, pins.

    `policy` maps protocol name to "source", "flow", "cpu" (netisr2's three),
    or "spread" (netcabal's deliberately unordered round-robin, to measure
    what ordering is worth); `pin` maps an interface ("ix0") or an rx queue
    ("ix0:rxq1") to a workstream, overriding the policy for what it receives
    (as binding an ifnet's traffic to a netisr would); `ncpus` is the number of
    CPUs for the CPU policy's RSS bucket map."""

    __slots__ = ("nws", "names", "policy", "pin", "ncpus", "rr")

    def __init__(self, cfg: dict):
        self.names = list(cfg["workstreams"])      # actor names, WSID order
        self.nws = len(self.names)
        pol = cfg.get("policy", {})
        self.policy = {p: POLICY_BY_NAME.get(pol.get(ISR_NAMES[p]), default)
                       for p, (_, default) in PROTOCOLS.items()}
        self.pin = dict(cfg.get("pin", {}))
        self.ncpus = cfg.get("ncpus", self.nws)
        self.rr = 0

    def select(self, proto: int, m, if_index: int, source: int = 0, cur_cpu: int = 0,
               queue: str = ""):
        """netisr_select_cpuid: the workstream actor for packet m, or None."""
        pol = self.policy.get(proto)
        if pol is None:
            return None
        n = self.nws
        if n == 1:
            return self.names[0]
        if self.pin:
            ws = self.pin.get(queue, self.pin.get(m.rcvif))
            if ws is not None:
                return self.names[ws % n]
        if pol == POLICY_FLOW:
            if m.hashtype != M_HASHTYPE_NONE:
                return self.names[m.flowid % n]
        elif pol == POLICY_CPU:
            # rss_soft_m2cpuid: the RSS bucket's CPU (buckets 2^bits >= 2 x CPUs,
            # dealt round-robin to the CPUs); no hash: NETISR_CPUID_NONE, which
            # falls back to the source policy (deferred dispatch)
            if m.hashtype != M_HASHTYPE_NONE:
                nb = 1
                while nb < 2 * self.ncpus and nb < 128:
                    nb <<= 1
                cpu = (m.flowid & (nb - 1)) % self.ncpus
                return self.names[cpu % n]          # netisr_get_cpuid: id % nws_count
        elif pol == POLICY_SPREAD:
            self.rr += 1
            return self.names[self.rr % n]
        return self.names[(if_index + source) % n]


class Netisr(Actor):
    """One netisr workstream: its thread, its per-protocol queues, its stats."""

    def __init__(self, wsid: int, cpu: int, host: dict, vnets: dict):
        self.wsid = wsid
        self.name = f"netisr{wsid}"
        self.cpu = cpu
        ghz = host["ghz"]
        c = host["costs"]
        self.c_ip = to_ns(c["ip_input"], ghz)
        self.c_ip6 = to_ns(c["ip6_input"], ghz)
        self.c_udp = to_ns(c["udp_input"], ghz)
        self.c_wake = to_ns(c["netisr_wakeup"], ghz)
        self.Q = host["quantum_ns"]
        self.vnets = vnets          # vnet name -> {"actor":..., "inet": set, "inet6": set}
        self.vnet_actor = {k: v["actor"] for k, v in vnets.items()}
        qlimits = host["netisr"]["qlimit"]
        self.qlimit = {p: qlimits[ISR_NAMES[p]] for p in PROTOCOLS}
        self.thread = KThread(f"netisr {wsid}", self.name, cpu, PRI_SWI_NET, host["quantum_ns"])
        self.queues = {p: deque() for p in sorted(PROTOCOLS)}
        self.snap = deque()
        self.snap_proto = 0
        self.running = False
        self.uma = Uma()
        self.tap = make_tap(host)
        self.stats = {p: {"queued": 0, "handled": 0, "qdrops": 0, "wmark": 0}
                      for p in PROTOCOLS}
        self.drops = {}
        self.counters = defaultdict(int)    # ipstat/udpstat-style counters
        self.consumed = defaultdict(int)    # packets that ended in arp / icmp / icmp6 input
        self.absorbed = 0           # fragments that became part of a reassembled datagram
        rs = host.get("reass", {})
        self.reass4 = Reass(False, rs.get("ip_maxfragpackets", 800),
                            rs.get("ip_maxfragsperpacket", 16), rs.get("ip_fragttl_ns", IPV4_FRAGTTL_NS))
        self.reass6 = Reass(True, rs.get("ip6_maxfragpackets", 6400),
                            rs.get("ip6_maxfragsperpacket", 64), IPV6_FRAGTTL_NS)
        self.c_reass = to_ns(c.get("ip_reass", 0), ghz)
        self.wait_ns = 0            # total time packets waited in the queue
        self.waited = 0
        self.wakeups = 0

    # -- the worker ---------------------------------------------------------
    def _run(self, arrivals: list, start: int, end: int, out: dict) -> None:
        """Enqueue `arrivals` ((proto, mbuf) in stamp order) while running the
        worker up to each arrival's time, then up to `end`."""
        th = self.thread
        clock = th.clock
        busy = 0                # ns used inside [start, end); th.charge() for the rest
        busy_prev = 0           # ... and inside [start - Q, start)
        prev = start - self.Q
        snap = self.snap
        queues = self.queues
        qlimit = self.qlimit
        stats = self.stats
        running = self.running
        c_wake = self.c_wake
        _input = self._input
        proto = self.snap_proto
        wait = 0
        n = len(arrivals)
        i = 0
        while True:
            until = arrivals[i][1].stamp_ns if i < n else end
            while True:
                if not snap:
                    for p, q in queues.items():
                        if q:
                            snap = q
                            queues[p] = deque()
                            proto = self.snap_proto = p
                            break
                    else:
                        running = False      # nothing pending: the swi sleeps
                        break
                    if not running:
                        running = True
                        t = snap[0].stamp_ns
                        if clock <= t:       # it slept: the enqueue woke it (swi_sched)
                            self.wakeups += 1
                            th.charge(t, t + c_wake)
                            clock = t + c_wake
                if clock >= until:
                    break
                m = snap.popleft()
                if clock < m.stamp_ns:
                    clock = m.stamp_ns
                wait += clock - m.stamp_ns
                cost = _input(m, out, clock)
                if clock >= start:
                    if clock + cost <= end:
                        busy += cost
                    else:
                        th.charge(clock, clock + cost)
                elif clock >= prev and clock + cost <= start:
                    busy_prev += cost     # served in the previous window
                else:
                    th.charge(clock, clock + cost)
                clock += cost
                stats[proto]["handled"] += 1
                self.waited += 1
            if i >= n:
                break
            p, m = arrivals[i]
            i += 1
            q = queues[p]
            st = stats[p]
            if len(q) >= qlimit[p]:
                st["qdrops"] += 1
                if self.tap is not None:
                    self.tap.add(m, True, "netisr_qdrops")
                m_freem(self.uma, m)
                continue
            q.append(m)
            st["queued"] += 1
            if len(q) > st["wmark"]:
                st["wmark"] = len(q)
        self.snap = snap
        self.running = running
        self.wait_ns += wait
        th.clock = clock
        th.add(start, busy)
        th.add(prev, busy_prev)

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
    def _absorb(self, frags, datagram) -> None:
        """The fragments went into `datagram`: their mbufs are freed; all but
        one of the frames are accounted as absorbed (the datagram carries on
        for the last)."""
        for f in frags:
            if self.tap is not None:
                self.tap.add(f[2], False, f"fragment reassembled into datagram {datagram.pkt_id}")
            m_freem(self.uma, f[2])
        self.absorbed += len(frags) - 1

    def _adopt(self, m2, first) -> None:
        """The reassembled datagram takes the packet header of its first fragment."""
        for f in ("rcvif", "vnet", "flowid", "hashtype", "fib", "vlan", "arrival_ns",
                  "stamp_ns", "pkt_id", "hdr_cpu", "hdr_ns", "data_cpu", "data_ns"):
            setattr(m2, f, getattr(first, f))
        m2.flags |= first.flags & (M_BCAST | M_MCAST)

    def _reass4(self, m, r, now: int, cnt):
        hl = r[1]
        d = m.st.data
        o = m.off
        offw = (d[o + 6] << 8) | d[o + 7]
        mf = bool(offw & 0x2000)
        off = (offw & 0x1FFF) << 3
        data = d[o + hl:o + m.len]
        if not data or (mf and len(data) & 7):
            cnt["ips_toosmall"] += 1
            cnt["ips_fragdropped"] += 1
            self._end(m, "ips_toosmall", None)
            return None
        cnt["ips_fragments"] += 1
        key = (d[o + 12:o + 20], d[o + 4:o + 6], d[o + 9])
        res = self.reass4.input(m, key, off, mf, (d[:o + hl], o, hl, m), data, now, cnt,
                                self._end_frag)
        if res is None:
            return None
        payload, frags, (first, l2, fhl, fm) = res
        if fhl + len(payload) > 65535:
            cnt["ips_toolong"] += 1
            for f in frags:
                cnt["ips_fragdropped"] += 1
                self._end(f[2], "ips_toolong", None)
            return None
        m2 = rebuild_v4(first, l2, fhl, payload, self.uma)
        self._adopt(m2, fm)
        self._absorb(frags, m2)
        return m2

    def _reass6(self, m, r, now: int, cnt):
        _, foff, nxt_off = r
        d = m.st.data
        o = m.off
        f = o + foff
        nxt = d[f]
        offw = (d[f + 2] << 8) | d[f + 3]
        mf = bool(offw & 1)
        off = offw & 0xFFF8
        data = d[f + 8:o + m.len]
        # the fragment header's next header takes its place in the chain
        first = bytearray(d[:f])
        first[o + nxt_off] = nxt
        if off == 0 and not mf:                      # an atomic fragment (RFC 6946)
            cnt["ip6s_atomicfrags"] += 1
            m2 = rebuild_v6(bytes(first), o, foff, data, self.uma)
            self._adopt(m2, m)
            self._absorb([[0, 0, m, b""]], m2)
            return m2
        if mf and (len(data) & 7 or not data):
            self._end(m, "ip6s_badfrag", None)   # ICMPv6 parameter problem, not a fragment
            return None
        cnt["ip6s_fragments"] += 1
        key = (d[o + 8:o + 40], d[f + 4:f + 8])
        res = self.reass6.input(m, key, off, mf, (bytes(first), o, foff, m), data, now, cnt,
                                self._end_frag)
        if res is None:
            return None
        payload, frags, (first, l2, unfrag, fm) = res
        if unfrag - 40 + len(payload) > 65535:
            cnt["ip6s_toolong"] += 1
            for fr in frags:
                cnt["ip6s_fragdropped"] += 1
                self._end(fr[2], "ip6s_toolong", None)
            return None
        m2 = rebuild_v6(first, l2, unfrag, payload, self.uma)
        self._adopt(m2, fm)
        self._absorb(frags, m2)
        return m2

    def _end_frag(self, m, reason: str) -> None:
        self._end(m, reason, None)

    def _input(self, m, out: dict, now: int) -> int:
        """Run the protocol input path for m at time `now`; return its cost."""
        cnt = self.counters
        proto = self.snap_proto
        if proto == NETISR_IP:
            cost = self.c_ip
            r = ip_input(m, self.vnets, cnt)
        elif proto == NETISR_IPV6:
            cost = self.c_ip6
            r = ip6_input(m, self.vnets, cnt)
        else:
            self._end(m, arp_input(m, cnt), "arp")
            return self.c_ip
        if r.__class__ is str:
            self._end(m, r, None)
            return cost
        if r[0] < 0:                                 # a fragment: reassemble first
            cost += self.c_reass
            m = (self._reass6 if proto == NETISR_IPV6 else self._reass4)(m, r, now, cnt)
            if m is None:
                return cost
            r = ip6_nexthdr(m, cnt, first=False) if proto == NETISR_IPV6 else ip_deliver(m, r[1], cnt)
            if r.__class__ is str:
                self._end(m, r, None)
                return cost
            if r[0] < 0:                             # a second fragment header
                self._end(m, "ip6s_badfrag", None)
                return cost
        ulp, off = r
        if ulp == IPPROTO_TCP:                       # no TCP yet: checked, then no listener
            cost += self.c_udp
            self._end(m, tcp_input_hdr(m, off, proto == NETISR_IPV6, cnt), None)
            return cost
        if ulp != IPPROTO_UDP:                       # ICMP / ICMPv6: consumed here
            r = (icmp6_input if proto == NETISR_IPV6 else icmp_input)(m, off, cnt)
            self._end(m, r, "icmp6" if proto == NETISR_IPV6 else "icmp")
            return cost
        cost += self.c_udp
        r = udp_input_hdr(m, off, proto == NETISR_IPV6, cnt)
        if r is not None:
            self._end(m, r, None)
            return cost
        done = now + cost
        m.stamp_ns = m.hdr_ns = done
        m.hdr_cpu = self.cpu
        key = (self.vnet_actor[m.vnet], done // self.Q)
        b = out.get(key)
        if b is None:
            out[key] = [m]
        else:
            b.append(m)
        return cost

    # -- the window ---------------------------------------------------------
    def step(self, start, end, inbox):
        out_b = {}
        batches = []
        for msg in inbox:
            kind = msg[4]
            if kind == "debt":
                self.thread.pay_debt(start, msg[5][1])
            else:
                p = NAME_TO_PROTO[kind[5:]]
                batches.append([(p, m) for m in msg[5]])
        if len(batches) == 1:
            arrivals = batches[0]
        else:
            # stamp order; ties keep the canonical inbox order (stable sort)
            arrivals = [a for b in batches for a in b]
            arrivals.sort(key=_stamp)
        self._run(arrivals, start, end, out_b)
        if self.reass4.q or self.reass6.q:       # ip_slowtimo / frag6_slowtimo
            self.reass4.expire(end, self.counters, self._end_frag)
            self.reass6.expire(end, self.counters, self._end_frag)
        out = []
        self.thread.report(out, end)
        for (dest, w), mbufs in out_b.items():
            out.append((dest, "pkts.udp", mbufs, max(end, w * self.Q)))
        return out

    # -- accounting ---------------------------------------------------------
    def holding(self) -> int:
        return (len(self.snap) + sum(len(q) for q in self.queues.values())
                + self.reass4.holding() + self.reass6.holding())

    @property
    def delivered(self) -> int:
        return sum(self.consumed.values())

    def teardown(self) -> None:
        """End of run: free what is still queued."""
        for q in [self.snap, *self.queues.values()]:
            while q:
                m_freem(self.uma, q.popleft())
        for r in (self.reass4, self.reass6):
            for q in r.q.values():
                for f in q.frags:
                    m_freem(self.uma, f[2])
            r.q.clear()

    def dropped(self) -> dict:
        d = dict(self.drops)
        n = sum(s["qdrops"] for s in self.stats.values())
        if n:
            d["netisr_qdrops"] = n
        return d

    def metrics(self):
        return {
            "wsid": self.wsid, "cpu": self.cpu,
            "protocols": {ISR_NAMES[p]: dict(s, qlen=len(self.queues[p]) + (len(self.snap) if self.snap_proto == p else 0),
                                             qlimit=self.qlimit[p])
                          for p, s in sorted(self.stats.items())},
            "drops": dict(sorted(self.dropped().items())),
            "counters": {k: v for k, v in sorted(self.counters.items()) if v},
            "consumed": dict(sorted(self.consumed.items())),
            "absorbed": self.absorbed,
            "reassembly_queues": len(self.reass4.q) + len(self.reass6.q),
            "busy_ns": self.thread.busy_total, "stall_ns": self.thread.debt_total,
            "wakeups": self.wakeups,
            "queue_wait_ns_total": self.wait_ns, "queue_waits": self.waited,
            "uma": self.uma.to_dict(),
        }


def _stamp(a):
    return a[1].stamp_ns
