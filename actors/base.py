"""What every actor and every modelled kernel thread shares.

An actor is a plain object with a name and one method,
``step(window_start, window_end, inbox) -> outbox`` (design §2).  ``inbox`` is
the list of messages due in the window, each a tuple
``(deliver_ns, sender, seq, dest, kind, payload)`` in canonical order;
the outbox is a list of ``(dest, kind, payload, at_ns)``: the engine stamps
sender and sequence number and makes the message due at
``max(at_ns, window_end)``.  Nothing here knows about Ray or about the engine.

`KThread` models one kernel thread that serves a FIFO of work on a CPU: it
keeps its own virtual clock, charges the time of each item, reports the time
it used to its CPU every window, and pays back as a stall the "debt" the CPU
sends when the CPU was shared (the bound-weave scheme of design §2).  Work is
handed between threads with a time stamp (``Mbuf.stamp_ns``): a thread starts
an item at ``max(clock, stamp)``, even when the stamp lies in an earlier
window, so queueing inside one thread is exact whatever the quantum; what the
quantum rounds is when the *result* becomes visible to the next actor.  Items
from two sources whose stamps fall in the same quantum can be served out of
stamp order by at most one quantum: that is the model's timing error.
"""

from __future__ import annotations

from .cache import cpu_name, line_rec

# Scheduling priorities, FreeBSD 7.x-8.x sys/sys/priority.h (lower is better):
# PI_NET = 16 for a NIC ithread, SWI_NET = PI_SOFT + 4 = 40 for netisr,
# PSOCK 88 for a socket reader asleep, timeshare from 160.  PRI_INTR (0, not
# a thread priority) is interrupt context itself: the vector's entry and
# filter run before any thread, on whatever CPU the interrupt lands.
PRI_INTR = 0
PRI_ITHD = 16
PRI_SWI_NET = 40
PRI_USER = 160
PRI_CLASS = {PRI_INTR: "irq", PRI_ITHD: "intr", PRI_SWI_NET: "swi", PRI_USER: "user"}

# A message's kind as a small integer, for the actors' inbox loops: one
# lookup of the kind (a str, its hash kept in it) instead of a chain of
# string comparisons (compiled, each unequal comparison is a call into
# CPython's ordering compare).  0: a kind not listed here.
MSG_PKTS_UDP, MSG_PKTS_TCP, MSG_CSTATE, MSG_DEBT, MSG_MDEBT = 1, 2, 3, 4, 5
MSG_ISR_STATE, MSG_SCHED_POINT, MSG_WS_STATE = 6, 7, 8
MSG_CODE = {"pkts.udp": MSG_PKTS_UDP, "pkts.tcp": MSG_PKTS_TCP, "cstate": MSG_CSTATE,
            "debt": MSG_DEBT, "mdebt": MSG_MDEBT, "isr_state": MSG_ISR_STATE,
            "sched_point": MSG_SCHED_POINT, "ws_state": MSG_WS_STATE}


class Actor:
    """Base class: a name, a step, and what the run reads for conservation."""

    name = "?"

    def step(self, start: int, end: int, inbox: list) -> list:  # pragma: no cover
        raise NotImplementedError

    def holding(self) -> int:
        """Packets this actor holds right now (for the conservation check)."""
        return 0

    def metrics(self) -> dict:
        return {}


class Tap:
    """Frames whose way ended in this actor - delivered or dropped, and why -
    kept (up to `cap`) for delivered.pcapng and dropped.pcapng.  The bytes are
    the frame as it came off the wire (the mbuf's storage)."""

    __slots__ = ("cap", "frames", "lost")

    def __init__(self, cap: int):
        self.cap = cap
        self.frames = []        # (arrival_ns, pkt_id, rcvif, dropped, what, frame bytes)
        self.lost = 0           # frames past the cap: counted, not kept

    def add(self, m, dropped: bool, what: str) -> None:
        if len(self.frames) < self.cap:
            self.frames.append((m.arrival_ns, m.pkt_id, m.rcvif, dropped, what, m.st.data))
        else:
            self.lost += 1


def make_tap(host: dict):
    cap = host.get("tap_max", 0)
    return Tap(cap) if cap else None


class KThread:
    """One kernel thread: a clock, a priority, time used, a debt, and what a
    scheduler counts about it.

    Time used is kept per CPU and per window of virtual time in which it was
    spent (`use`: window index -> ns, on the CPU it runs on now; `moved`: the
    same for CPUs it left this window), because a thread may serve work whose
    time lies in the previous window (it learns of it one window late) and may
    run past its window's end.  Hot loops add time spent inside the current
    window to a local sum and call `charge` only for time outside it.

    Each activation - from the moment the thread is woken to the moment it
    sleeps again - is a burst, reported to the CPU with its start and end so
    that the CPU can count context switches (a burst that starts while a
    lower-priority thread runs preempts it: an involuntary switch; one that
    starts on an idle CPU is a voluntary switch of the idle thread; every
    burst ends in a voluntary switch).  `move` places the thread on another
    CPU (a migration); `state` is the record (actors/cache.py) of the lines of
    the thread's own working state."""

    __slots__ = ("name", "actor", "cpu", "pri", "Q", "clock", "use", "busy_total",
                 "debt_total", "moved", "bursts", "burst_t0", "events", "state",
                 "migrations", "pw", "pns", "nintr")

    def __init__(self, name: str, actor: str, cpu: int, pri: int, quantum_ns: int):
        self.name = name
        self.actor = actor
        self.cpu = cpu
        self.pri = pri
        self.Q = quantum_ns
        self.clock = 0          # virtual ns at which the thread is next free
        self.use = {}           # window index -> ns used on self.cpu, not yet reported
        self.pw = -1            # ... but the latest window's ns are summed here first
        self.pns = 0            # (one dict update a window, not one a charge; see _flush)
        self.moved = {}         # cpu -> {window: ns} used on CPUs left this window
        self.busy_total = 0
        self.debt_total = 0
        self.bursts = {}        # cpu -> [[t0, t1, starts, ends], ...] not yet reported
        self.burst_t0 = None    # start of the running burst (None: asleep)
        self.events = {}        # cpu -> {"intr": n, "migr": n}
        self.nintr = 0          # interrupts on self.cpu not yet in events (see intr)
        self.state = line_rec()     # cache record of the thread's working state
        self.migrations = 0

    def charge(self, t0: int, t1: int) -> None:
        """Record that the thread ran from t0 to t1, split by window."""
        Q = self.Q
        w = t0 // Q
        if t0 < t1 and t1 <= (w + 1) * Q:      # the common case: inside one window
            if w == self.pw:
                self.pns += t1 - t0
            else:
                self._use(w, t1 - t0)
            return
        while t0 < t1:
            w = t0 // Q
            e = (w + 1) * Q
            seg = (t1 if t1 < e else e) - t0
            self._use(w, seg)
            t0 += seg

    def add(self, start: int, ns: int) -> None:
        """Time used inside the window that starts at `start`."""
        if ns:
            self._use(start // self.Q, ns)

    def _use(self, w: int, ns: int) -> None:
        """ns used in window w: summed in (pw, pns) while the thread keeps
        charging the same window; the sum goes into self.use when another
        window is charged, and before anything reads self.use (_flush)."""
        if w == self.pw:
            self.pns += ns
            return
        self._flush()
        self.pw = w
        self.pns = ns

    def _flush(self) -> None:
        if self.pns:
            use = self.use
            use[self.pw] = use.get(self.pw, 0) + self.pns
            self.pns = 0

    # -- activations and placement ------------------------------------------------
    def wake(self, t: int, preempting: bool = False) -> None:
        """The thread starts a burst at t (it was asleep).  `preempting`: the
        waker is known to be a lower-priority thread running on this CPU,
        which the burst preempts (the CPU need not look for it)."""
        self.burst_t0 = t
        st = 2 if preempting else 1
        b = self.bursts.get(self.cpu)
        if b is None:
            self.bursts[self.cpu] = [[t, t, st, 0]]
        else:
            b.append([t, t, st, 0])

    def sleep(self, t: int) -> None:
        """The burst ends at t: the thread blocks (a voluntary switch)."""
        self.burst_t0 = None
        b = self.bursts.get(self.cpu)
        if b:
            b[-1][1] = t
            b[-1][3] = 1
        else:               # a burst begun in an earlier window
            self.bursts[self.cpu] = [[t, t, 0, 1]]

    def intr(self) -> None:
        """An interrupt taken on our CPU: count("intr"), summed in a plain
        counter until the events are read (report) or the CPU changes (move)."""
        self.nintr += 1

    def _flush_intr(self) -> None:
        if self.nintr:
            n = self.nintr
            self.nintr = 0
            self.count("intr", n)

    def count(self, what: str, n: int = 1) -> None:
        ev = self.events.get(self.cpu)
        if ev is None:
            ev = self.events[self.cpu] = {}
        ev[what] = ev.get(what, 0) + n

    def move(self, cpu: int, migrate: bool = True) -> None:
        """Place the thread on `cpu` (between bursts): the time it used on the
        old CPU this window is kept for that CPU.  `migrate` False: not a
        thread migration (interrupt context following a floating vector)."""
        if cpu == self.cpu:
            return
        self._flush()
        self._flush_intr()
        if self.use:
            old = self.moved.setdefault(self.cpu, {})
            for w, ns in self.use.items():
                old[w] = old.get(w, 0) + ns
            self.use = {}
        self.cpu = cpu
        if self.burst_t0 is not None:   # moved while running: a new burst there
            t = self.clock
            self.burst_t0 = t
            self.bursts.setdefault(cpu, []).append([t, t, 1, 0])
        if migrate:
            self.migrations += 1
            self.count("migr")

    def pay_debt(self, start: int, debt: int) -> None:
        """The CPU was shared: stall for the time we were denied.

        The stall is paid at the start of the window in which the debt
        arrives (two windows after the work it is for).  It is not absorbed
        by idle time the thread seemed to have since: that idle time was
        computed as if uncontended, and in truth the thread was still busy
        with the work it was denied CPU for.  The stall counts as time used
        on the CPU now, so the CPU keeps arbitrating it until it is paid."""
        self.debt_total += debt
        if self.clock < start:
            self.clock = start
        self.charge(self.clock, self.clock + debt)
        self.clock += debt

    def pay_stall(self, start: int, ns: int) -> None:
        """Memory stalls of past work priced by another actor (the vnet's
        pcbs and socket buffers).  The time is used on the CPU now; it
        delays the thread only if the thread is still busy: a thread that
        has gone idle since absorbed the stall in its idle time."""
        self.debt_total += ns
        if self.clock >= start:
            self.charge(self.clock, self.clock + ns)
            self.clock += ns
        else:
            self.charge(start, start + ns)

    def report(self, out: list, end: int) -> None:
        """Tell the CPUs how long we ran, per window, with our bursts and
        events (arbitrated one window later)."""
        ev = self.events
        c = self.cpu
        bursts = self.bursts
        n = self.nintr
        if not self.moved and len(bursts) <= 1 and (not bursts or c in bursts) \
                and (not ev or (len(ev) == 1 and c in ev)):
            # the common case: one CPU, no migrations (interrupts counted or
            # not): one report, as the general case below would make it
            if not (self.pns or self.use or bursts or ev or n):
                return                  # asleep all window: nothing to say
            if self.use:
                if self.pns and len(self.use) == 1:
                    # one earlier window in the dict and the latest in (pw, pns):
                    # the two in window order, as sorting the flushed dict would
                    for w0, v0 in self.use.items():
                        pw = self.pw
                        pns = self.pns
                        self.pns = 0
                        if w0 == pw:
                            use = [(w0, v0 + pns)]
                        elif w0 < pw:
                            use = [(w0, v0), (pw, pns)]
                        else:
                            use = [(pw, pns), (w0, v0)]
                else:
                    self._flush()
                    use = sorted(self.use.items())
                for _, v in use:
                    self.busy_total += v
            elif self.pns:          # time in one window only: no dict to sort
                use = [(self.pw, self.pns)]
                self.busy_total += self.pns
                self.pns = 0
            else:
                use = []
            b = bursts.get(c)
            if b is None:
                b = []
            elif self.burst_t0 is not None:
                b[-1][1] = max(b[-1][1], min(self.clock, end))
            if ev:
                if n:               # the interrupts summed in nintr (intr)
                    self.nintr = 0
                    e = ev[c]
                    e["intr"] = e.get("intr", 0) + n
                evs = sorted(ev[c].items())
                ev.clear()
            elif n:                 # interrupts only: the events are just these
                self.nintr = 0
                evs = [("intr", n)]
            else:
                evs = []
            out.append((cpu_name(c), "use", [self.actor, self.name, self.pri, use, b, evs], end))
            # the message holds new lists, not these dicts: empty them for reuse
            self.use.clear()
            if bursts:
                bursts.clear()
            if self.burst_t0 is not None:   # the burst goes on in the next window
                t = min(self.clock, end)
                if evs:
                    bursts[c] = [[max(self.burst_t0, t), t, 0, 0]]
                else:
                    bursts[c] = [[t, t, 0, 0]]
            return
        self._flush_intr()
        if not (self.pns or self.use or self.moved or self.bursts or self.events):
            return                      # asleep all window: nothing to say
        self._flush()
        per = dict(self.moved)
        if self.use:
            cur = per.setdefault(self.cpu, {})
            for w, ns in self.use.items():
                cur[w] = cur.get(w, 0) + ns
        if self.burst_t0 is not None:   # still running: report what ran so far
            b = self.bursts.get(self.cpu)
            if b:
                b[-1][1] = max(b[-1][1], min(self.clock, end))
        cpus = set(per) | set(self.bursts) | set(self.events)
        for c in sorted(cpus):
            use = sorted(per.get(c, {}).items())
            for _, v in use:
                self.busy_total += v
            out.append((cpu_name(c), "use", [self.actor, self.name, self.pri, use,
                                          self.bursts.get(c, []),
                                          sorted(self.events.get(c, {}).items())], end))
        self.use = {}
        self.moved = {}
        self.bursts = {}
        self.events = {}
        if self.burst_t0 is not None:   # the burst goes on in the next window
            self.bursts[self.cpu] = [[max(self.burst_t0, min(self.clock, end)), min(self.clock, end), 0, 0]]
