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

Direct dispatch does not come here: the NIC's ithread runs the protocol
handlers itself (actors/nic.py, actors/proto_input.py).

Hybrid dispatch (net.isr.dispatch=hybrid): a workstream publishes its state
every window (as of which window, when its thread is next free, what it
still holds) to the NICs; an ithread runs the handlers itself when the
target workstream is on its own CPU and, by the latest state it has, idle
with nothing of this ithread's still on the way to it - else it queues.  The
state is one to two windows old (the model's bound on hybrid's timing); it
never lets a packet overtake one the ithread queued before, so per-flow
order holds as in FreeBSD.

Threads: with net.isr.bindthreads=1 workstream i's thread is bound to CPU
i; with 0 (FreeBSD's default) it starts there and the ULE model
(actors/sched.py) places it at every wakeup and lets an idle CPU steal it.
The workstream itself stays CPU i's (netstat -Q's CPU column).  A woken
thread pays `netisr_wakeup` plus a context switch and touches its own
state's cache lines; loopback packets that preempted their sender are
marked (M_PREEMPT) and always wake it (actors/app.py says why).

What it leaves out: the 2006 single `swi1: net` thread with its 50-packet
ipintrq, and the cost of the software RSS hash.
"""

from __future__ import annotations

from operator import itemgetter

from .base import MSG_CODE, MSG_CSTATE, MSG_DEBT, MSG_MDEBT, Actor, KThread, PRI_SWI_NET
from .cache import MBUF_HDR_LINES, PKT_DATA_LINES, QUEUE_LINES, THREAD_LINES, MemView, zeros
from .sched import Loads, pick_thread_cpu, steal
from .costs import to_ns
from .ether_input import NETISR_ARP, NETISR_IP, NETISR_IPV6, ISR_NAMES
from .mbuf import (M_HASHTYPE_NONE, M_HASHTYPE_RSS_IPV4, M_HASHTYPE_RSS_IPV6,
                   M_HASHTYPE_RSS_TCP_IPV4, M_HASHTYPE_RSS_TCP_IPV6, M_PREEMPT, m_freem)
from .proto_input import ProtoInput
from .toeplitz import toeplitz_hash

POLICY_SOURCE, POLICY_FLOW, POLICY_CPU, POLICY_SPREAD = 1, 2, 3, 99
_P_FLOW, _P_CPU, _P_SPREAD = POLICY_FLOW, POLICY_CPU, POLICY_SPREAD    # C constants when compiled
_M_DEBT, _M_CSTATE, _M_MDEBT = MSG_DEBT, MSG_CSTATE, MSG_MDEBT
POLICY_NAMES = {POLICY_SOURCE: "source", POLICY_FLOW: "flow", POLICY_CPU: "cpu",
                POLICY_SPREAD: "spread"}
POLICY_BY_NAME = {v: k for k, v in POLICY_NAMES.items()}
# registered protocols: number -> (name, policy)
PROTOCOLS = {NETISR_IP: ("ip", POLICY_FLOW), NETISR_ARP: ("arp", POLICY_SOURCE),
             NETISR_IPV6: ("ip6", POLICY_FLOW)}
NAME_TO_PROTO = {v[0]: k for k, v in PROTOCOLS.items()}
KIND_TO_PROTO = {"pkts." + n: p for n, p in NAME_TO_PROTO.items()}     # "pkts.ip" -> NETISR_IP
# the hash types rss_hash2cpuid maps to a CPU (sys/netinet/in_rss.c)
RSS_HASH_TYPES = frozenset((M_HASHTYPE_RSS_IPV4, M_HASHTYPE_RSS_TCP_IPV4, M_HASHTYPE_RSS_IPV6,
                            M_HASHTYPE_RSS_TCP_IPV6, 0x87, 0x89))


_first = itemgetter(0)      # an arrival's stamp: the sort key
_SOFT_MEMO = {}


def soft_hash(m) -> None:
    """rss_mbuf_software_hash_v4/_v6 (2-tuple): stamp m with the Toeplitz
    hash of its IP addresses, if it has a whole IP header; else leave it."""
    d = m.st.data
    o = m.off
    if m.len >= 20 and d[o] >> 4 == 4:
        key, htype = d[o + 12:o + 20], M_HASHTYPE_RSS_IPV4
    elif m.len >= 40 and d[o] >> 4 == 6:
        key, htype = d[o + 8:o + 40], M_HASHTYPE_RSS_IPV6
    else:
        return
    h = _SOFT_MEMO.get(key)
    if h is None:
        if len(_SOFT_MEMO) > 65536:
            _SOFT_MEMO.clear()
        h = _SOFT_MEMO[key] = toeplitz_hash(key)
    m.flowid = h
    m.hashtype = htype


class NetisrConfig:
    """What a dispatching thread needs to know: workstreams, policies, pins.

    `policy` maps protocol name to "source", "flow", "cpu" (netisr2's three),
    or "spread" (netcabal's deliberately unordered round-robin, to measure
    what ordering is worth); `pin` maps an interface ("ix0") or an rx queue
    ("ix0:rxq1") to a workstream, overriding the policy for what it receives
    (as binding an ifnet's traffic to a netisr would); `ncpus` is the number of
    CPUs for the CPU policy's RSS bucket map."""

    __slots__ = ("nws", "names", "policy", "pin", "ncpus", "rr", "hybrid")

    def __init__(self, cfg: dict):
        self.names = list(cfg["workstreams"])      # actor names, WSID order
        self.nws = len(self.names)
        pol = cfg.get("policy", {})
        self.policy = {p: POLICY_BY_NAME.get(pol.get(ISR_NAMES[p]), default)
                       for p, (_, default) in PROTOCOLS.items()}
        self.pin = dict(cfg.get("pin", {}))
        self.ncpus = cfg.get("ncpus", self.nws)
        self.rr = 0
        self.hybrid = cfg.get("dispatch") == "hybrid"

    def select(self, proto: int, m, if_index: int, source: int = 0, cur_cpu: int = 0,
               queue: str = ""):
        """netisr_select_cpuid: the workstream actor for packet m, or None."""
        p = self.policy.get(proto)
        if p is None:
            return None
        pol = p                 # (a C int when compiled, as are n and the flowid)
        n = self.nws
        if n == 1:
            return self.names[0]
        if self.pin:
            ws = self.pin.get(queue, self.pin.get(m.rcvif))
            if ws is not None:
                return self.names[ws % n]
        if pol == _P_FLOW:
            if m.hashtype != M_HASHTYPE_NONE:
                fid = m.flowid
                return self.names[fid % n]
        elif pol == _P_CPU:
            # rss_soft_m2cpuid_v4/_v6: keep a NIC hash of a plain RSS type,
            # else compute the software Toeplitz hash (the 2-tuple: FreeBSD
            # leaves UDP ports out) and stamp it; the RSS bucket's CPU
            # (buckets 2^bits >= 2 x CPUs, dealt round-robin to the CPUs).
            # A packet no hash applies to: NETISR_CPUID_NONE, which under
            # hybrid dispatch means the current CPU and else the source policy
            if m.hashtype not in RSS_HASH_TYPES:
                soft_hash(m)
            if m.hashtype in RSS_HASH_TYPES:
                nb = 1
                while nb < 2 * self.ncpus and nb < 128:
                    nb <<= 1
                cpu = (m.flowid & (nb - 1)) % self.ncpus
                return self.names[cpu % n]          # netisr_get_cpuid: id % nws_count
            if self.hybrid:
                return self.names[cur_cpu % n]
        elif pol == _P_SPREAD:
            self.rr += 1
            return self.names[self.rr % n]
        return self.names[(if_index + source) % n]


class Netisr(Actor):
    """One netisr workstream: its thread, its per-protocol queues, its stats."""

    def __init__(self, wsid: int, cpu: int, host: dict, vnets: dict):
        self.wsid = wsid
        self.name = f"netisr{wsid}"
        self.cpu = cpu              # where the thread runs (moves when unbound)
        self.ws_cpu = cpu           # the workstream's CPU (nws_array: fixed)
        costs = host["costs"]
        ghz = host["ghz"]
        self.c_wake = to_ns(costs["netisr_wakeup"], ghz) + to_ns(costs["context_switch"], ghz)
        self.c_migr = to_ns(costs["migration"], ghz)
        topo = host.get("topology")
        self.mem = MemView(topo, self.name) if topo is not None else None
        ncpu = host.get("cpus", cpu + 1)
        self.loads = Loads(ncpu, host["quantum_ns"], topo.pkg if topo else [0] * ncpu)
        self.pub_c = [0] * ncpu
        self.bound = host["netisr"].get("bindthreads", 1) == 1
        self.sleep_at = None        # when the thread went to sleep, until confirmed
        # deferred wakeups: our sleeps are the readers' scheduling points
        self.points = [] if host.get("wakeup", {}).get("mode") == "deferred" else None
        self.vnet_actors = sorted(v["actor"] for v in vnets.values())
        self.loopback = host.get("loopback", False)
        self.svc = to_ns(costs["ip_input"] + costs["udp_input"], ghz)   # until measured
        self.svc_sum = self.svc_n = 0
        self.wake = self.c_wake     # ... and the time a wakeup takes before the first packet
        self.wake_sum = self.wake_n = 0
        self.moved = False
        self.Q = host["quantum_ns"]
        qlimits = host["netisr"]["qlimit"]
        self.thread = KThread(f"netisr {wsid}", self.name, cpu, PRI_SWI_NET, host["quantum_ns"])
        # the per-protocol queues (lists: appended at the tail), and the
        # snapshot being drained, from snap_i on (served entries cleared)
        self.queues = {p: [] for p in sorted(PROTOCOLS)}
        self.snap = []
        self.snap_i = 0
        self.snap_proto = 0
        self.running = False
        self.pi = ProtoInput(host, vnets, cpu, mem=self.mem)   # the protocol handlers this thread runs
        self.uma = self.pi.uma
        self.tap = self.pi.tap
        # per-protocol counters, int64 arrays indexed by protocol number
        # (the workstream's nws_work fields); qlim the queue limits so
        n = max(PROTOCOLS) + 1
        self.queued = zeros(n)
        self.handled = zeros(n)
        self.qdrops = zeros(n)
        self.wmark = zeros(n)
        self.qlim = zeros(n)
        for p in PROTOCOLS:
            self.qlim[p] = qlimits[ISR_NAMES[p]]
        self.hybrid = host["netisr"].get("dispatch") == "hybrid"
        self.nics = list(host["netisr"].get("nics", []))
        self.wait_ns = 0            # total time packets waited in the queue
        self.waited = 0
        self.wakeups = 0

    # -- the worker ---------------------------------------------------------
    def _run(self, arrivals: list, start: int, end: int, out: dict) -> None:
        """Enqueue `arrivals` ((stamp, index, proto, mbuf) in stamp order)
        while running the worker up to each arrival's time, then up to `end`."""
        th = self.thread
        clock = th.clock
        busy = 0                # ns used inside [start, end); th.charge() for the rest
        busy_prev = 0           # ... and inside [start - Q, start)
        prev = start - self.Q
        snap = self.snap
        si = self.snap_i
        queues = self.queues
        qlim = self.qlim
        queued = self.queued
        handled = self.handled
        wmark = self.wmark
        running = self.running
        c_wake = self.c_wake
        c_migr = self.c_migr
        mem = self.mem
        pi = self.pi
        proto = self.snap_proto
        wait = 0
        svc = 0                 # service ns and packets served, added to the
        served = 0              # netisr's totals once, at the end
        n = len(arrivals)
        i = 0
        while True:
            if i < n:
                nx = arrivals[i][3]
                until = nx.stamp_ns
                if nx.flags & M_PREEMPT:
                    # its enqueue preempts the sender, which goes on only once we
                    # have run it: whatever we hold is done first, then we sleep
                    until = 1 << 62
            else:
                until = end
            while True:
                if si >= len(snap):
                    for p, q in queues.items():
                        if q:
                            snap = q
                            si = 0
                            queues[p] = []
                            proto = self.snap_proto = p
                            break
                    else:
                        if running:          # nothing pending: the swi sleeps - unless
                            self.sleep_at = clock  # a packet stamped earlier is on its way
                        running = False
                        break
                    hd = snap[0]            # the head of the queue taken
                    if not running:
                        running = True
                        t = hd.stamp_ns
                        # it slept, and the enqueue woke it (swi_sched); a wakeup
                        # that preempted its sender did too, even if our
                        # clock ran a little past it (the sender waited for us
                        # by our published times, not our exact ones)
                        if clock <= t or (hd.flags & M_PREEMPT and self.sleep_at is not None):
                            if self.sleep_at is not None:
                                self._slept(self.sleep_at)
                            self.wakeups += 1
                            if clock < t:
                                clock = t
                            w0 = clock
                            if not self.bound:     # ULE places the woken thread
                                nc = pick_thread_cpu(self.loads, PRI_SWI_NET, th.cpu,
                                                     hd.line_cpu if hd.line_cpu >= 0 else None,
                                                     th.name)
                                if nc != th.cpu:
                                    th.move(nc)
                                    self.cpu = self.pi.cpu = nc
                                    self.moved = True
                                    th.charge(clock, clock + c_migr)
                                    clock += c_migr
                            th.wake(w0, bool(hd.flags & M_PREEMPT))
                            c = c_wake
                            if mem is not None:
                                c += mem.touch_rec(th.cpu, th.state, THREAD_LINES)
                            th.charge(clock, clock + c)
                            clock += c
                            self.wake_sum += clock - w0
                            self.wake_n += 1
                        else:                # it was still busy: the burst goes on
                            self.sleep_at = None
                    if mem is not None:      # the queue head, last written by the enqueuer
                        c = mem.charge(th.cpu, mem.between(th.cpu, hd.line_cpu
                                                           if hd.line_cpu >= 0 else th.cpu),
                                       QUEUE_LINES)
                        t = hd.stamp_ns
                        if clock > t:
                            t = clock
                        th.charge(t, t + c)
                        clock = t + c
                        self.wake_sum += c
                if clock >= until:
                    break
                m = snap[si]
                snap[si] = None
                si += 1
                t = m.stamp_ns
                if clock < t:
                    clock = t
                wait += clock - t
                if mem is not None:          # the packet's lines, from the enqueuer's core
                    cost = mem.touch_m(th.cpu, m, MBUF_HDR_LINES + PKT_DATA_LINES)
                    cost += pi.input(m, proto, out, clock + cost)
                else:
                    cost = pi.input(m, proto, out, clock)
                svc += cost
                served += 1
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
                handled[proto] += 1
            if i >= n:
                break
            a = arrivals[i]
            p = a[2]
            m = a[3]
            i += 1
            q = queues[p]
            if len(q) >= qlim[p]:
                self.qdrops[p] += 1
                if self.tap is not None:
                    self.tap.add(m, True, "netisr_qdrops")
                m_freem(self.uma, m)
                continue
            q.append(m)
            queued[p] += 1
            if len(q) > wmark[p]:
                wmark[p] = len(q)
        self.snap = snap
        self.snap_i = si
        self.running = running
        self.wait_ns += wait
        self.svc_sum += svc
        self.svc_n += served
        self.waited += served
        th.clock = clock
        th.add(start, busy)
        th.add(prev, busy_prev)

    def _slept(self, t: int) -> None:
        """The thread went to sleep at t (now sure of it)."""
        self.thread.sleep(t)
        self.sleep_at = None
        if self.points is not None:
            self.points.append([self.thread.cpu, t])

    # -- the window ---------------------------------------------------------
    def step(self, start, end, inbox):
        out_b = {}
        arrivals = []
        nb = 0
        k = 0
        pub = False
        code_of = MSG_CODE
        for msg in inbox:
            kind = msg[4]
            code = code_of.get(kind, 0)
            if code == _M_DEBT:
                self.thread.pay_debt(start, msg[5][1])
            elif code == _M_CSTATE:
                c, touched, demand = msg[5]
                self.pub_c[c] = touched
                self.loads.set(c, demand)
                pub = True
            elif code == _M_MDEBT:
                self.thread.pay_stall(start, msg[5][1])
                self.svc_sum += msg[5][1]       # part of our service time
            else:
                p = KIND_TO_PROTO[kind]
                for m in msg[5]:
                    arrivals.append((m.stamp_ns, k, p, m))
                    k += 1
                nb += 1
        if pub and self.mem is not None:
            self.mem.publish(self.pub_c)
        th = self.thread
        if pub and not self.bound and self.running:
            # still running where it waits behind others: an idle CPU steals it
            nc = steal(self.loads, PRI_SWI_NET, th.cpu, th.name)
            if nc != th.cpu:
                th.move(nc)
                self.cpu = self.pi.cpu = nc
                self.moved = True
                if th.clock < start:
                    th.clock = start
                th.charge(th.clock, th.clock + self.c_migr)
                th.clock += self.c_migr
        if nb > 1:
            # stamp order; ties keep the canonical inbox order (the index:
            # the sort is stable, so the stamp alone is the key)
            arrivals.sort(key=_first)
        if self.sleep_at is not None and not arrivals and self.sleep_at < start:
            self._slept(self.sleep_at)           # nothing came: it did sleep
        self._run(arrivals, start, end, out_b)
        self.pi.expire(end)
        out = []
        self.thread.report(out, end)
        if self.mem is not None:
            self.mem.report(out, end)
        if self.moved and not self.hybrid:
            for nic in self.nics:     # where the queue heads are now
                out.append((nic, "ws_state", [self.wsid, self.cpu, start // self.Q,
                                              self.thread.clock, self.holding()], end))
        self.moved = False
        if self.points:
            for v in self.vnet_actors:
                out.append((v, "sched_point", self.points, end))
            self.points = []
        if self.loopback:
            # for senders on our CPU, whom our wakeups preempt (actors/app.py)
            if self.svc_n:
                self.svc = self.svc_sum // self.svc_n
            if self.wake_n:
                self.wake = self.wake_sum // self.wake_n
            self.svc_sum = self.svc_n = self.wake_sum = self.wake_n = 0
            st = [self.wsid, self.thread.cpu, self.svc, self.wake]
            for v in self.vnet_actors:
                out.append((v, "isr_state", st, end))
        if self.hybrid:
            # publish our state for hybrid dispatchers: the window it is as of,
            # when the thread is next free, and what is still pending
            st = [self.wsid, self.cpu, start // self.Q, self.thread.clock, self.holding()]
            for nic in self.nics:
                out.append((nic, "ws_state", st, end))
        for (dest, w, kind), mbufs in out_b.items():
            out.append((dest, kind, mbufs, max(end, w * self.Q)))
        return out

    # -- accounting ---------------------------------------------------------
    def holding(self) -> int:
        return (len(self.snap) - self.snap_i + sum(len(q) for q in self.queues.values())
                + self.pi.holding())

    @property
    def delivered(self) -> int:
        return sum(self.pi.consumed.values())

    @property
    def absorbed(self) -> int:
        return self.pi.absorbed

    def teardown(self) -> None:
        """End of run: free what is still queued."""
        for q in [self.snap[self.snap_i:], *self.queues.values()]:
            for m in q:
                m_freem(self.uma, m)
        self.snap = []
        self.snap_i = 0
        self.queues = {p: [] for p in self.queues}
        self.pi.teardown()

    def dropped(self) -> dict:
        d = dict(self.pi.drops)
        n = sum(self.qdrops)
        if n:
            d["netisr_qdrops"] = n
        return d

    def _proto_stats(self, p: int) -> dict:
        """Protocol p's counters and queue, as netstat -Q shows them."""
        qlen = len(self.queues[p])
        if self.snap_proto == p:
            qlen += len(self.snap) - self.snap_i
        return {"queued": self.queued[p], "handled": self.handled[p], "qdrops": self.qdrops[p],
                "wmark": self.wmark[p], "qlen": qlen, "qlimit": self.qlim[p]}

    def metrics(self):
        return {
            "wsid": self.wsid, "cpu": self.cpu, "ws_cpu": self.ws_cpu, "bound": self.bound,
            "migrations": self.thread.migrations,
            "protocols": {ISR_NAMES[p]: self._proto_stats(p) for p in sorted(PROTOCOLS)},
            "drops": dict(sorted(self.dropped().items())),
            "counters": {k: v for k, v in sorted(self.pi.counters.items()) if v},
            "consumed": dict(sorted(self.pi.consumed.items())),
            "absorbed": self.pi.absorbed,
            "reassembly_queues": len(self.pi.reass4.q) + len(self.pi.reass6.q),
            "busy_ns": self.thread.busy_total, "stall_ns": self.thread.debt_total,
            "wakeups": self.wakeups,
            "queue_wait_ns_total": self.wait_ns, "queue_waits": self.waited,
            "uma": self.uma.to_dict(),
        }

