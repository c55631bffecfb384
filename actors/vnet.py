"""vnet: one network stack instance - addresses, pcbs, sockets, locks, and
the application threads that use them.

What this models.  A vnet (a VIMAGE jail, or the host's own vnet0) owns its
interface addresses, its pcb tables (udbinfo and tcbinfo, or one per group
under pcbgroups: actors/in_pcb.py), its sockets and its locks.  The stateful
half of udp_input and tcp_input runs here on behalf of the thread that ran
ip_input (its cost is charged to that thread): in_pcblookup - exact 4-tuple,
then bound address, then wildcard - under the pcbinfo lock, as `[pcb]
locking` says (global, pcbref, pcbgroup); then, for UDP, sbappendaddr into
the socket's receive buffer if it has room (`udps_fullsock` if not), and
for TCP the receive path of actors/tcp_input.py (listeners, handshakes,
reassembly, the window, ACKs counted, RSTs).  No pcb: `udps_noport` (plus
`udps_noportbcast` for a broadcast/multicast frame) or `tcps_noport`.

Locks are resolved here, where they live (design §2): acquisitions are
granted FIFO in the time order the threads reached them, and each thread's
wait goes back to it as a stall ("mdebt", paid like a CPU debt) together
with the memory stalls of the pcb's and socket buffer's lines, which are
priced here on the core of the thread that ran the input path (the packet's
cache record names it).  An input that waited past the window is delivered
in the window it ends in.

A vnet may have a UDP "sink" (`udp_sink`): a socket on every port nobody
bound, as a replay host uses so that every datagram has a taker.  The
application behind a socket reads at `read_pps`, as fast as packets come
(the default: read packets are freed), or is a reader thread (actors/app.py)
woken by the wakeup policy; loopback senders (actors/app.py) live here too.
Delivery records, per socket (connected and accepted sockets summed per
group), packets and bytes, the latency from wire arrival to sbappend (and to
recv() for reader threads), and per flow whether a packet overtook an
earlier one of its flow (by the per-run packet id, assigned in wire order).

What it leaves out: multicast fan-out, the send side of sockets, socket
options, and the sockbuf lock as distinct from the pcb lock.
"""

from __future__ import annotations

import heapq
from operator import itemgetter

from .app import Reader, UdpSender
from .base import (MSG_CODE, MSG_CSTATE, MSG_DEBT, MSG_ISR_STATE, MSG_PKTS_TCP, MSG_PKTS_UDP,
                   MSG_SCHED_POINT, Actor, make_tap)
from .in_pcb import Pcb, PcbInfo, in_pcbref, in_pcbrele, use
from .tcp_input import TCPS_ESTABLISHED, TCPS_LISTEN, TcpCb, tcp_input, tcp_listen_input
from .tcp_input import parse as tcp_parse
from .toeplitz import toeplitz_hash
from .traffic import server_iss
from .costs import to_ns
from .counter import Stat
from .ether_input import ISR_NAMES, NETISR_IP, NETISR_IPV6
from .netisr import NetisrConfig
from .sched import Loads
from .cache import PCB_LINES, SOCKBUF_LINES, MemView, line_rec, zeros
from .inet import bslice
from .mbuf import M_BCAST, M_MCAST, M_PREEMPT, Uma, m_freem

_first = itemgetter(0)      # the sort key of an arrival
# the message kinds the inbox loop takes (C constants when compiled)
_M_PKTS_UDP, _M_PKTS_TCP, _M_CSTATE, _M_DEBT = MSG_PKTS_UDP, MSG_PKTS_TCP, MSG_CSTATE, MSG_DEBT
_M_ISR_STATE, _M_SCHED_POINT = MSG_ISR_STATE, MSG_SCHED_POINT
# net.inet.pcb locking modes, as the input path tests them
_LK_GLOBAL, _LK_PCBREF, _LK_GROUP = 0, 1, 2
LAT_BUCKETS = 40      # log2 ns histogram: bucket b holds [2^b, 2^(b+1))
_LAT_TOP = LAT_BUCKETS - 1      # the last bucket (a C constant when compiled)


try:                        # compiled (actors/_core.py): _bit_length loops in C
    import cython
    COMPILED = cython.compiled
except ImportError:         # plain Python without Cython installed
    COMPILED = False


def _bit_length(x: int) -> int:
    """x.bit_length() (a loop in C when compiled: no method call)."""
    if not COMPILED:
        return x.bit_length()
    if x < 0:
        x = -x
    n = 0
    while x:
        x >>= 1
        n += 1
    return n


class _Pend:
    """What the vnet holds for one thread that ran an input path here (a
    (sender, core) pair): the lock waits and memory stalls not yet in its
    stamps (`owed`), its last stamp (`last`), and the stall it owes for this
    window (`debt`, sent back as "mdebt" at the window's end)."""

    __slots__ = ("thread", "owed", "last", "debt")

    def __init__(self, thread: tuple, stamp: int):
        self.thread = thread
        self.owed = 0
        self.last = stamp
        self.debt = 0


def _owes(p: _Pend) -> tuple:
    return p.thread, p.debt


class Socket:
    __slots__ = ("name", "hiwat", "cc", "buf", "read_ns", "next_read", "delivered",
                 "bytes", "fullsock", "read", "pcb_rec", "sb_rec", "reader", "group", "tap_label")

    def __init__(self, name: str, hiwat: int, read_pps: float | None, reader=None):
        self.name = name
        self.tap_label = f"delivered to socket {name}"     # what the capture says
        self.hiwat = hiwat
        self.cc = 0
        self.buf = []
        self.read_ns = None if not read_pps else 1e9 / read_pps
        self.next_read = 0.0
        self.delivered = 0
        self.bytes = 0
        self.fullsock = 0
        self.read = 0
        self.pcb_rec = line_rec()   # cache records (actors/cache.py) of the pcb and so_rcv
        self.sb_rec = line_rec()
        self.reader = reader    # the application thread reading it (actors/app.py), or None
        self.group = name       # metrics add up sockets of one group (connected, accepted)


class Vnet(Actor):
    def __init__(self, cfg: dict, host: dict):
        self.vname = cfg["name"]
        self.name = f"vnet.{cfg['name']}"
        self.sockets = {}       # (family, laddr bytes or b"", port) -> Socket
        self.threads = {}
        tcp_listen = []
        for s in cfg["sockets"]:
            if s.get("proto", "udp") == "tcp":
                tcp_listen.append(s)
                continue
            rd = None
            if s.get("reader"):
                rd = Reader(f"{s['name']} reader", self.name, s.get("reader_cpu"), host)
                self.threads[rd.thread.name] = rd.thread
            sock = Socket(s["name"], s["rcvbuf"], s.get("read_pps"), rd)
            self.sockets[(s["family"], s["laddr"], s["port"])] = sock
        # the UDP pcb tables: one udbinfo, or one per group (pcbgroups)
        pc = host.get("pcb", {})
        self.locking = pc.get("locking", "pcbref")
        self.lock_mode = {"global": _LK_GLOBAL, "pcbref": _LK_PCBREF}.get(self.locking, _LK_GROUP)
        ngroups = pc.get("groups", 1) if self.locking == "pcbgroup" else 1
        self.udbinfo = [PcbInfo("udp" if ngroups == 1 else "udp pcbgroup") for _ in range(ngroups)]
        costs, ghz = host["costs"], host["ghz"]
        self.c_udp = to_ns(costs["udp_input"], ghz)
        self.c_lookup = min(to_ns(costs["in_pcblookup"], ghz), self.c_udp)
        self.pcb_overlaps = 0       # input runs of one pcb on two threads at once (must stay 0)
        self.pending = {}           # thread -> its _Pend
        self.p_sender = None        # the thread of the last _pend_of: (sender, core) ...
        self.p_cpu = -1
        self.p_pend = None          # ... and its _Pend (a batch's packets share one)
        self.owing = []             # the _Pends with a debt this window
        self.t_now = 0              # when the last _stall's input ended
        self.t_pend = None          # ... and the _Pend of its thread
        self.later = []             # deliveries due in a later window (after a lock wait)
        self.seq = 0
        self.end = 0
        self.pcb_inputs = 0
        npcb = 0
        for (fam, laddr, port), sock in sorted(self.sockets.items(), key=lambda kv: kv[1].name):
            pcb = Pcb(npcb, "udp", fam, laddr, port, sock=sock)
            npcb += 1
            for g, info in enumerate(self.udbinfo):    # bound pcbs: in every group
                info.insert(pcb)
                if g:
                    info.allocated -= 1
        for c in cfg.get("connected", []):
            sock = Socket(c["name"], c["rcvbuf"], None)
            sock.group = "udp (connected)"
            self.sockets[("c", c["faddr"], c["fport"], c["laddr"], c["lport"])] = sock
            pcb = Pcb(npcb, "udp", c["family"], c["laddr"], c["lport"], c["faddr"], c["fport"], sock)
            npcb += 1
            self.udbinfo[toeplitz_hash(c["faddr"] + c["laddr"]) % ngroups].insert(pcb)
        self.sink_pcb = None
        # TCP: the tcbinfo (or its groups), listeners, connections
        self.c_tcp = to_ns(costs["tcp_input"], ghz)
        self.tcbinfo = [PcbInfo("tcp" if ngroups == 1 else "tcp pcbgroup") for _ in range(ngroups)]
        self.npcb = npcb
        self.tcp_conns = []
        self.tcp_queued = 0         # segments held for reassembly
        self.control = {}           # control segments consumed (SYN, pure ACK)
        self.listeners = []
        for t in tcp_listen:
            sock = Socket(t["name"], t["rcvbuf"], t.get("read_pps"))
            self.listeners.append(sock)
            self.npcb += 1
            pcb = Pcb(self.npcb, "tcp", t["family"], t["laddr"], t["port"], sock=sock)
            pcb.tcb = TcpCb(TCPS_LISTEN)
            for g, info in enumerate(self.tcbinfo):
                info.insert(pcb)
                if g:
                    info.allocated -= 1
        for c in cfg.get("tcp_conns", []):    # established from the scenario
            lsock = next((x for x in self.listeners if x.name == c.get("listener")), None)
            tp = TcpCb(TCPS_ESTABLISHED, server_iss(c["faddr"], c["fport"], c["laddr"], c["lport"]),
                       c["irs"])
            self._tcp_conn(c["family"], c["faddr"], c["fport"], c["laddr"], c["lport"], tp, lsock)
        self.senders = [UdpSender(a, host, self.name, host.get("lo_id_base", 0) + (i << 32))
                        for i, a in enumerate(cfg.get("apps", []))]
        for a in self.senders:
            self.threads[a.thread.name] = a.thread
        self.dispatch = NetisrConfig(host["netisr"]) if self.senders else None
        # each workstream as it last told us: (cpu, service ns a packet, wakeup ns)
        # (until they do, the cost table's figures)
        costs, ghz = host["costs"], host["ghz"]
        svc = to_ns(costs["ip_input"] + costs["udp_input"], ghz)
        wake = to_ns(costs["netisr_wakeup"] + costs["context_switch"], ghz)
        self.ws_info = {n: (c, svc, wake) for n, c in zip(host["netisr"]["workstreams"],
                                                         host["netisr"]["cpus"])}
        self.lo_index = host.get("lo0_index", 1)
        self.loads = Loads(host.get("cpus", 1), host["quantum_ns"],
                           host["topology"].pkg if host.get("topology") else [0] * host.get("cpus", 1))
        self.Q = host["quantum_ns"]
        self.rlat_hist = [0] * LAT_BUCKETS
        self.sink = Socket("udp-sink", 1 << 62, None) if cfg.get("udp_sink") else None
        if self.sink is not None:
            self.sink_pcb = Pcb(-1, "udp", 0, b"", 0, sock=self.sink)
        self.uma = Uma()
        self.tap = make_tap(host)
        self.counters = Stat()
        self.drops = {}
        self.delivered = 0
        self.lat_sum = 0
        self.lat_max = 0
        self.lat_hist = zeros(LAT_BUCKETS)
        self.last_id = {}       # flow key -> [highest packet id delivered]
        self.reordered = 0
        topo = host.get("topology")
        self.mem = MemView(topo, self.name) if topo is not None else None
        self.pub_c = [0] * host.get("cpus", 1)

    def _locked_input(self, m, fam: int, faddr: bytes, fport: int, laddr: bytes, lport: int,
                      t_end: int, thread, infos, c_udp: int, sink=None):
        """udp_input's (or tcp_input's) locking, resolved here, where the
        locks live: returns the pcb, and leaves when its input ends in
        t_now.  `t_end` is when the thread finished the input path as if
        uncontended; it began c_udp (the path's cost) earlier."""
        c_lookup = self.c_lookup
        if c_udp < c_lookup:
            c_lookup = c_udp
        t_req = t_end - c_udp
        mode = self.lock_mode
        if mode == _LK_GLOBAL:      # pcbinfo held across lookup and input (2006)
            info = infos[0]
            start = info.lock.acquire(t_req, c_udp)
            pcb = info.lookup(fam, faddr, fport, laddr, lport) or sink
            run0, done = start + c_lookup, start + c_udp
        else:                       # pcbinfo (or the group's) for the lookup only,
            info = infos[0] if mode == _LK_PCBREF else \
                infos[(m.flowid if m.hashtype else 0) % len(infos)]
            start = info.lock.acquire(t_req, c_lookup)
            pcb = info.lookup(fam, faddr, fport, laddr, lport) or sink
            if pcb is None:
                self.t_now = start + c_lookup
                return None
            in_pcbref(pcb)          # then a reference and the pcb's own lock
            run0 = pcb.lock.acquire(start + c_lookup, c_udp - c_lookup)
            done = run0 + c_udp - c_lookup
            in_pcbrele(info, pcb)
        if pcb is not None:
            use(pcb)
            self.pcb_inputs += 1
            if pcb.busy_until > run0 and pcb.busy_thread != thread:
                self.pcb_overlaps += 1
            if done > pcb.busy_until:
                pcb.busy_until = done
                pcb.busy_thread = thread
        self.t_now = done
        return pcb

    def _read(self, s: Socket, now: int) -> None:
        """The application catches up: read whatever it could have by `now`."""
        buf = s.buf
        if s.read_ns is None:
            k = len(buf)
        else:
            k = 0
            t = s.next_read
            while k < len(buf) and t <= now:
                k += 1
                t += s.read_ns
            s.next_read = max(t, float(now)) if k < len(buf) else max(t, s.next_read)
        for m in buf[:k]:
            s.cc -= m.len
            m_freem(self.uma, m)
        s.read += k
        del buf[:k]

    def _drop(self, m, reason: str) -> None:
        self.drops[reason] = self.drops.get(reason, 0) + 1
        if self.tap is not None:
            self.tap.add(m, True, reason)
        m_freem(self.uma, m)

    def step(self, start, end, inbox):
        arrivals = []
        pub = False
        code_of = MSG_CODE
        for msg in inbox:
            code = code_of.get(msg[4], 0)
            if code == _M_PKTS_UDP or code == _M_PKTS_TCP:
                what = 0 if code == _M_PKTS_UDP else 2
                snd = msg[1]
                for mb in msg[5]:
                    key = mb.stamp_ns
                    arrivals.append((key * 4 + what, snd, mb))
            elif code == _M_CSTATE:
                c, touched, demand = msg[5]
                self.pub_c[c] = touched
                self.loads.set(c, demand)
                pub = True
            elif code == _M_DEBT:
                self.threads[msg[5][0]].pay_debt(start, msg[5][1])
            elif code == _M_ISR_STATE:         # a workstream's CPU and service time
                wsid, c, svc, wake = msg[5]
                self.ws_info[msg[1]] = (c, svc, wake)
            elif code == _M_SCHED_POINT:       # a deliverer slept (deferred wakeups)
                for c, t in msg[5]:
                    arrivals.append((t * 4 + 1, msg[1], c))
        mem = self.mem
        if pub and mem is not None:
            mem.publish(self.pub_c)
        self.end = end
        later = self.later
        while later and later[0][0] < end:      # inputs that got their lock by now
            t_done, _, s_, m_, fk, snd, nb = heapq.heappop(later)
            self._deliver(s_, m_, t_done, fk, snd, nb)
        out = []
        if self.senders:
            self._send(start, end, out)
        # by time, then kind (0 a datagram, 1 a scheduling point, 2 a segment):
        # one integer key, time * 4 + kind; the sort is stable, so equal keys
        # keep the inbox order
        arrivals.sort(key=_first)
        cnt = self.counters
        # does any UDP table need the addresses (connected pcbs, or bound to
        # one address)?  If not, the lookup is by family and port alone
        addrs = False
        for info in self.udbinfo:
            if info.exact or info.nspec:
                addrs = True
        laddr = faddr = b""
        for key, sender, m in arrivals:
            what = key & 3
            if what == 2:
                self._tcp(m, sender)
                continue
            if what:                # a scheduling point of (sender, cpu m) at key // 4
                t = key >> 2
                for s in self.sockets.values():
                    if s.reader is not None:
                        s.reader.point((sender, m), t)
                continue
            mb = m                  # a UDP datagram (the other kinds went above)
            st = mb.st
            d = st.data
            o = mb.off
            v6 = d[o] >> 4 == 6
            l4 = mb.l3hlen
            l4 += o
            # the flow's key: the addresses and the ports, one slice of the
            # headers when no options or extension headers come between
            # (the addresses alone only when a table has entries that need them)
            if v6:
                if addrs:
                    laddr = bslice(d, o + 24, o + 40)
                    faddr = bslice(d, o + 8, o + 24)
                fkey = bslice(d, o + 8, o + 44) if l4 == o + 40 else \
                    bslice(d, o + 8, o + 40) + bslice(d, l4, l4 + 4)
            else:
                if addrs:
                    laddr = bslice(d, o + 16, o + 20)
                    faddr = bslice(d, o + 12, o + 16)
                fkey = bslice(d, o + 12, o + 24) if l4 == o + 20 else \
                    bslice(d, o + 12, o + 20) + bslice(d, l4, l4 + 4)
            sport = (d[l4] << 8) | d[l4 + 1]
            dport = (d[l4 + 2] << 8) | d[l4 + 3]
            # the thread that ran the input path: (sender, core)
            pend = self._pend_of(sender, mb.line_cpu, mb.stamp_ns)
            pcb = self._stall(mb, pend, 6 if v6 else 4, faddr, sport, laddr, dport,
                              self.udbinfo, self.c_udp, self.sink_pcb)
            now = self.t_now
            if pcb is None:
                cnt["udps_noport"] += 1
                if mb.flags & (M_BCAST | M_MCAST):
                    cnt["udps_noportbcast"] += 1
                self._drop(mb, "udps_noport")
                continue
            s = pcb.sock
            self._touch_pcb(mb, s, self.t_pend)
            if s.buf and s.read_ns is not None:
                self._read(s, now)
            ln = mb.len
            if s.cc + ln > s.hiwat:
                s.fullsock += 1
                self._drop(mb, "udps_fullsock")
                continue
            self._deliver(s, mb, now, fkey, sender, mb.len)
        free = self._free_read
        for s in self.sockets.values():
            rd = s.reader
            if rd is not None:
                rd.due(end)
                rd.run(s, free, mem, self.loads, self.rlat_hist)
                rd.settle(start, self.Q)
                s.read = rd.read
            elif s.buf:
                self._read(s, end)
        if self.owing:                  # the stalls owed, by thread
            for (a, c), ns in sorted(map(_owes, self.owing)):
                out.append((a, "mdebt", [c, ns], end))
            for p in self.owing:
                p.debt = 0
            self.owing = []
        for th in self.threads.values():
            th.report(out, end)
        if mem is not None:
            mem.report(out, end)
        return out

    def _pend_of(self, sender, c: int, stamp: int) -> _Pend:
        """The _Pend of thread (sender, core c), made at `stamp` if new; the
        last one found is kept at hand (a batch's packets come from one
        thread)."""
        if sender is self.p_sender and c == self.p_cpu:
            return self.p_pend
        thread = (sender, c)
        pend = self.pending.get(thread)
        if pend is None:
            pend = self.pending[thread] = _Pend(thread, stamp)
        self.p_sender = sender
        self.p_cpu = c
        self.p_pend = pend
        return pend

    def _stall(self, m, pend: _Pend, fam: int, faddr: bytes, fport: int, laddr: bytes,
               lport: int, infos, cost: int, sink=None):
        """Run the locked part of an input path for m; charge its thread
        (`pend`'s: (sender, m.line_cpu)) the wait.  Returns the pcb; when the
        input ends is left in t_now, the thread's _Pend in t_pend."""
        thread = pend.thread
        stamp = m.stamp_ns
        self.t_pend = pend
        owed = pend.owed
        gap = stamp - cost - pend.last
        if gap > 0:
            owed = owed - gap if owed > gap else 0
            pend.owed = owed
        pend.last = stamp
        t_end = stamp + owed
        pcb = self._locked_input(m, fam, faddr, fport, laddr, lport, t_end, thread, infos, cost,
                                 sink)
        wait = self.t_now - t_end
        pend.owed += wait
        if wait > 0:
            if not pend.debt:
                self.owing.append(pend)
            pend.debt += wait
        return pcb

    def _tcp(self, m, sender) -> None:
        """A segment that passed tcp_input's header checks (actors/tcp_input.py)."""
        cnt = self.counters
        d = m.st.data
        o = m.off
        v6 = d[o] >> 4 == 6
        l4 = o + m.l3hlen
        if v6:
            laddr, faddr = d[o + 24:o + 40], d[o + 8:o + 24]
        else:
            laddr, faddr = d[o + 16:o + 20], d[o + 12:o + 16]
        sport, dport, seq, ack, thlen, flags = tcp_parse(d, l4)
        plen = m.len - m.l3hlen - thlen
        fam = 6 if v6 else 4
        pend = self._pend_of(sender, m.line_cpu, m.stamp_ns)
        pcb = self._stall(m, pend, fam, faddr, sport, laddr, dport, self.tcbinfo, self.c_tcp)
        now = self.t_now
        if pcb is None:
            cnt["tcps_noport"] += 1
            cnt["tcps_sndctrl"] += 1            # the RST
            self._drop(m, "tcps_noport")
            return
        tp = pcb.tcb
        if tp.state == TCPS_LISTEN:
            r = tcp_listen_input(faddr, sport, laddr, dport, seq, flags, cnt)
            if type(r) is str:
                self._drop(m, r)
                return
            self._tcp_conn(fam, faddr, sport, laddr, dport, r, pcb.sock)
            self._consumed(m, "tcp")
            return
        s = pcb.sock
        self._touch_pcb(m, s, self.t_pend)
        if s.buf and s.read_ns is not None:
            self._read(s, now)
        what, segs = tcp_input(tp, seq, ack, flags, plen, m, s.hiwat - s.cc, cnt)
        if what == "consumed":
            self._consumed(m, "tcp")
        elif what == "queued":
            self.tcp_queued += 1
        elif what == "deliver":
            fkey = faddr + laddr + d[l4:l4 + 4]     # the flow's key, as the UDP path's
            for mm, ln in segs:
                if mm is not m:
                    self.tcp_queued -= 1
                if ln == 0:
                    cnt["tcps_rcvduppack"] += 1
                    self._drop(mm, "tcps_rcvduppack")
                    continue
                self._deliver(s, mm, now, fkey, sender, ln)
        else:
            self._drop(m, what)

    def _touch_pcb(self, m, s, pend: _Pend) -> None:
        """in_pcblookup and sbappend touch the pcb and the socket buffer, on
        the core of the thread that runs the input path ((sender, core), as
        _stall had it; `pend` is that thread's): its stall."""
        mem = self.mem
        if mem is None or m.line_cpu < 0:
            return
        c = m.line_cpu
        ns = mem.touch_rec(c, s.pcb_rec, PCB_LINES) + mem.touch_rec(c, s.sb_rec, SOCKBUF_LINES)
        if ns:
            if not pend.debt:
                self.owing.append(pend)
            pend.debt += ns
            pend.owed += ns

    def _deliver(self, s, m, now: int, fkey: bytes, sender, nbytes: int) -> None:
        """m's data reaches socket s at `now` (sbappend): counted, checked for
        order within its flow, and read by the application.  An input that
        ends past this window (it waited for a lock) is delivered in the
        window it ends in."""
        if now >= self.end:
            self.seq += 1
            heapq.heappush(self.later, (now, self.seq, s, m, fkey, sender, nbytes))
            return
        s.delivered += 1
        s.bytes += nbytes
        self.delivered += 1
        if self.tap is not None:
            self.tap.add(m, False, s.tap_label)
        lat = m.arrival_ns
        lat = now - lat
        self.lat_sum += lat
        if lat > self.lat_max:
            self.lat_max = lat
        b = _bit_length(lat)
        self.lat_hist[b if b < _LAT_TOP else _LAT_TOP] += 1
        # the flow's highest id so far, in a one-item list: a later packet
        # of the flow updates it with no dict insert
        last = self.last_id.get(fkey)
        if last is None:
            self.last_id[fkey] = [m.pkt_id]
        elif m.pkt_id < last[0]:
            self.reordered += 1
        else:
            last[0] = m.pkt_id
        if s.reader is not None:
            # sorwakeup: the reading thread is signalled as the policy says
            s.cc += nbytes
            s.buf.append(m)
            s.reader.appended((sender, m.line_cpu), now)
        elif s.read_ns is None:
            # the application is waiting in recv(): it takes the data at once
            s.read += 1
            m_freem(self.uma, m)
        else:
            s.cc += nbytes
            s.buf.append(m)

    def _consumed(self, m, what: str) -> None:
        self.control[what] = self.control.get(what, 0) + 1
        self.delivered += 1
        if self.tap is not None:
            self.tap.add(m, False, f"consumed by {what} input")
        m_freem(self.uma, m)

    def _tcp_conn(self, fam, faddr, fport, laddr, lport, tp, listen_sock) -> Pcb:
        """A connection: its pcb in the tcbinfo (its group's, under pcbgroups)
        and the socket accept(2) would return."""
        self.npcb += 1
        name = listen_sock.name if listen_sock is not None else "tcp"
        # accept(2): the new socket has the listener's buffer size, and its
        # application reads at the listener's rate
        sock = Socket(f"{name} accepted", listen_sock.hiwat if listen_sock else 65536,
                      1e9 / listen_sock.read_ns if listen_sock is not None and listen_sock.read_ns else None)
        sock.group = f"{name} (accepted)"
        pcb = Pcb(self.npcb, "tcp", fam, laddr, lport, faddr, fport, sock)
        pcb.tcb = tp
        self.tcbinfo[toeplitz_hash(faddr + laddr + fport.to_bytes(2, "big")
                                   + lport.to_bytes(2, "big")) % len(self.tcbinfo)].insert(pcb)
        self.tcp_conns.append(pcb)
        return pcb

    def _socket_metrics(self) -> dict:
        """Per socket; connected and accepted sockets add up per group (with
        10,000 connections, one entry each would be most of metrics.json)."""
        out = {}
        socks = list(self.sockets.values()) + self.listeners + [p.sock for p in self.tcp_conns]
        if self.sink is not None:
            socks.append(self.sink)
        for s in socks:
            e = out.get(s.group)
            if e is None:
                e = out[s.group] = {"delivered": 0, "bytes": 0, "fullsock": 0, "read": 0,
                                    "queued": 0}
                if s.group != s.name:
                    e["sockets"] = 0
            e["delivered"] += s.delivered
            e["bytes"] += s.bytes
            e["fullsock"] += s.fullsock
            e["read"] += s.read
            e["queued"] += len(s.buf)
            if "sockets" in e:
                e["sockets"] += 1
            if s.reader is not None:
                e["reader"] = s.reader.metrics()
        return dict(sorted(out.items()))

    def lock_stats(self) -> dict:
        """lockstat's numbers per lock name (all pcb locks are "udpinp", as
        lockstat shows a lock class)."""
        locks = [i.lock for i in self.udbinfo + self.tcbinfo]
        seen = set()
        for info in self.udbinfo + self.tcbinfo:
            for p in list(info.exact.values()) + list(info.bound.values()):
                if p.id not in seen:
                    seen.add(p.id)
                    locks.append(p.lock)
        if self.sink_pcb is not None:
            locks.append(self.sink_pcb.lock)
        out = {}
        for lk in locks:
            st = lk.stats()
            o = out.get(lk.name)
            if o is None:
                out[lk.name] = dict(st, instances=1)
            else:
                o["instances"] += 1
                for k in ("acquisitions", "contended", "wait_ns_total", "hold_ns_total"):
                    o[k] += st[k]
                for k in ("wait_ns_max", "hold_ns_max"):
                    o[k] = max(o[k], st[k])
        return dict(sorted(out.items()))

    def _free_read(self, m) -> None:
        m_freem(self.uma, m)

    def _send(self, start: int, end: int, out: list) -> None:
        """The senders run; what they signal goes to lo0's workstream."""
        batches = {}
        Q = self.Q
        for a in self.senders:
            cpu = a.thread.cpu
            proto = NETISR_IPV6 if a.v6 else NETISR_IP

            def preempt(mbufs, cpu=cpu, proto=proto):
                dest = self.dispatch.select(proto, mbufs[-1], self.lo_index, 0, cpu, "lo0")
                info = self.ws_info.get(dest)
                if info is None or info[0] != cpu:
                    return 0
                # the workstream wakes for them (the first) and runs them all
                # before we go on
                mbufs[0].flags |= M_PREEMPT
                return info[2] + len(mbufs) * info[1]
            for t, m in a.run(start, end, self.uma, self.mem, self.loads, preempt):
                proto = NETISR_IPV6 if a.v6 else NETISR_IP
                dest = self.dispatch.select(proto, m, self.lo_index, 0, a.thread.cpu, "lo0")
                m.stamp_ns = t
                key = (dest, proto, t // Q)
                b = batches.get(key)
                if b is None:
                    batches[key] = [m]
                else:
                    b.append(m)
        for (dest, proto, w), mbufs in sorted(batches.items()):
            out.append((dest, "pkts." + ISR_NAMES[proto], mbufs, max(end, w * Q)))

    # -- accounting ---------------------------------------------------------
    @property
    def arrived(self) -> int:
        """Packets that entered the stack here: the loopback senders' datagrams."""
        return sum(a.sent for a in self.senders)

    def holding(self) -> int:
        # packets in socket buffers are delivered already; sent ones not yet
        # signalled to a netisr, and TCP segments waiting for reassembly, are
        # still ours
        return sum(a.holding() for a in self.senders) + self.tcp_queued + len(self.later)

    def buffered(self) -> int:
        return sum(len(s.buf) for s in self.sockets.values())

    def dropped(self) -> dict:
        return dict(self.drops)

    def teardown(self) -> None:
        """Close every socket: free what the applications did not read;
        the senders' unsignalled datagrams go with their sockets."""
        for a in self.senders:
            for m in a.batcher.pending:
                m_freem(self.uma, m)
            a.batcher.pending = []
        for item in self.later:             # inputs still waiting at the end
            m_freem(self.uma, item[3])
        self.later = []
        for pcb in self.tcp_conns:          # the reassembly queues go with the connections
            for _, _, m in pcb.tcb.reass:
                m_freem(self.uma, m)
            pcb.tcb.reass = []
            for m in pcb.sock.buf:          # ... and what their applications did not read
                m_freem(self.uma, m)
            pcb.sock.buf = []
            pcb.sock.cc = 0
        self.tcp_queued = 0
        for s in self.sockets.values():
            for m in s.buf:
                m_freem(self.uma, m)
            s.buf.clear()
            s.cc = 0

    def metrics(self):
        return {
            "delivered": self.delivered,
            "reordered": self.reordered,
            "flows_seen": len(self.last_id),
            "latency_ns": {"sum": self.lat_sum, "max": self.lat_max,
                           "log2_hist": list(self.lat_hist)},
            "sockets": self._socket_metrics(),
            "tcp": {"connections": len(self.tcp_conns),
                    "established": sum(1 for p in self.tcp_conns if p.tcb.state == TCPS_ESTABLISHED),
                    "reassembly_queued": self.tcp_queued},
            "control": dict(sorted(self.control.items())),
            "drops": dict(sorted(self.drops.items())),
            "counters": {k: v for k, v in sorted(self.counters.items()) if v},
            "uma": self.uma.to_dict(),
            "pcb": {"locking": self.locking, "groups": len(self.udbinfo),
                    "pcbs": sum(i.live() for i in self.udbinfo + self.tcbinfo),
                    "inputs": self.pcb_inputs, "overlaps": self.pcb_overlaps},
            "locks": self.lock_stats(),
            "senders": {a.name: a.metrics() for a in self.senders},
            "read_latency_log2_hist": self.rlat_hist,
        }
