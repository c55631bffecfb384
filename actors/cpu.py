"""cpu: a core, arbitrating its time between the threads placed on it.

What this models.  A core has a clock rate and a fixed capacity of one
quantum of time per window.  Threads run their window as if they had the
core to themselves and report what they used ("use" messages, design §2);
one window later the core orders the reports by priority (lower number first,
as FreeBSD priorities go: ithread 16 > netisr SWI 40 > user 160; ties by
thread name), grants each what is left of the quantum, and sends every
thread that got less than it used a "debt": a stall it pays at the start of
its next window.  Preemption is thereby exact in throughput over many
windows: a high-priority thread is never slowed by a lower one, a lower one
gets what the higher ones leave.  Time is reported and granted per window
of virtual time in which it was spent (a thread may learn of work one
window late and serve it in the past), against that window's capacity; a
late report for a window meets what earlier reports left of it.

Context switches are counted from the bursts the threads report (see
KThread): a burst that starts while a lower-priority thread on this CPU is
in a burst preempts it (involuntary); one that starts while nothing runs is
a switch from the idle thread (voluntary); one that starts while a thread of
better or equal priority runs waits for it and costs no switch of its own;
every burst ends with a voluntary switch.  A burst the thread knows to
preempt its waker (a netisr woken by a loopback sender on its CPU) is
involuntary as it says.  The bursts are each thread's
uncontended timeline, so the count is as exact as the timing (design §2).
Threads report the interrupts they took and their migrations per CPU.

The core also keeps the counter of bytes touched on it (actors/cache.py):
every actor reports its touches (on one of its threads' "use" reports to
the core, or in a "mem" message), the core adds them up, counts the
accesses by where they were served, and publishes the counter and its load
(time wanted per thread and priority in the reports just arbitrated) to every actor that
runs threads ("cstate"), for their cache records and their scheduler
decisions (actors/sched.py).

What it leaves out: the run queue as a data structure (time slices, the
order of equal-priority threads within a window), ULE's interactivity
scores, and SMT siblings sharing a core.
"""

from __future__ import annotations

from .base import Actor, PRI_CLASS, PRI_INTR, PRI_ITHD, PRI_SWI_NET, PRI_USER
from .cache import LEVELS, zeros

try:                        # compiled (actors/_core.py): the burst table is C int64
    import cython
    COMPILED = cython.compiled
except ImportError:         # plain Python without Cython installed
    COMPILED = False

_RING = 64          # windows of capacity in the ring (more than KEEP + the windows ahead)
_RMASK = _RING - 1


# The scheduling classes whose grants are summed in C (PRI_CLASS's, in
# _class_index order); a priority outside them is its own class, str(pri).
_CLASSES = (PRI_CLASS[PRI_INTR], PRI_CLASS[PRI_ITHD], PRI_CLASS[PRI_SWI_NET], PRI_CLASS[PRI_USER])
_P_INTR = PRI_INTR          # C constants when compiled
_P_ITHD = PRI_ITHD
_P_SWI = PRI_SWI_NET
_P_USER = PRI_USER


def _class_index(pri: int) -> int:
    """pri's place in _CLASSES, or -1."""
    if pri == _P_ITHD:
        return 1
    if pri == _P_SWI:
        return 2
    if pri == _P_INTR:
        return 0
    if pri == _P_USER:
        return 3
    return -1


# A burst is a row of _NB int64 in the CPU's burst table: its start and end,
# whether it starts and ends an activation (KThread; starts is -1 once the
# burst is judged), the thread's priority and the thread's number (Cpu.tids).
BURST_ROW = 6
_NB = BURST_ROW         # (a C constant when compiled)


def _sort_rows(rows, lo: int, hi: int) -> None:
    """Sort bursts lo..hi-1 of `rows` by start time, in place: an insertion
    sort, as the bursts come in runs already in order (each thread's, one
    window after another) and move back only past the few other threads'
    bursts of their window.  Bursts are ordered by start alone: what the
    sweep counts for a burst depends on which bursts cover its start, not
    on the order of bursts that start together."""
    for i in range(lo + 1, hi):
        r = i * _NB
        t = rows[r]
        if rows[r - _NB] <= t:
            continue
        t1 = rows[r + 1]
        c2 = rows[r + 2]
        c3 = rows[r + 3]
        c4 = rows[r + 4]
        c5 = rows[r + 5]
        j = r - _NB
        while j >= lo * _NB and rows[j] > t:
            for c in range(_NB):
                rows[j + _NB + c] = rows[j + c]
            j -= _NB
        j += _NB
        rows[j] = t
        rows[j + 1] = t1
        rows[j + 2] = c2
        rows[j + 3] = c3
        rows[j + 4] = c4
        rows[j + 5] = c5


def _table(n: int):
    """A burst table of n values at zero: C int64 (an array a typed
    memoryview reads) when compiled; from source a list, whose items Python
    reads and writes several times faster than an array's."""
    return zeros(n) if COMPILED else [0] * n


def _grown(rows, lo: int, hi: int, n: int):
    """Rows lo..hi-1 of the burst table `rows`, moved to the front of a
    table with room for at least n values (the same one when it has)."""
    new = rows if n <= len(rows) else _table(max(n, 2 * len(rows)))
    nv = new
    for i in range((hi - lo) * _NB):
        nv[i] = rows[lo * _NB + i]
    return new


def _in_order(reports: list) -> bool:
    """Are the reports (window, priority, ...) in order already, their
    windows and priorities rising strictly?  (Mostly one report a thread,
    in inbox order: interrupt threads' before the netisrs'.)  A tie needs
    the full tuple compare: the caller sorts."""
    last = reports[0]
    for i in range(1, len(reports)):
        r = reports[i]
        w0 = last[0]
        w1 = r[0]
        if w1 < w0:
            return False
        if w1 == w0:
            p0 = last[1]
            p1 = r[1]
            if p1 <= p0:
                return False
        last = r
    return True


def _strictly_ordered(demand: list) -> bool:
    """Are the entries in (priority, thread) order with no two the same?
    (They come in inbox order, mostly one per thread by priority already.)"""
    last = demand[0]
    for i in range(1, len(demand)):
        d = demand[i]
        if d[0] < last[0] or (d[0] == last[0] and d[1] <= last[1]):
            return False
        last = d
    return True


class Cpu(Actor):
    KEEP = 16       # windows of remaining capacity remembered for late reports

    def __init__(self, index: int, ghz: float, quantum_ns: int, subscribers=(), package: int = 0,
                 judge: int = 8):
        self.index = index
        self.name = f"cpu{index}"
        self.ghz = ghz
        self.Q = quantum_ns
        self.package = package
        self.subscribers = list(subscribers)
        # window index -> capacity not yet granted: the windows from cap_lo
        # (KEEP back; none below it is remembered) to cap_lo + _RING in a
        # ring (ring_w: the window a slot holds, ring_c: its capacity), any
        # other in the dict `cap` (a report far behind or ahead: rare)
        self.cap = {}
        self.cap_lo = 0
        self.ring_w = zeros(_RING)
        self.ring_c = zeros(_RING)
        for i in range(_RING):
            self.ring_w[i] = -1
        self.g_ns = zeros(4)    # ns granted in total to the classes of _CLASSES
        self.g_seen = zeros(4)  # ... 1 once a class has had a grant (of 0 ns too)
        self.g_other = {}       # other priorities' classes (str(pri)) -> ns
        self.wanted = 0         # ns asked for in total
        self.busy_ns = 0        # granted in windows the run has reached
        self.future = {}        # window -> class -> granted, for windows still ahead
        self.touched = 0        # bytes touched on this core (the cache model's counter)
        self.mem_lines = zeros(len(LEVELS))     # lines by level
        self.mem_ns = 0
        self.csw_vol = 0
        self.csw_invol = 0
        self.events = {}        # "intr", "migr" -> count
        self.bursts = 0
        # the bursts reported and not yet forgotten: rows splo..nsp-1 of
        # `spans` (rows of _NB int64, see _sort_rows and _switches)
        self.spans = _table(16 * _NB)
        self.splo = 0
        self.nsp = 0
        self.act = _table(16)   # the sweep's active bursts (row numbers)
        self.tids = {}          # thread name -> its number in the rows
        self.published = None   # the last cstate sent
        self.last_start = 0     # the latest window's start (metrics judge up to it)
        self.judge = judge      # windows between two sweeps (the counts do not depend on it)

    def step(self, start, end, inbox):
        Q = self.Q
        full = self.Q       # a window's capacity, as the value cap's entries hold
        cap = self.cap
        g_ns = self.g_ns
        g_seen = self.g_seen
        events = self.events
        classes = PRI_CLASS
        debts = {}
        demand = []             # [pri, thread, ns] a "use" message; summed per thread below
        reports = []
        for m in inbox:
            kind = m[4]
            body = m[5]
            if kind == "use":       # [actor, thread, pri, use, bursts, events(, mem)]
                actor = body[0]
                thread = body[1]
                pri = body[2]
                if body[3]:
                    tot = 0
                    for u in body[3]:
                        reports.append((u[0], pri, thread, actor, u[1]))
                        tot += u[1]
                    demand.append([pri, thread, tot])
                if body[4]:
                    self._add_bursts(body[4], pri, thread)
                for ev in body[5]:
                    k = ev[0]
                    events[k] = events.get(k, 0) + ev[1]
                if len(body) > 6:   # the actor's touches here: bytes, lines per level, ns
                    self._mem(body[6], body[7], body[8])
            elif kind == "mem":     # [actor, bytes, lines per level, ns]
                self._mem(body[1], body[2], body[3])
        if len(reports) > 1 and not _in_order(reports):
            reports.sort()
        future = self.future
        if future:
            for wk in sorted([x for x in future if x * Q < end]):
                for cls, got in future.pop(wk).items():
                    self._grant(cls, got)
                    self.busy_ns += got
        e = end
        now_w = -(-e // Q)              # windows w with w * Q < end: begun by now
        wanted = 0
        busy = 0
        lo = self.cap_lo
        ring_w = self.ring_w
        ring_c = self.ring_c
        for r in reports:
            wk = r[0]
            pri = r[1]
            used = r[4]
            w = wk
            if lo <= w < lo + _RING:
                slot = w & _RMASK
                avail = ring_c[slot] if ring_w[slot] == w else full
                got = used if used <= avail else avail
                ring_w[slot] = w
                ring_c[slot] = avail - got
            else:
                avail = cap.get(wk, full)
                got = used if used <= avail else avail
                cap[wk] = avail - got
            wanted += used
            if w < now_w:
                ci = _class_index(pri)
                if ci >= 0:
                    g_ns[ci] += got
                    g_seen[ci] = 1
                else:
                    self._grant(str(pri), got)
                busy += got
            else:           # a thread running ahead: count it when its window comes
                cls = classes.get(pri)
                if cls is None:
                    cls = str(pri)
                f = future.get(wk)
                if f is None:
                    f = future[wk] = {}
                f[cls] = f.get(cls, 0) + got
            if used > got:
                k = (r[3], r[2])
                debts[k] = debts.get(k, 0) + used - got
        self.wanted += wanted
        self.busy_ns += busy
        self.last_start = start
        s0 = start
        if s0 // Q % self.judge == 0:
            self._switches(start)
        old = s0 // Q - self.KEEP       # forget the windows before this one
        if lo < old:
            lo = old
            self.cap_lo = lo
        if cap:                         # the dict's windows: forgotten, into the ring, or kept
            for wk in sorted(cap):
                w = wk
                if w < lo + _RING:
                    got = cap.pop(wk)
                    if w >= lo:
                        ring_w[w & _RMASK] = w
                        ring_c[w & _RMASK] = got
        out = [(actor, "debt", [thread, d], end) for (actor, thread), d in sorted(debts.items())] \
            if debts else []
        if self.subscribers:
            if len(demand) > 1 and not _strictly_ordered(demand):
                # by (priority, thread), one entry each (a thread that sent
                # more than one report: its entries summed)
                demand.sort()
                load = [demand[0]]
                for dm in demand[1:]:
                    last = load[-1]
                    if dm[0] == last[0] and dm[1] == last[1]:
                        last[2] += dm[2]
                    else:
                        load.append(dm)
                demand = load
            st = [self.index, self.touched, demand]
            if st != self.published:       # only what changed: an idle CPU stays quiet
                self.published = st
                for a in self.subscribers:
                    out.append((a, "cstate", st, end))
        return out

    def _grant(self, cls: str, ns: int) -> None:
        """ns granted to a thread of class `cls` (a PRI_CLASS name or str(pri))."""
        ci = _CLASSES.index(cls) if cls in _CLASSES else -1
        if ci >= 0:
            self.g_ns[ci] += ns
            self.g_seen[ci] = 1
        else:
            self.g_other[cls] = self.g_other.get(cls, 0) + ns

    @property
    def granted(self) -> dict:
        """class -> ns granted in total (the classes that have had a grant)."""
        out = dict(self.g_other)
        for ci in range(len(_CLASSES)):
            if self.g_seen[ci]:
                out[_CLASSES[ci]] = self.g_ns[ci]
        return out

    def _mem(self, nbytes: int, counts: list, ns: int) -> None:
        """An actor's touches on this core in a window: bytes, lines by the
        level that served them (LEVELS order), and their ns."""
        self.touched += nbytes
        ml = self.mem_lines
        for i in range(len(counts)):
            ml[i] += counts[i]
        self.mem_ns += ns

    LAG = 2         # windows after which every burst covering a time has been reported

    def _add_bursts(self, bursts: list, pri: int, thread: str) -> None:
        """A thread's reported bursts ([t0, t1, starts, ends] each) into the table."""
        tv = self.tids.get(thread)
        if tv is None:
            tv = self.tids[thread] = len(self.tids)
        n = self.nsp
        if (n + len(bursts)) * _NB > len(self.spans):
            # full: the rows forgotten before splo make room, or a bigger table
            lo = self.splo
            self.spans = _grown(self.spans, lo, n, (n - lo + len(bursts)) * _NB)
            n -= lo
            self.splo = 0
        sp = self.spans
        r = n * _NB
        for b in bursts:
            sp[r] = b[0]
            sp[r + 1] = b[1]
            sp[r + 2] = b[2]
            sp[r + 3] = b[3]
            sp[r + 4] = pri
            sp[r + 5] = tv
            r += _NB
        self.nsp = n + len(bursts)

    def _switches(self, start: int) -> None:
        """Context switches from the reported bursts (see the module comment).

        A burst's start is judged once every burst that could cover it has
        arrived: threads report a window's bursts at its end, and a thread
        that learns of its work one window late reports it a window later
        still; so starts older than LAG windows are judged, and judged
        bursts are kept while they can still cover a later start.  What is
        counted for a start depends only on the bursts that cover it, so
        the sweep runs every `judge` windows (its fixed cost shared by more
        bursts) and once more when the metrics are read, up to the horizon
        of the latest window: the counts are those of a sweep every window.

        The bursts kept are rows splo..nsp-1 of one int64 table (see
        _sort_rows), judged and not: a judged row's `starts` is -1.  C loops
        when compiled."""
        lo = self.splo
        n = self.nsp
        if n == lo:
            return
        Q = self.Q
        horizon = start - self.LAG * Q
        sp = self.spans
        _sort_rows(sp, lo, n)
        # the cover: the bursts starting before the horizon, judged or ready
        # to be (the others start at or after it, after every ready start:
        # they never cover one, so the sweep leaves them out)
        h = lo
        while h < n and sp[h * _NB] < horizon:
            h += 1
        if h == lo:
            return
        if h - lo > len(self.act):
            self.act = _table(2 * (h - lo))
        act = self.act
        # a sweep over the cover by start time: `act` holds the bursts begun
        # by t0 and not yet over (rows in start order, so t0 only grows)
        j = lo
        na = 0
        for i in range(lo, h):
            r = i * _NB
            starts = sp[r + 2]
            if starts < 0:
                continue                # judged in an earlier sweep
            if sp[r + 3]:
                self.csw_vol += 1
            sp[r + 2] = -1              # judged now
            if starts == 2:             # known to preempt its waker
                self.bursts += 1
                self.csw_invol += 1
            elif starts:
                self.bursts += 1
                t0 = sp[r]
                while j < h:
                    if sp[j * _NB] > t0:
                        break
                    act[na] = j
                    na += 1
                    j += 1
                m = 0                   # keep those still running at t0
                for x in range(na):
                    if sp[act[x] * _NB + 1] > t0:
                        act[m] = act[x]
                        m += 1
                na = m
                pri = sp[r + 4]
                th = sp[r + 5]
                worse = better = False
                for x in range(na):
                    o = act[x] * _NB
                    if sp[o + 5] != th:
                        if sp[o + 4] <= pri:
                            better = True
                            break
                        worse = True
                if not better:
                    if worse:
                        self.csw_invol += 1
                    else:
                        self.csw_vol += 1
        # forget the judged bursts that can no longer cover a later start:
        # those in front (one still running keeps the later ones a while;
        # those it keeps can cover no start to come, so the sweep passes them
        # by), to be overwritten when the table is full (_add_bursts)
        old = horizon - self.LAG * Q
        while lo < h and sp[lo * _NB + 1] < old:
            lo += 1
        self.splo = lo

    def metrics(self):
        if self.nsp > self.splo:
            self._switches(self.last_start)     # what is old enough by now
        return {"busy_ns": self.busy_ns, "by_class_ns": dict(sorted(self.granted.items())),
                "wanted_ns": self.wanted, "package": self.package,
                "memory": {"lines": {lv: self.mem_lines[i] for i, lv in enumerate(LEVELS)},
                           "ns": self.mem_ns, "bytes_touched": self.touched},
                "compute_ns": self.busy_ns - min(self.mem_ns, self.busy_ns),
                "context_switches": {"voluntary": self.csw_vol, "involuntary": self.csw_invol},
                "interrupts": self.events.get("intr", 0),
                "activations": self.bursts,
                "migrations_in": self.events.get("migr", 0)}
