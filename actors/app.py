"""app: application threads in a vnet - a UDP sender over loopback, and
the threads that read sockets.

What this models.

* `UdpSender`: a user thread (timeshare priority) that wakes on a timer
  `rate_pps / burst` times a second and sends `burst` UDP datagrams to an
  address of its own vnet (127.0.0.1 or ::1) - sendto -> sosend_dgram ->
  udp_output -> ip_output -> looutput -> if_simloop, which queues the packet
  to a netisr workstream with netisr_queue (loopback is always deferred:
  there is no direct dispatch from if_simloop).  Each datagram costs the
  `udp_send` path and writes a fresh mbuf (its header and first data lines
  are then in the sender's cache).  The workstream is told according to the
  wakeup policy (actors/wakeup.py): at each enqueue, at the end of the
  sender's burst (its scheduling point: it sleeps until the next tick - if
  it is late it goes on, and the end of the burst still counts as the
  point), or in batches.  Bytes are real: IPv4/IPv6 + UDP with a correct
  checksum, behind a 14-byte Ethernet header with zero addresses (as Linux
  shows lo; FreeBSD's lo0 uses DLT_NULL - ours keeps one link type per
  capture); lo0 marks them checksum-verified (LO_CSUM_SET), as FreeBSD's
  looutput does with IFCAP_RXCSUM.
* `Reader`: the thread that reads one socket (soreceive, copyout): asleep
  in sbwait until the policy signals it, it then reads every datagram in
  the buffer that has arrived by its clock, each for the `soreceive` cost
  plus the lines it touches (the packet's, the socket buffer's), and sleeps
  again when the buffer is empty.

What it leaves out: the sender's socket buffer and its blocking (a full
netisr queue drops the datagram, counted as the netisr's QDrops), the send
path's locks, copyin of the payload, TCP, and readers that poll/kqueue
instead of blocking in recv.
"""

from __future__ import annotations

import struct

from .base import PRI_USER, KThread
from .cache import L_LOCAL, MBUF_HDR_LINES, PKT_DATA_LINES, SOCKBUF_LINES, THREAD_LINES
from .costs import to_ns
from .inet import IPPROTO_UDP, in_cksum
from .mbuf import (CSUM_DATA_VALID, CSUM_IP_CHECKED, CSUM_IP_VALID, CSUM_PSEUDO_HDR,
                   m_alloc)
from .sched import pick_thread_cpu
from .wakeup import Batcher

LO_CSUM_SET = CSUM_DATA_VALID | CSUM_PSEUDO_HDR | CSUM_IP_CHECKED | CSUM_IP_VALID
_ETH_V4 = bytes(12) + b"\x08\x00"
_ETH_V6 = bytes(12) + b"\x86\xdd"


def udp_datagram(v6: bool, src: bytes, dst: bytes, sport: int, dport: int,
                 payload: bytes) -> bytes:
    """Ethernet-framed (zero MACs) IPv4 or IPv6 UDP datagram with real checksums."""
    ulen = 8 + len(payload)
    if v6:
        pseudo = src + dst + ulen.to_bytes(4, "big") + bytes([0, 0, 0, IPPROTO_UDP])
        udph = struct.pack("!HHHH", sport, dport, ulen, 0)
        ck = in_cksum(pseudo + udph + payload) or 0xFFFF
        iph = struct.pack("!IHBB16s16s", 0x60000000, ulen, IPPROTO_UDP, 64, src, dst)
        return _ETH_V6 + iph + udph[:6] + ck.to_bytes(2, "big") + payload
    pseudo = src + dst + bytes([0, IPPROTO_UDP]) + ulen.to_bytes(2, "big")
    udph = struct.pack("!HHHH", sport, dport, ulen, 0)
    ck = in_cksum(pseudo + udph + payload) or 0xFFFF
    iph = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + ulen, 0, 0, 64, IPPROTO_UDP, 0, src, dst)
    iph = iph[:10] + in_cksum(iph).to_bytes(2, "big") + iph[12:]
    return _ETH_V4 + iph + udph[:6] + ck.to_bytes(2, "big") + payload


def _wake(th: KThread, floating: bool, loads, waker, mem, c_migr: int, c_csw: int,
          clock: int) -> int:
    """A sleeping user thread is woken at `clock`: placed (if it floats),
    switched to, its own lines touched.  Returns its clock after that."""
    clock += _place(th, floating, loads, waker, mem, c_migr, clock)
    th.wake(clock)
    c = c_csw
    if mem is not None:
        c += mem.touch_rec(th.cpu, th.state, THREAD_LINES)
    th.charge(clock, clock + c)
    return clock + c


def _place(th: KThread, floating: bool, loads, waker, mem, c_migr: int, clock: int) -> int:
    """ULE places a woken user thread (if it is not pinned); returns the time
    the migration cost."""
    if not floating or loads is None:
        return 0
    nc = pick_thread_cpu(loads, th.pri, th.cpu, waker, th.name)
    if nc == th.cpu:
        return 0
    th.move(nc)
    return c_migr


class UdpSender:
    def __init__(self, spec: dict, host: dict, actor: str, id_base: int):
        Q = host["quantum_ns"]
        cpu = spec.get("cpu")
        self.floating = cpu is None
        self.thread = KThread(spec["name"], actor, 0 if cpu is None else cpu, PRI_USER, Q)
        self.name = spec["name"]
        self.vnet = spec["vnet"]
        self.v6 = spec["v6"]
        self.src, self.dst = spec["src"], spec["dst"]
        self.sport, self.dport = spec["sport"], spec["dport"]
        self.burst = spec.get("burst", 1)
        self.period = self.burst * 1e9 / spec["rate_pps"]
        self.t0 = int(spec.get("start_ms", 0) * 1e6)
        self.stop = int(spec["stop_ms"] * 1e6) if spec.get("stop_ms") is not None else None
        self.payload = spec.get("payload", 18)
        self.k = 0                  # next timer tick
        self.left = 0               # datagrams left in the burst under way
        self.id_base = id_base
        self.seq = 0
        costs, ghz = host["costs"], host["ghz"]
        self.c_send = to_ns(costs["udp_send"], ghz)
        self.c_csw = to_ns(costs["context_switch"], ghz)
        self.c_migr = to_ns(costs["migration"], ghz)
        w = host.get("wakeup", {})
        self.batcher = Batcher(w.get("mode", "immediate"), w.get("batch", 1), w.get("timeout_ns", 0))
        self.sent = 0
        self.wakeups = 0

    def run(self, start: int, end: int, uma, mem, loads, preempt=None) -> list:
        """Send what the timer asks for in [start, end); return the packets
        signalled to the netisr, as (signal time, mbuf).

        `preempt(mbufs)` says how long a signal of these packets keeps the
        sender off its CPU: a workstream on the sender's CPU
        preempts it at once and runs them (its wakeup and their service),
        and only then does the sender go on.  The bound-weave arbitration
        of design §2 would get the time right but not this interleaving,
        which decides how many wakeups there are; so the sender waits here
        (without using CPU time) the workstream's published service time."""
        th = self.thread
        sig = []
        sig.extend(self.batcher.due(start))
        while True:
            t = self.t0 + int(self.k * self.period)
            if self.left == 0:              # between bursts
                if t >= end or (self.stop is not None and t >= self.stop):
                    break
                if th.clock >= end:         # late: it goes on in the next window
                    break
                clock = th.clock
                if clock <= t:              # asleep: the timer wakes it
                    th.clock = _wake(th, self.floating, loads, None, mem, self.c_migr,
                                     self.c_csw, t)
                    self.wakeups += 1
                self.left = self.burst
            clock = th.clock
            cpu = th.cpu
            while self.left and clock < end:
                self.left -= 1
                sig.extend(self.batcher.due(clock))
                pid = self.id_base + self.seq
                self.seq += 1
                body = pid.to_bytes(8, "big") + bytes(max(0, self.payload - 8))
                m = m_alloc(uma, udp_datagram(self.v6, self.src, self.dst, self.sport,
                                              self.dport, body))
                m.off = 14
                m.len -= 14
                m.rcvif = "lo0"
                m.vnet = self.vnet
                m.pkt_id = pid
                m.arrival_ns = clock
                m.csum_flags = LO_CSUM_SET
                c = self.c_send
                if mem is not None:         # a fresh mbuf from our UMA cache, written here
                    c += mem.charge(cpu, L_LOCAL, MBUF_HDR_LINES + PKT_DATA_LINES)
                th.charge(clock, clock + c)
                clock += c
                if mem is not None:
                    m.line_cpu, m.line_at, m.line_pat = mem.now(cpu)
                m.stamp_ns = clock
                self.sent += 1
                got = self.batcher.add(clock, m)
                if got:
                    sig.extend(got)
                    if preempt is not None:
                        clock += preempt([x for _, x in got])
            th.clock = clock
            if self.left:                   # the window ended mid-burst
                break
            self.k += 1
            nxt = self.t0 + int(self.k * self.period)
            sig.extend(self.batcher.point(clock))   # the end of the burst
            if clock < nxt:
                th.sleep(clock)             # until the next tick
        sig.extend(self.batcher.due(end))
        return sig

    def holding(self) -> int:
        return len(self.batcher)

    def metrics(self) -> dict:
        return {"sent": self.sent, "cpu": self.thread.cpu,
                "pinned": not self.floating, "wakeups": self.wakeups,
                "busy_ns": self.thread.busy_total, "stall_ns": self.thread.debt_total,
                "migrations": self.thread.migrations, "unsignalled": len(self.batcher)}


class Reader:
    """The application thread reading one socket."""

    def __init__(self, name: str, actor: str, cpu, host: dict):
        self.floating = cpu is None
        self.thread = KThread(name, actor, 0 if cpu is None else cpu, PRI_USER, host["quantum_ns"])
        costs, ghz = host["costs"], host["ghz"]
        self.c_recv = to_ns(costs["soreceive"], ghz)
        self.c_csw = to_ns(costs["context_switch"], ghz)
        self.c_migr = to_ns(costs["migration"], ghz)
        w = host.get("wakeup", {})
        self.mode = w.get("mode", "immediate")
        self.batch = w.get("batch", 1)
        self.timeout = w.get("timeout_ns", 0)
        self.batchers = {}          # deliverer -> Batcher (the deferred mode's points are theirs)
        self.signals = []           # signal times not yet acted on
        self.sleep_at = None        # when it went back to sbwait, until that is sure
        self.wakeups = 0
        self.read = 0
        self.lat_sum = 0
        self.lat_max = 0

    def batcher(self, key) -> Batcher:
        b = self.batchers.get(key)
        if b is None:
            b = self.batchers[key] = Batcher(self.mode, self.batch, self.timeout)
        return b

    def appended(self, key, t: int) -> None:
        """sorwakeup after an sbappend at t by deliverer `key`."""
        self.signals.extend(s for s, _ in self.batcher(key).add(t, None))

    def point(self, key, t: int) -> None:
        b = self.batchers.get(key)
        if b is not None:
            self.signals.extend(s for s, _ in b.point(t))

    def due(self, now: int) -> None:
        for b in self.batchers.values():
            self.signals.extend(s for s, _ in b.due(now))

    def settle(self, start: int, Q: int) -> None:
        """A sleep is only sure once nothing stamped before it can still
        come (deliverers report up to two windows late): confirm it then."""
        if self.sleep_at is not None and not self.signals and self.sleep_at < start - 2 * Q:
            self.thread.sleep(self.sleep_at)
            self.sleep_at = None

    def run(self, sock, free, mem, loads, hist) -> None:
        """Act on the signals: wake, read what has arrived, sleep."""
        if not self.signals:
            return
        th = self.thread
        buf = sock.buf
        for v in sorted(self.signals):
            clock = th.clock
            if not buf or buf[0].stamp_ns > max(clock, v):
                continue                    # read already, or nothing there yet
            awake = th.burst_t0 is not None
            if self.sleep_at is not None:
                if v < self.sleep_at:       # it came while the reader was still reading
                    awake = True
                else:
                    th.sleep(self.sleep_at)
                    awake = False
                self.sleep_at = None
            if not awake:                   # asleep in sbwait: woken at v
                waker = buf[0].line_cpu if buf[0].line_cpu >= 0 else None
                clock = _wake(th, self.floating, loads, waker, mem, self.c_migr, self.c_csw,
                              clock if clock > v else v)
                self.wakeups += 1
            cpu = th.cpu
            while buf and buf[0].stamp_ns <= clock:
                m = buf.pop(0)
                c = self.c_recv
                if mem is not None:
                    c += mem.touch_m(cpu, m, MBUF_HDR_LINES + PKT_DATA_LINES)
                    c += mem.touch_rec(cpu, sock.sb_rec, SOCKBUF_LINES)
                th.charge(clock, clock + c)
                clock += c
                sock.cc -= m.len
                lat = clock - m.arrival_ns
                self.lat_sum += lat
                if lat > self.lat_max:
                    self.lat_max = lat
                hist[min(lat.bit_length(), len(hist) - 1)] += 1
                self.read += 1
                free(m)
            self.sleep_at = clock           # the buffer is empty: back to sbwait
            th.clock = clock
        self.signals = []

    def metrics(self) -> dict:
        return {"cpu": self.thread.cpu, "pinned": not self.floating, "wakeups": self.wakeups,
                "read": self.read, "busy_ns": self.thread.busy_total,
                "stall_ns": self.thread.debt_total, "migrations": self.thread.migrations,
                "latency_ns": {"sum": self.lat_sum, "max": self.lat_max}}
