"""nic: a network interface with its wire, RSS, rx rings and ithreads.

What this models.

* The wire: the scenario's traffic sources attached to this interface.
* Receive-side scaling in hardware: the Toeplitz hash (actors/toeplitz.py)
  over the TCP 4-tuple, or the IP 2-tuple for anything else (FreeBSD hashes
  UDP on the 2-tuple by default) picks an
  entry of a 128-entry indirection table whose entry i names queue
  i mod nqueues; the hash is stamped on the mbuf as its flowid with hash
  type RSS_IPV4 / RSS_IPV6.  Non-IP frames get no hash and land on queue 0.
* `rss = false`: a NIC without RSS - every frame on queue 0, its flowid the
  queue number with hash type OPAQUE (as drivers without RSS are believed
  to stamp it; unconfirmed in the sources).
* Receive checksum offload (`rxcsum`, on by default as for ix/igb/em): the
  "hardware" verifies the IPv4 header and UDP checksums and marks good
  packets CSUM_IP_CHECKED|CSUM_IP_VALID and CSUM_DATA_VALID|CSUM_PSEUDO_HDR
  (csum_data 0xffff); bad ones are left unmarked and the stack recomputes
  them in software, as FreeBSD does.
* One rx ring per queue with `ring_size` descriptors: a frame that finds the
  ring full is dropped (counted `if_iqdrops`, the ifnet counter behind
  `netstat -i` Idrop).
* One MSI-X vector and one ithread per queue: the vector pinned to a CPU or
  floating (the APIC's rotation), the ithread bound with it or placed by the
  ULE model (actors/sched.py) at each interrupt; the interrupt's own cost is
  charged on the CPU it lands on.  Interrupt moderation: after an interrupt the vector stays quiet for
  `itr_us` (ITR/EITR); when it fires the ithread (priority PI_NET) pays the
  interrupt cost, then drains its ring - packets that arrive while it works
  are taken in the same pass, as iflib's re-enqueued rx task does - and
  sleeps with the vector re-armed once the ring is empty.
* Per packet the ithread runs the driver's rx (mbuf from the packet zone),
  `ether_input`, and `netisr_dispatch`, which under deferred dispatch queues
  the packet on the workstream that the protocol's policy picks
  (actors/netisr.py) with the time stamp at which it was queued, and under
  direct dispatch runs the protocol handlers itself (actors/proto_input.py).

What it leaves out: transmit, the rx_process_limit budget and its fairness
between queues, adaptive moderation (AIM), descriptor write-back latency,
and hardware drops other than a full ring.  Hybrid dispatch decides on workstream state one to two windows old
(see actors/netisr.py).
"""

from __future__ import annotations

from . import netisr as isr
from .base import (MSG_CODE, MSG_CSTATE, MSG_DEBT, MSG_MDEBT, MSG_WS_STATE, Actor, KThread,
                   PRI_INTR, PRI_ITHD, make_tap)
from .cache import MBUF_HDR_LINES, PKT_DATA_LINES, QUEUE_LINES, THREAD_LINES, MemView
from .sched import Loads, balance_vector_cpu, float_vector_cpu, pick_ithread_cpu
from .proto_input import ProtoInput
from .costs import to_ns
from .ether_input import ISR_NAMES, ether_input, rawip_input, sll_input, vlan_table
from .inet import IPPROTO_TCP, IPPROTO_UDP, toeplitz_at, word_sum
from .mbuf import (CSUM_DATA_VALID, CSUM_IP_CHECKED, CSUM_IP_VALID, CSUM_PSEUDO_HDR,
                   M_HASHTYPE_NONE, M_HASHTYPE_OPAQUE, M_HASHTYPE_RSS_IPV4, M_HASHTYPE_RSS_IPV6,
                   M_HASHTYPE_RSS_TCP_IPV4, M_HASHTYPE_RSS_TCP_IPV6, Uma, ZONE_INDEX,
                   m_alloc, m_freem)



# the message kinds the inbox loop takes (C constants when compiled)
_M_DEBT, _M_WS_STATE, _M_CSTATE, _M_MDEBT = MSG_DEBT, MSG_WS_STATE, MSG_CSTATE, MSG_MDEBT


def _sum_counters(pis, what="counters") -> dict:
    out = {}
    for pi in pis:
        for k, v in getattr(pi, what).items():
            if v:
                out[k] = out.get(k, 0) + v
    return dict(sorted(out.items()))


def _t(a):
    return a[0]


def _by_proto(d: dict, cpu=None) -> dict:
    """{(cpu, proto): n} -> {protocol name: n}, for one CPU or all."""
    out = {}
    for (c, p), n in d.items():
        if cpu is None or c == cpu:
            out[ISR_NAMES[p]] = out.get(ISR_NAMES[p], 0) + n
    return dict(sorted(out.items()))


def m_free_unused(uma: Uma, m) -> None:
    """A frame that found the ring full was never DMA'd: no buffer was used."""
    for z in m.st.zones:
        uma.a[ZONE_INDEX[z]] -= 1
    m.freed = True
from .toeplitz import RSS_KEY, flat_tables

RSS_TABLE = 128
# the receive checksum flags hw_rx sets (C int64 constants when compiled)
_CSUM_IP_OK = CSUM_IP_CHECKED | CSUM_IP_VALID
_CSUM_IP_BAD = CSUM_IP_CHECKED
_CSUM_L4_OK = CSUM_DATA_VALID | CSUM_PSEUDO_HDR
PKT_KIND = {p: "pkts." + n for p, n in ISR_NAMES.items()}
# the ethertypes and protocols the receive parser tests (C constants when
# compiled: comparing a C integer with a Python constant boxes the integer)
_V4 = 0x0800
_V6 = 0x86DD
_VLAN = 0x8100
_QINQ = 0x88A8
_TCP = IPPROTO_TCP
_UDP = IPPROTO_UDP


class RxQueue:
    """One rx ring and the ithread that drains it."""

    __slots__ = ("index", "ring", "ring_h", "thread", "running", "last_intr", "interrupts",
                 "packets", "drops", "direct", "hybrid", "vec_cpu", "floating", "irq",
                 "vector", "pk")

    def __init__(self, index: int, thread: KThread, vec_cpu, floating: bool, irq: KThread,
                 vector: int):
        self.index = index
        # the ring: a list whose live entries start at ring_h (the ithread
        # takes from the head and clears the slot; the list is cut back once
        # the head has passed a ring's worth)
        self.ring = []
        self.ring_h = 0
        self.thread = thread
        self.vec_cpu = vec_cpu          # the MSI-X vector's CPU, or None: floating
        self.floating = floating        # the ithread is placed by the scheduler
        self.irq = irq                  # interrupt context on a CPU other than the ithread's
        self.vector = vector
        self.running = False
        self.last_intr = -(1 << 62)
        self.interrupts = 0
        self.packets = 0
        self.drops = 0
        self.direct = {}        # (cpu, netisr protocol) -> packets dispatched directly
        self.hybrid = {}        # ... and directly under hybrid dispatch
        self.pk = {}            # cpu -> packets the ithread took off the ring there


class Nic(Actor):
    def __init__(self, cfg: dict, host: dict, sources: list, vnets: dict | None = None):
        self.name = cfg["name"]
        self.if_index = cfg["if_index"]
        self.mac = cfg["mac"]
        self.promisc = cfg.get("promisc", False)
        self.accept_any = cfg.get("rxfilter", "mac") == "any"
        self.linktype = cfg.get("linktype", "ether")
        self.link_input = {"raw": rawip_input, "sll": sll_input,
                           "sll2": lambda m: sll_input(m, True)}.get(self.linktype)
        # VLAN interfaces reached through this NIC: parent -> VID -> name
        # (ether_input.vlan_table), and every interface's vnet
        self.vlans = vlan_table([(v["parent"], v["vid"], v["name"]) for v in cfg.get("vlans", [])])
        self.if_vnet = {v["name"]: v["vnet"] for v in cfg.get("vlans", [])}
        self.rxcsum = cfg.get("rxcsum", True)
        self.rss = cfg.get("rss", True)
        self.irq_balance = cfg.get("irq_balance", False)
        self.vnet = cfg["vnet"]
        self.ring_size = cfg["ring_size"]
        self.itr_ns = cfg["itr_ns"]
        ghz = host["ghz"]
        costs = host["costs"]
        self.c_intr = to_ns(costs["interrupt"], ghz)
        self.c_csw = to_ns(costs["context_switch"], ghz)
        self.c_migr = to_ns(costs["migration"], ghz)
        # deferred wakeups: our ithreads' sleeps are the readers' scheduling points
        self.points = [] if host.get("wakeup", {}).get("mode") == "deferred" else None
        self.vnet_actors = sorted(v["actor"] for v in (vnets or {}).values())
        self.ncpu = host["cpus"]
        topo = host.get("topology")
        self.mem = MemView(topo, self.name) if topo is not None else None
        self.loads = Loads(host["cpus"], host["quantum_ns"], topo.pkg if topo else [0] * host["cpus"])
        self.pub_c = [0] * host["cpus"]
        self.c_pkt = to_ns(costs["driver_rx"] + costs["ether_input"] + costs["netisr_queue"], ghz)
        self.c_drop = to_ns(costs["driver_rx"] + costs["ether_input"], ghz)
        self.c_vlan = to_ns(costs["vlan_input"], ghz)
        self.Q = host["quantum_ns"]
        self.dispatch = isr.NetisrConfig(host["netisr"])
        nq = cfg["queues"]
        irq = cfg["irq_cpus"]           # per vector: a CPU, or None (floating)
        ith = cfg.get("ithread_cpus") or irq
        base = cfg.get("vector_base", 0)
        self.rxq = []
        for q in range(nq):
            home = ith[q] if ith[q] is not None else (irq[q] if irq[q] is not None else (base + q) % self.ncpu)
            th = KThread(f"{self.name}:rxq{q}", self.name, home, PRI_ITHD, self.Q)
            iq = KThread(f"irq{base + q}: {self.name}:rxq{q}", self.name, home, PRI_INTR, self.Q)
            self.rxq.append(RxQueue(q, th, irq[q], ith[q] is None, iq, base + q))
        self.threads = {r.thread.name: r.thread for r in self.rxq}
        self.threads.update({r.irq.name: r.irq for r in self.rxq})
        self.ws_cpu = dict(zip(host["netisr"]["workstreams"], host["netisr"]["cpus"]))
        self.indir = [i % nq for i in range(RSS_TABLE)]
        self.sources = sources
        # TCP sources by their index (bits 32-39 of their packet ids)
        self.tcp_peers = {src.index & 0xFF: src for src in sources if hasattr(src, "resend")}
        self.uma = Uma()
        self.tap = make_tap(host)
        # net.isr.dispatch=direct: the ithread runs the protocols itself, with
        # its own counters and reassembly queues (one ProtoInput per queue)
        self.direct = host["netisr"].get("dispatch", "deferred") == "direct"
        self.hybrid = host["netisr"].get("dispatch", "deferred") == "hybrid"
        self.ws_state = {}      # cpu -> (workstream, as of window, free at ns, pending)
        self.last_q = {}        # workstream -> last window we queued to it
        self.window = 0
        self.pis = [ProtoInput(host, vnets or {}, r.thread.cpu, self.uma, self.tap, self.mem)
                    for r in self.rxq]
        self.c_pkt_direct = to_ns(costs["driver_rx"] + costs["ether_input"], ghz)
        self.rss_tab = flat_tables(RSS_KEY)     # the Toeplitz tables, read in C by hw_rx
        self.rx_h = self.rx_htype = self.rx_csum = 0    # what _rx found for the last frame
        self.arrived = 0
        self.drops = {}

    # -- the hardware's view of a frame ----------------------------------------
    def hw_rx(self, f: bytes):
        """(RSS hash, hash type, checksum flags) of frame `f`: what _rx leaves."""
        self._rx(f)
        return self.rx_h, self.rx_htype, self.rx_csum

    def _rx_set(self, h: int, htype: int, csum: int) -> None:
        self.rx_h = h
        self.rx_htype = htype
        self.rx_csum = csum

    def _rx(self, f: bytes) -> None:
        """RSS hash, hash type and checksum-offload flags for frame `f`, left
        in rx_h, rx_htype and rx_csum (no tuple made a packet; hw_rx returns
        them as one).

        Like VLAN-aware RSS on ix/igb, the parser looks past up to two
        802.1Q / 802.1ad tags.  The hash and the checksums are computed
        from the frame's bytes in place (inet.toeplitz_at, inet.word_sum):
        compiled, no key bytes are made and nothing is remembered."""
        n = len(f)
        if n < 14:
            return self._rx_set(0, M_HASHTYPE_NONE, 0)
        et = f[12] << 8 | f[13]
        b = 14                                   # where the IP header starts
        if et == _VLAN or et == _QINQ:
            if n < 18:
                return self._rx_set(0, M_HASHTYPE_NONE, 0)
            et = f[16] << 8 | f[17]
            b = 18
            if et == _VLAN:
                if n < 22:
                    return self._rx_set(0, M_HASHTYPE_NONE, 0)
                et = f[20] << 8 | f[21]
                b = 22
        if et == _V4 and n >= b + 20 and f[b] >> 4 == 4:
            hl = (f[b] & 15) << 2
            u = b + hl
            tcp = (f[b + 9] == _TCP and not ((f[b + 6] << 8 | f[b + 7]) & 0x3FFF)
                   and n >= u + 4)
            # the hash of the addresses (then the ports), read in place
            tab = self.rss_tab
            h = toeplitz_at(tab, f, b + 12, 8, 0)
            if tcp:                     # TCP: the 4-tuple (RSS_HASHTYPE_TCP_IPV4)
                h ^= toeplitz_at(tab, f, u, 4, 8)
                htype = M_HASHTYPE_RSS_TCP_IPV4
            else:                       # UDP and the rest: the 2-tuple
                htype = M_HASHTYPE_RSS_IPV4
            v4 = True
        elif et == _V6 and n >= b + 40 and f[b] >> 4 == 6:
            tcp = f[b + 6] == _TCP and n >= b + 44
            if tcp:
                h = toeplitz_at(self.rss_tab, f, b + 8, 36, 0)
                htype = M_HASHTYPE_RSS_TCP_IPV6
            else:
                h = toeplitz_at(self.rss_tab, f, b + 8, 32, 0)
                htype = M_HASHTYPE_RSS_IPV6
            v4 = False
        else:
            return self._rx_set(0, M_HASHTYPE_NONE, 0)
        if not self.rxcsum:
            return self._rx_set(h, htype, 0)
        csum = 0
        if v4:
            if hl >= 20 and n >= b + hl:
                # the addresses' part of the pseudo-header sum (mod 0xffff)
                hs = word_sum(f, b + 12, b + 20)
                # the header's ones'-complement sum is 0xffff: its words sum
                # to 0 mod 0xffff (f[b] holds version 4, so never all zeros)
                csum = _CSUM_IP_OK if word_sum(f, b, b + hl) == 0 else _CSUM_IP_BAD
                iplen = (f[b + 2] << 8) | f[b + 3]
                ulp = f[b + 9]
                if (not ((f[b + 6] << 8 | f[b + 7]) & 0x3FFF) and hl + 8 <= iplen <= n - b
                        and (ulp == _TCP or (ulp == _UDP and (f[u + 6] or f[u + 7])))):
                    if (word_sum(f, u, b + iplen) + hs + ulp + iplen - hl) % 0xFFFF == 0:
                        csum |= _CSUM_L4_OK
        else:
            plen = (f[b + 4] << 8) | f[b + 5]
            ulp = f[b + 6]
            hs = word_sum(f, b + 8, b + 40)
            if (ulp == _UDP or ulp == _TCP) and 8 <= plen <= n - b - 40:
                if (word_sum(f, b + 40, b + 40 + plen) + hs + ulp + plen) % 0xFFFF == 0:
                    csum |= _CSUM_L4_OK
        return self._rx_set(h, htype, csum)

    def _drop(self, m, reason: str) -> None:
        self.drops[reason] = self.drops.get(reason, 0) + 1
        if self.tap is not None:
            self.tap.add(m, True, reason)
        m_freem(self.uma, m)

    # -- the ithread -------------------------------------------------------------
    def _run_queue(self, rx: RxQueue, arr: list, start: int, end: int, out: dict) -> None:
        """Admit `arr` (this queue's arrivals, in time order) to the ring while
        running the queue's ithread up to each arrival and then to `end`:
        interrupts, then packets off the ring.  Packets queued for netisrs go
        to `out`; under direct dispatch, datagrams for the vnets to self.vout."""
        th = rx.thread
        ring = rx.ring
        rh = rx.ring_h
        clock = th.clock
        busy = 0                # ns used inside [start, end); th.charge() for the rest
        running = rx.running
        last_intr = rx.last_intr
        itr = self.itr_ns
        c_intr = self.c_intr
        c_pkt = self.c_pkt
        ring_size = self.ring_size
        uma = self.uma
        mac = self.mac
        promisc = self.promisc
        ether = self.linktype == "ether"
        link_input = self.link_input
        vlans = self.vlans
        if_vnet = self.if_vnet
        accept_any = self.accept_any
        c_vlan = self.c_vlan
        c_csw = self.c_csw
        c_migr = self.c_migr
        points = self.points
        mem = self.mem
        ws_cpu = self.ws_cpu
        cpu = th.cpu
        qname = th.name
        direct = self.direct
        pi = self.pis[rx.index]
        c_pkt_direct = self.c_pkt_direct
        vout = self.vout
        hybrid = self.hybrid
        ws_state = self.ws_state
        last_q = self.last_q
        Q = self.Q
        disp = self.dispatch
        if_index = self.if_index
        n = len(arr)
        i = 0
        handled = 0
        last_w = -1             # the (dest, proto, window) batch the last packet joined
        last_proto = last_dest = last_b = None
        while True:
            if i < n:
                nx = arr[i]
                until = nx.arrival_ns
            else:
                until = end
            while True:
                if not running:
                    if rh >= len(ring):
                        break
                    hd = ring[rh]
                    t_int = hd.arrival_ns
                    if t_int < last_intr + itr:
                        t_int = last_intr + itr
                    if t_int >= until:
                        break
                    last_intr = t_int
                    rx.interrupts += 1
                    if clock < t_int:
                        clock = t_int
                    vcpu = rx.vec_cpu
                    if vcpu is None:
                        if self.irq_balance:  # the model's balancer: the least loaded CPU
                            vcpu = balance_vector_cpu(self.loads, rx.vector)
                        else:                 # floating: the APIC's rotation
                            vcpu = float_vector_cpu(rx.vector, rx.interrupts, self.ncpu)
                    w0 = clock
                    if rx.floating:          # ULE places the woken ithread
                        nc = pick_ithread_cpu(self.loads, PRI_ITHD, vcpu, cpu, th.name)
                        if nc != cpu:
                            th.add(start, busy)
                            busy = 0
                            rx.pk[cpu] = rx.pk.get(cpu, 0) + handled
                            rx.packets += handled
                            handled = 0
                            th.move(nc)
                            cpu = pi.cpu = nc
                            th.charge(clock, clock + c_migr)
                            clock += c_migr
                    if vcpu == cpu:          # the interrupt runs where the ithread will
                        th.intr()
                        c = c_intr
                    else:                    # interrupt context on the vector's CPU
                        iq = rx.irq
                        iq.move(vcpu, False)
                        iq.intr()
                        iq.wake(t_int)
                        iq.charge(t_int, t_int + c_intr)
                        iq.sleep(t_int + c_intr)
                        c = 0
                    th.wake(w0)
                    c += c_csw
                    if mem is not None:      # the thread's own lines (ring, softc, stack)
                        c += mem.touch_rec(cpu, th.state, THREAD_LINES)
                    if clock + c <= end:
                        busy += c
                    else:
                        th.charge(clock, clock + c)
                    clock += c
                    running = True
                if clock >= until:
                    break
                empty = rh >= len(ring)
                if not empty:
                    hd = ring[rh]
                    ta = hd.arrival_ns
                if empty or ta > clock:
                    running = False      # ring empty: re-arm the vector, sleep
                    th.sleep(clock)
                    if points is not None:
                        points.append([cpu, clock])
                    continue
                m = ring[rh]
                ring[rh] = None
                rh += 1
                if mem is not None:
                    # the header from the CPU that refilled the ring; the
                    # data DMA'd to memory
                    c = mem.rx_touch(cpu, m, MBUF_HDR_LINES, PKT_DATA_LINES)
                    if clock + c <= end:
                        busy += c
                    else:
                        th.charge(clock, clock + c)
                    clock += c
                if ether:
                    proto = ether_input(m, mac, promisc, vlans, accept_any)
                    if type(proto) is not str and m.vlan >= 0:
                        m.vnet = if_vnet.get(m.rcvif, m.vnet)
                        clock += c_vlan
                else:
                    proto = link_input(m)
                if type(proto) is str:
                    th.charge(clock, clock + self.c_drop)
                    clock += self.c_drop
                    self._drop(m, proto)
                    continue
                if direct:                  # netisr_dispatch, direct: run it here
                    c = c_pkt_direct + pi.input(m, proto, vout, clock + c_pkt_direct)
                    if clock + c <= end:
                        busy += c
                    else:
                        th.charge(clock, clock + c)
                    clock += c
                    k = (cpu, proto)
                    rx.direct[k] = rx.direct.get(k, 0) + 1
                    handled += 1
                    continue
                if clock + c_pkt <= end:
                    busy += c_pkt
                else:
                    th.charge(clock, clock + c_pkt)
                clock += c_pkt
                m.stamp_ns = clock
                dest = disp.select(proto, m, if_index, 0, cpu, qname)
                if dest is None:
                    self._drop(m, "netisr_noproto")
                    continue
                if hybrid:
                    st = ws_state.get(cpu)
                    if (st is not None and st[0] == dest and st[3] == 0 and st[2] <= clock
                            and last_q.get(dest, -1) < st[1]):
                        # target on our CPU and idle: dispatch here (HDisp'd)
                        c = pi.input(m, proto, vout, clock)
                        th.charge(clock, clock + c)
                        clock += c
                        k = (cpu, proto)
                        rx.hybrid[k] = rx.hybrid.get(k, 0) + 1
                        handled += 1
                        continue
                    last_q[dest] = self.window
                if mem is not None:          # the workstream's queue head
                    c = mem.charge(cpu, mem.between(cpu, ws_cpu[dest]), QUEUE_LINES)
                    th.charge(clock, clock + c)
                    clock += c
                    m.stamp_ns = clock
                w = clock // Q
                if w == last_w and proto == last_proto and dest == last_dest:
                    last_b.append(m)         # the batch the last packet went to
                else:
                    key = (dest, proto, w)
                    b = out.get(key)
                    if b is None:
                        b = out[key] = [m]
                    else:
                        b.append(m)
                    last_w = w
                    last_proto = proto
                    last_dest = dest
                    last_b = b
                handled += 1
            if i >= n:
                break
            if len(ring) - rh >= ring_size:
                rx.drops += 1
                if self.tap is not None:
                    self.tap.add(arr[i], True, "if_iqdrops")
                if self.tcp_peers:          # a TCP peer resends what it was not ACKed
                    src = self.tcp_peers.get((arr[i].pkt_id >> 32) & 0xFF)
                    if src is not None:
                        src.resend(arr[i].arrival_ns, arr[i].st.data, arr[i].pkt_id)
                m_free_unused(uma, arr[i])
            else:
                if rh >= ring_size:         # cut the taken slots off the head
                    del ring[:rh]
                    rh = 0
                ring.append(arr[i])
            i += 1
        rx.packets += handled
        rx.pk[cpu] = rx.pk.get(cpu, 0) + handled
        rx.ring_h = rh
        rx.running = running
        rx.last_intr = last_intr
        th.clock = clock
        th.add(start, busy)

    def _thread_on(self, c) -> KThread:
        """The ithread of ours on CPU c (the first queue's if none is)."""
        for r in self.rxq:
            if r.thread.cpu == c:
                return r.thread
        return self.rxq[0].thread

    # -- the window ----------------------------------------------------------------
    def step(self, start, end, inbox):
        pub = False
        code_of = MSG_CODE
        for msg in inbox:
            code = code_of.get(msg[4], 0)
            if code == _M_DEBT:
                thread, debt = msg[5]
                self.threads[thread].pay_debt(start, debt)
            elif code == _M_WS_STATE:
                wsid, wcpu, as_of, free_at, pending = msg[5]
                self.ws_state[wcpu] = (self.dispatch.names[wsid], as_of, free_at, pending)
                self.ws_cpu[self.dispatch.names[wsid]] = wcpu
            elif code == _M_CSTATE:
                c, touched, demand = msg[5]
                self.pub_c[c] = touched
                self.loads.set(c, demand)
                pub = True
            elif code == _M_MDEBT:
                # memory stalls priced by the vnet on our behalf
                c, ns = msg[5]
                self._thread_on(c).pay_stall(start, ns)
        if pub and self.mem is not None:
            self.mem.publish(self.pub_c)
        self.window = start // self.Q
        rxq = self.rxq
        per_q = [[] for _ in rxq]
        indir = self.indir
        uma = self.uma
        ifname = self.name
        vnet = self.vnet
        mem = self.mem
        recs = [mem.now(r.thread.cpu) for r in rxq] if mem is not None else None
        arrived = 0
        if len(self.sources) == 1:
            stream = self.sources[0].frames(start, end)
        else:
            stream = []
            for src in self.sources:
                stream += src.frames(start, end)
            stream.sort(key=_t)
        rss = self.rss
        mask = RSS_TABLE - 1
        for t, frame, pkt_id in stream:
            self._rx(frame)
            if rss:
                h = self.rx_h
                htype = self.rx_htype
            else:                       # no RSS: one queue, an opaque flowid (the queue)
                h = 0
                htype = M_HASHTYPE_OPAQUE
            # the frame is DMA'd into a cluster the driver pre-allocated
            m = m_alloc(uma, frame)
            m.rcvif = ifname
            m.vnet = vnet
            m.arrival_ns = t
            m.pkt_id = pkt_id
            m.flowid = h
            m.hashtype = htype
            m.csum_flags = self.rx_csum
            q = indir[h & mask]
            if recs is not None:     # the mbuf came from the refilling CPU's UMA cache
                m.line_cpu, m.line_at, m.line_pat = recs[q]
            per_q[q].append(m)
            arrived += 1
        self.arrived += arrived
        batches = {}
        self.vout = {}
        out = []
        for rx, arr in zip(rxq, per_q):
            self._run_queue(rx, arr, start, end, batches)
            rx.thread.report(out, end)
            rx.irq.report(out, end)
        if mem is not None:
            mem.report(out, end)
        if self.points:
            for v in self.vnet_actors:
                out.append((v, "sched_point", self.points, end))
            self.points = []
        for (dest, proto, w), mbufs in batches.items():
            out.append((dest, PKT_KIND[proto], mbufs, max(end, w * self.Q)))
        for (dest, w, kind), mbufs in self.vout.items():
            out.append((dest, kind, mbufs, max(end, w * self.Q)))
        for pi in self.pis:
            pi.expire(end)
        return out

    # -- accounting -----------------------------------------------------------
    def holding(self) -> int:
        return sum(len(r.ring) - r.ring_h for r in self.rxq) + sum(pi.holding() for pi in self.pis)

    @property
    def delivered(self) -> int:
        return sum(sum(pi.consumed.values()) for pi in self.pis)

    @property
    def absorbed(self) -> int:
        return sum(pi.absorbed for pi in self.pis)

    def teardown(self) -> None:
        """End of run: the driver frees the buffers left on its rings."""
        for r in self.rxq:
            for m in r.ring[r.ring_h:]:
                m_freem(self.uma, m)
            r.ring = []
            r.ring_h = 0
        for pi in self.pis:
            pi.teardown()

    def dropped(self) -> dict:
        d = dict(self.drops)
        for pi in self.pis:
            for k, v in pi.drops.items():
                d[k] = d.get(k, 0) + v
        n = sum(r.drops for r in self.rxq)
        if n:
            d["if_iqdrops"] = n
        return d

    def metrics(self):
        return {
            "arrived": self.arrived,
            "drops": dict(sorted(self.dropped().items())),
            "queues": [{"queue": r.index, "cpu": r.thread.cpu, "packets": r.packets,
                        "vector_cpu": "float" if r.vec_cpu is None else r.vec_cpu,
                        "ithread": "float" if r.floating else "bound",
                        "migrations": r.thread.migrations,
                        "interrupts": r.interrupts, "ring_drops": r.drops,
                        "direct": _by_proto(r.direct), "hybrid": _by_proto(r.hybrid),
                        "by_cpu": {str(c): {"packets": r.pk.get(c, 0),
                                            "direct": _by_proto(r.direct, c),
                                            "hybrid": _by_proto(r.hybrid, c)}
                                   for c in sorted(set(r.pk) | {k[0] for k in r.direct}
                                                   | {k[0] for k in r.hybrid})},
                        "busy_ns": r.thread.busy_total, "stall_ns": r.thread.debt_total}
                       for r in self.rxq],
            "counters": _sum_counters(self.pis),
            "consumed": _sum_counters(self.pis, "consumed"),
            "absorbed": self.absorbed,
            "reassembly_queues": sum(len(pi.reass4.q) + len(pi.reass6.q) for pi in self.pis),
            "uma": self.uma.to_dict(),
        }
