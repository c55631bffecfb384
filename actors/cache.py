"""cache: where a cache line is when a core touches it, and what that costs.

What this models (design §4).  A host has `packages` sockets, each with
`cores` cores; every core has a private cache of `l2_bytes` (think L1+L2 of
a Nehalem-class core: what a core keeps to itself) and every package a shared
last-level cache of `llc_bytes`.  Memory is homed on package 0 (the NIC's DMA
buffers and the kernel's pcbs and sockets are allocated there).

Residency follows an LRU stack-distance model.  Every core c keeps a counter
of the bytes it has touched, C[c], and every package p the sum over its
cores, P[p].  An object's lines carry a record of the core that last touched
them and the two counters at that moment: (core, C[core], P[pkg(core)]).  A
line last touched by core r is still in r's private cache if r has touched
fewer than `l2_bytes` since (C[r] now - C[r] then), and still in r's package
LLC if the package has touched fewer than `llc_bytes` since.  A touch by core
c is then served, per line, from:

  local       c's own private cache (the line was c's, and is still there)
  llc         the package's LLC (c's package; evicted from the private cache,
              or the last toucher was another core of the package that has
              since evicted it)
  xcore       another core's private cache in the same package (a
              cache-to-cache transfer: the line was written there)
  xpkg        a cache of another package (a transfer across the interconnect)
  dram        memory on c's own package (home package = c's package)
  dram_remote memory homed on another package

and the line's record becomes c's.  Every touch adds its bytes to C[c] and
P[pkg(c)].  Read-mostly objects (addresses, routes, rules) can be held by
many cores at once: their record is one (C, P) per core that read them, and a
read is local if this core still holds the line, llc if a core of this
package read it within the LLC's reach, else DRAM.

Who knows the counters.  Threads of many actors touch the same core; each
actor keeps a `MemView`: the per-core and per-package counters that the CPU
actors publish every window (every actor's touches, reported one window
earlier) plus what its own threads touched since.  So a record's distance is
exact for an actor's own touches and misses other actors' touches of the
last one or two windows: the same bound-weave error as time (design §2),
bounded by what a core touches in two quanta (about 10 KB per core at a
million packets a second with the default 20 µs quantum, against a 256 KB
private cache).

What it leaves out: instruction fetch, the stack and every object the paths
do not name (so working sets are those of the named objects only), L1 as
distinct from L2, associativity and conflict misses, hardware prefetch,
write-backs and their bandwidth, DDIO (the NIC writes to DRAM, as in 2006),
memory bandwidth and queueing, TLBs, and NUMA placement other than "home is
package 0".
"""

from __future__ import annotations

from array import array

LINE = 64
LEVELS = ("local", "llc", "xcore", "xpkg", "dram", "dram_remote")
L_LOCAL, L_LLC, L_XCORE, L_XPKG, L_DRAM, L_DRAM_REMOTE = range(6)
# the same as C constants when compiled (the pricing returns and indexes
# with them per touch: no module lookup and unboxing each time)
_LOCAL, _LLC, _XCORE, _XPKG, _DRAM, _DRAM_REMOTE = L_LOCAL, L_LLC, L_XCORE, L_XPKG, L_DRAM, \
    L_DRAM_REMOTE
COST_KEYS = ("mem_local", "mem_llc", "mem_xcore", "mem_xpkg", "mem_dram", "mem_dram_remote")
NOWHERE = -1            # record core for a line only memory holds (never cached, or DMA'd)

# lines each named object occupies in the paths that touch it
MBUF_HDR_LINES = 2      # struct mbuf + pkthdr (256-byte mbuf: the first two lines)
PKT_DATA_LINES = 2      # the first 128 bytes of packet data: link, IP and transport headers
QUEUE_LINES = 1         # a netisr workstream's per-protocol queue head (struct netisr_work)
PCB_LINES = 2           # struct inpcb: addresses, ports, flags, the lock
SOCKBUF_LINES = 2       # so_rcv: sb_cc, sb_mb/sb_mbtail, the lock, the wakeup flags
IFADDR_LINES = 1        # in_ifaddrhashtbl / in6_ifaddr bucket read by ip_input's "ours?"
THREAD_LINES = 8        # a thread's own working state: its stack, the driver softc or the workstream


class Topology:
    """Packages, cores, cache sizes and latencies (ns per line, per level)."""

    __slots__ = ("ncpu", "npkg", "pkg", "l2", "llc", "lat_ns", "pkg_cores")

    def __init__(self, host: dict):
        self.ncpu = host["cpus"]
        self.npkg = host.get("packages", 1)
        per = -(-self.ncpu // self.npkg)
        self.pkg = [c // per for c in range(self.ncpu)]
        self.pkg_cores = [[c for c in range(self.ncpu) if self.pkg[c] == p] for p in range(self.npkg)]
        self.l2 = host.get("l2_bytes", 256 << 10)
        self.llc = host.get("llc_bytes", 8 << 20)
        ghz = host["ghz"]
        costs = host["costs"]
        self.lat_ns = [costs[k] / ghz for k in COST_KEYS]


class MemView:
    """One actor's view of the cores' touch counters, and the pricing of its
    threads' touches.  Counts and ns are kept per core for the current window
    and reported to the CPU actors (`report`).

    The counters are int64 arrays (array('q')), so that the compiled model
    keeps them in C (actors/cache.pxd); `cnt` is flat, core c's six levels at
    c * 6, and `price` too, level lv's prices at lv * 33 (for 0..32 lines)."""

    __slots__ = ("t", "pkg", "l2", "llc", "now_c", "now_p", "cur_c", "cur_p", "prev_c",
                 "cnt", "nsl", "actor", "price")

    def __init__(self, topo: Topology, actor: str):
        self.t = topo
        self.pkg = array("q", topo.pkg)
        self.l2 = topo.l2
        self.llc = topo.llc
        self.actor = actor
        n, p = topo.ncpu, topo.npkg
        self.now_c = zeros(n)      # the counters as we know them: published + ours since
        self.now_p = zeros(p)
        self.cur_c = zeros(n)      # bytes our threads touched this window
        self.cur_p = zeros(p)
        self.prev_c = zeros(n)     # ... and in the window before
        self.cnt = zeros(n * 6)    # lines per core and level, this window
        self.nsl = zeros(n)        # memory ns, this window
        # ns for `lines` lines at each level (integer, rounded once)
        self.price = array("q", [int(k * lat + 0.5) for lat in topo.lat_ns for k in range(33)])

    # -- counters -------------------------------------------------------------
    def publish(self, pub_c: list) -> None:
        """The CPUs' counters as of reports sent two windows back: add what
        we touched in the window just before and in this one (not yet in
        them)."""
        now_c = self.now_c
        prev_c = self.prev_c
        cur_c = self.cur_c
        for c in range(len(now_c)):
            v = pub_c[c]                # (compiled: one C int64, no Python sum)
            now_c[c] = v + prev_c[c] + cur_c[c]
        now_p = self.now_p
        pkg = self.pkg
        for p in range(len(now_p)):
            now_p[p] = 0
        for c in range(len(now_c)):
            now_p[pkg[c]] += now_c[c]

    def now(self, c: int) -> tuple:
        return c, self.now_c[c], self.now_p[self.pkg[c]]

    # -- pricing ----------------------------------------------------------------
    def level(self, c: int, rc: int, rat: int, rpat: int) -> int:
        """Where core c finds a line whose record is (rc, rat, rpat)."""
        pkg = self.pkg
        p = pkg[c]
        if rc < 0:
            return _DRAM if p == 0 else _DRAM_REMOTE
        rp = pkg[rc]
        if self.now_c[rc] - rat < self.l2:
            if rc == c:
                return _LOCAL
            return _XCORE if rp == p else _XPKG
        if self.now_p[rp] - rpat < self.llc:
            return _LLC if rp == p else _XPKG
        return _DRAM if p == 0 else _DRAM_REMOTE

    def _price(self, lv: int, lines: int) -> int:
        """ns for `lines` lines at level lv (the table for up to 32 lines)."""
        if 0 <= lines <= 32:
            return self.price[lv * 33 + lines]
        return int(lines * self.t.lat_ns[lv] + 0.5)

    def _add(self, c: int, p: int, lv: int, lines: int, ns: int) -> None:
        """Count `lines` lines at level lv and `ns` on core c (package p)."""
        self.cnt[c * 6 + lv] += lines
        self.nsl[c] += ns
        b = lines * LINE
        self.cur_c[c] += b
        self.now_c[c] += b
        self.cur_p[p] += b
        self.now_p[p] += b

    def touch(self, c: int, rec: tuple | None, lines: int) -> int:
        """Core c touches `lines` lines whose record is `rec` ((core, C, P) or
        None for memory only).  Returns the (integer) ns it costs; the caller
        stores `self.now(c)` as the new record."""
        p = self.pkg[c]
        if rec is None or rec[0] < 0:
            lv = _DRAM if p == 0 else _DRAM_REMOTE
        else:
            lv = self.level(c, rec[0], rec[1], rec[2])
        ns = self._price(lv, lines)
        self._add(c, p, lv, lines, ns)
        return ns

    def touch_rec(self, c: int, rec: array, lines: int) -> int:
        """touch() for a record kept in an int64 array (line_rec), which
        becomes c's in place: what `touch(c, rec, lines)` and then
        `rec = self.now(c)` do, with no tuple a touch."""
        p = self.pkg[c]
        rc = rec[0]
        if rc < 0:
            lv = _DRAM if p == 0 else _DRAM_REMOTE
        else:
            lv = self.level(c, rc, rec[1], rec[2])
        ns = self._price(lv, lines)
        self._add(c, p, lv, lines, ns)
        rec[0] = c
        rec[1] = self.now_c[c]
        rec[2] = self.now_p[p]
        return ns

    def touch_m(self, c: int, m, lines: int) -> int:
        """Core c touches `lines` of mbuf m's lines: priced by m's record,
        which becomes c's."""
        p = self.pkg[c]
        rc = m.line_cpu
        if rc < 0:
            lv = _DRAM if p == 0 else _DRAM_REMOTE
        else:
            lv = self.level(c, rc, m.line_at, m.line_pat)
        ns = self._price(lv, lines)
        self._add(c, p, lv, lines, ns)
        m.line_cpu = c
        m.line_at = self.now_c[c]
        m.line_pat = self.now_p[p]
        return ns

    def rx_touch(self, c: int, m, hdr_lines: int, data_lines: int) -> int:
        """The driver's first touch of a received packet on core c: the mbuf
        header where m's record says (the CPU that refilled the ring), the
        data lines from memory (the NIC wrote them there).  m's record
        becomes c's."""
        p = self.pkg[c]
        lv = self.level(c, m.line_cpu, m.line_at, m.line_pat)
        dl = _DRAM if p == 0 else _DRAM_REMOTE
        ns = self._price(lv, hdr_lines) + self._price(dl, data_lines)
        self.cnt[c * 6 + lv] += hdr_lines
        self.cnt[c * 6 + dl] += data_lines
        self.nsl[c] += ns
        b = (hdr_lines + data_lines) * LINE
        self.cur_c[c] += b
        self.cur_p[p] += b
        self.now_c[c] += b
        self.now_p[p] += b
        m.line_cpu = c
        m.line_at = self.now_c[c]
        m.line_pat = self.now_p[p]
        return ns

    def charge(self, c: int, lv: int, lines: int) -> int:
        ns = self._price(lv, lines)
        self._add(c, self.pkg[c], lv, lines, ns)
        return ns

    def touch_shared(self, c: int, rec: array, lines: int) -> int:
        """A read of a read-mostly object whose records `rec` (shared_rec)
        hold, per core, (C, P) of its last read there."""
        p = self.pkg[c]
        mine = rec[2 * c]
        if mine >= 0 and self.now_c[c] - mine < self.l2:
            lv = _LOCAL
        else:
            lv = _DRAM if p == 0 else _DRAM_REMOTE
            pnow = self.now_p[p]
            pkg = self.pkg
            for oc in range(len(rec) // 2):
                opat = rec[2 * oc + 1]
                if opat >= 0 and pkg[oc] == p and pnow - opat < self.llc:
                    lv = _LLC
                    break
        ns = self.charge(c, lv, lines)
        rec[2 * c] = self.now_c[c]
        rec[2 * c + 1] = self.now_p[p]
        return ns

    def between(self, c: int, other: int) -> int:
        """A line ping-ponging between two cores: where c finds what `other`
        just wrote (a queue head both write)."""
        if other == c:
            return _LOCAL
        return _XCORE if self.pkg[other] == self.pkg[c] else _XPKG

    # -- reporting ------------------------------------------------------------------
    def report(self, out: list, end: int) -> None:
        """Send each CPU what we touched on it this window; roll the window.

        What we touched on a CPU rides on the first "use" report in `out` for
        that CPU (one of our threads ran there: the body gains [bytes, lines
        per level, ns]); only a CPU none of our threads reports to gets a
        "mem" message of its own ([actor, bytes, lines per level, ns])."""
        cur = self.cur_c
        cnt = self.cnt
        nsl = self.nsl
        uses = None
        for c in range(len(cur)):
            b = cur[c]
            if b:
                if uses is None:        # our threads' reports, by CPU
                    uses = {}
                    for o in out:
                        if o[1] == "use" and o[0] not in uses:
                            uses[o[0]] = o[2]
                k = c * 6
                name = cpu_name(c)
                lines = [cnt[k], cnt[k + 1], cnt[k + 2], cnt[k + 3], cnt[k + 4], cnt[k + 5]]
                body = uses.get(name)
                if body is not None and len(body) == 6:
                    body.append(b)
                    body.append(lines)
                    body.append(nsl[c])
                else:
                    out.append((name, "mem", [self.actor, b, lines, nsl[c]], end))
                for i in range(k, k + 6):
                    cnt[i] = 0
                nsl[c] = 0
        # roll: this window's counts become the previous window's, and the
        # previous window's array, zeroed, takes this window's counts
        prev = self.prev_c
        for c in range(len(prev)):
            prev[c] = 0
        self.prev_c = cur
        self.cur_c = prev
        cur_p = self.cur_p
        for c in range(len(cur_p)):
            cur_p[c] = 0


_CPU_NAMES = [f"cpu{c}" for c in range(64)]


def cpu_name(c: int) -> str:
    """The name of core c's actor ("cpu3"), made once (reports name their
    CPU every window)."""
    names = _CPU_NAMES
    if c < 0:
        raise ValueError(f"no CPU {c}")
    while c >= len(names):
        names.append(f"cpu{len(names)}")
    return names[c]


def line_rec() -> array:
    """The cache record of an object's lines, for MemView.touch_rec: the
    core that last touched them (NOWHERE: only memory has them) and that
    core's and its package's counters then.  An int64 array, so that the
    compiled model reads and writes it in C."""
    return array("q", [NOWHERE, 0, 0])


def shared_rec(ncpu: int) -> array:
    """The cache records of a read-mostly object (MemView.touch_shared): per
    core c, the core's and its package's counters at its last read there, at
    2c and 2c + 1 (-1: never read there).  An int64 array, so that the
    compiled model reads and writes them in C."""
    return array("q", [-1] * (2 * ncpu))


def zeros(n: int) -> array:
    """n int64 counters at zero (array('q'): C int64 through a typed
    memoryview when compiled), for the model's per-window and per-run
    counters."""
    return array("q", bytes(8 * n))
