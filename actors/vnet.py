"""vnet: one network stack instance - addresses, pcbs, sockets.

What this models.  A vnet (a VIMAGE jail, or the host's own vnet0) owns its
interface addresses, its UDP pcb table and its sockets.  The stateful half
of udp_input runs here on behalf of the thread that ran ip_input (its cost is
charged to that thread): `in_pcblookup` - exact (laddr, lport) match first,
then the wildcard (INADDR_ANY / in6addr_any) bind of the port, as
in_pcblookup_hash does for an unconnected UDP socket - and `udp_append`:
sbappendaddr into the socket's receive buffer if it has room
(`net.inet.udp.recvspace` bytes, 42080 by default), else `udps_fullsock`.
No pcb: `udps_noport` (plus `udps_noportbcast` for a broadcast/multicast
frame), as FreeBSD counts it.

A vnet may have a UDP "sink" (`udp_sink`): a socket on every port nobody
bound, as a replay host uses so that every datagram has a taker.
The application behind each socket reads at `read_pps` packets per second,
or as fast as packets come (the default): read packets are freed.
Delivery records, per socket, packets and bytes, the latency from wire
arrival to sbappend, and per flow whether a packet overtook an earlier one
of its flow (by the per-run packet id, which the NIC assigns in wire order).

What it leaves out until the transport work item: TCP, connected sockets
and 4-tuple matches, the pcbinfo lock and its contention, multicast fan-out,
application threads as scheduled threads (the reader here costs no CPU).

Memory: in_pcblookup and sbappend touch the pcb's and the socket buffer's
lines on the core of the thread that ran udp_input (the packet's cache
record names it); the vnet prices them with its own records of those lines
and sends the stall back to that thread ("mdebt"), paid like a CPU debt.
"""

from __future__ import annotations

from collections import defaultdict

from .app import Reader, UdpSender
from .base import Actor, make_tap
from .costs import to_ns
from .ether_input import ISR_NAMES, NETISR_IP, NETISR_IPV6
from .netisr import NetisrConfig
from .sched import Loads
from .cache import PCB_LINES, SOCKBUF_LINES, MemView
from .mbuf import M_BCAST, M_MCAST, M_PREEMPT, Uma, m_freem

LAT_BUCKETS = 40      # log2 ns histogram: bucket b holds [2^b, 2^(b+1))


class Socket:
    __slots__ = ("name", "hiwat", "cc", "buf", "read_ns", "next_read", "delivered",
                 "bytes", "fullsock", "read", "pcb_rec", "sb_rec", "reader")

    def __init__(self, name: str, hiwat: int, read_pps: float | None, reader=None):
        self.name = name
        self.hiwat = hiwat
        self.cc = 0
        self.buf = []
        self.read_ns = None if not read_pps else 1e9 / read_pps
        self.next_read = 0.0
        self.delivered = 0
        self.bytes = 0
        self.fullsock = 0
        self.read = 0
        self.pcb_rec = None     # cache records (actors/cache.py) of the pcb and so_rcv
        self.sb_rec = None
        self.reader = reader    # the application thread reading it (actors/app.py), or None


class Vnet(Actor):
    def __init__(self, cfg: dict, host: dict):
        self.vname = cfg["name"]
        self.name = f"vnet.{cfg['name']}"
        self.sockets = {}       # (family, laddr bytes or b"", port) -> Socket
        self.threads = {}
        for s in cfg["sockets"]:
            rd = None
            if s.get("reader"):
                rd = Reader(f"{s['name']} reader", self.name, s.get("reader_cpu"), host)
                self.threads[rd.thread.name] = rd.thread
            sock = Socket(s["name"], s["rcvbuf"], s.get("read_pps"), rd)
            self.sockets[(s["family"], s["laddr"], s["port"])] = sock
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
        self.uma = Uma()
        self.tap = make_tap(host)
        self.counters = defaultdict(int)
        self.drops = {}
        self.delivered = 0
        self.lat_sum = 0
        self.lat_max = 0
        self.lat_hist = [0] * LAT_BUCKETS
        self.last_id = {}       # flow key -> highest packet id delivered
        self.reordered = 0
        topo = host.get("topology")
        self.mem = MemView(topo, self.name) if topo is not None else None
        self.pub_c = [0] * host.get("cpus", 1)

    def in_pcblookup(self, v6: bool, laddr: bytes, lport: int):
        fam = 6 if v6 else 4
        s = self.sockets.get((fam, laddr, lport))
        if s is None:
            s = self.sockets.get((fam, b"", lport))
        return s if s is not None else self.sink

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
        for msg in inbox:
            kind = msg[4]
            if kind == "pkts.udp":
                arrivals.extend((m.stamp_ns, 0, msg[1], m) for m in msg[5])
            elif kind == "cstate":
                c, touched, demand = msg[5]
                self.pub_c[c] = touched
                self.loads.set(c, demand)
                pub = True
            elif kind == "debt":
                self.threads[msg[5][0]].pay_debt(start, msg[5][1])
            elif kind == "isr_state":          # a workstream's CPU and service time
                wsid, c, svc, wake = msg[5]
                self.ws_info[msg[1]] = (c, svc, wake)
            elif kind == "sched_point":        # a deliverer slept (deferred wakeups)
                for c, t in msg[5]:
                    arrivals.append((t, 1, msg[1], c))
        mem = self.mem
        if pub and mem is not None:
            mem.publish(self.pub_c)
        out = []
        if self.senders:
            self._send(start, end, out)
        arrivals.sort(key=_stamp)
        cnt = self.counters
        mdebt = {}
        for t, what, sender, m in arrivals:
            if what:                # a scheduling point of (sender, cpu m) at t
                for s in self.sockets.values():
                    if s.reader is not None:
                        s.reader.point((sender, m), t)
                continue
            d = m.st.data
            o = m.off
            v6 = d[o] >> 4 == 6
            l4 = o + m.l3hlen
            if v6:
                laddr = d[o + 24:o + 40]
                fkey = d[o + 8:o + 24] + d[l4:l4 + 4] + laddr
            else:
                laddr = d[o + 16:o + 20]
                fkey = d[o + 12:o + 16] + d[l4:l4 + 4] + laddr
            dport = (d[l4 + 2] << 8) | d[l4 + 3]
            s = self.in_pcblookup(v6, laddr, dport)
            if s is None:
                cnt["udps_noport"] += 1
                if m.flags & (M_BCAST | M_MCAST):
                    cnt["udps_noportbcast"] += 1
                self._drop(m, "udps_noport")
                continue
            now = m.stamp_ns
            if mem is not None and m.line_cpu >= 0:
                # in_pcblookup and sbappend touch the pcb and the socket buffer,
                # on the core of the thread that runs udp_input: its stall
                c = m.line_cpu
                ns = mem.touch(c, s.pcb_rec, PCB_LINES)
                s.pcb_rec = mem.now(c)
                ns += mem.touch(c, s.sb_rec, SOCKBUF_LINES)
                s.sb_rec = mem.now(c)
                k = (sender, c)
                mdebt[k] = mdebt.get(k, 0) + ns
            if s.buf and s.read_ns is not None:
                self._read(s, now)
            if s.cc + m.len > s.hiwat:
                s.fullsock += 1
                self._drop(m, "udps_fullsock")
                continue
            s.delivered += 1
            s.bytes += m.len
            self.delivered += 1
            if self.tap is not None:
                self.tap.add(m, False, f"delivered to socket {s.name}")
            lat = now - m.arrival_ns
            self.lat_sum += lat
            if lat > self.lat_max:
                self.lat_max = lat
            self.lat_hist[min(lat.bit_length(), LAT_BUCKETS - 1)] += 1
            last = self.last_id.get(fkey, -1)
            if m.pkt_id < last:
                self.reordered += 1
            else:
                self.last_id[fkey] = m.pkt_id
            if s.reader is not None:
                # sorwakeup: the reading thread is signalled as the policy says
                s.cc += m.len
                s.buf.append(m)
                s.reader.appended((sender, m.line_cpu), now)
            elif s.read_ns is None:
                # the application is waiting in recv(): it takes the datagram at once
                s.read += 1
                m_freem(self.uma, m)
            else:
                s.cc += m.len
                s.buf.append(m)
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
        out.extend((a, "mdebt", [c, ns], end) for (a, c), ns in sorted(mdebt.items()) if ns)
        for th in self.threads.values():
            th.report(out, end)
        if mem is not None:
            mem.report(out, end)
        return out

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
        # signalled to a netisr are still ours
        return sum(a.holding() for a in self.senders)

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
                           "log2_hist": self.lat_hist},
            "sockets": {s.name: dict({"delivered": s.delivered, "bytes": s.bytes,
                                      "fullsock": s.fullsock, "read": s.read,
                                      "queued": len(s.buf)},
                                     **({"reader": s.reader.metrics()} if s.reader else {}))
                        for s in sorted(list(self.sockets.values()) + ([self.sink] if self.sink else []),
                                        key=lambda s: s.name)},
            "drops": dict(sorted(self.drops.items())),
            "counters": {k: v for k, v in sorted(self.counters.items()) if v},
            "uma": self.uma.to_dict(),
            "senders": {a.name: a.metrics() for a in self.senders},
            "read_latency_log2_hist": self.rlat_hist,
        }


def _stamp(a):
    return a[0], a[1]
