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

# Scheduling priorities, FreeBSD 7.x-8.x sys/sys/priority.h (lower is better):
# PI_NET = 16 for a NIC ithread, SWI_NET = PI_SOFT + 4 = 40 for netisr,
# PSOCK 88 for a socket reader asleep, timeshare from 160.
PRI_ITHD = 16
PRI_SWI_NET = 40
PRI_USER = 160
PRI_CLASS = {PRI_ITHD: "intr", PRI_SWI_NET: "swi", PRI_USER: "user"}


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
    """One kernel thread on one CPU: a clock, a priority, time used, a debt.

    Time used is kept per window of virtual time in which it was spent
    (`use`: window index -> ns), because a thread may serve work whose time
    lies in the previous window (it learns of it one window late) and may
    run past its window's end.  Hot loops add time spent inside the current
    window to a local sum and call `charge` only for time outside it."""

    __slots__ = ("name", "actor", "cpu", "pri", "Q", "clock", "use", "busy_total",
                 "debt_total")

    def __init__(self, name: str, actor: str, cpu: int, pri: int, quantum_ns: int):
        self.name = name
        self.actor = actor
        self.cpu = cpu
        self.pri = pri
        self.Q = quantum_ns
        self.clock = 0          # virtual ns at which the thread is next free
        self.use = {}           # window index -> ns used, not yet reported
        self.busy_total = 0
        self.debt_total = 0

    def charge(self, t0: int, t1: int) -> None:
        """Record that the thread ran from t0 to t1, split by window."""
        Q = self.Q
        use = self.use
        while t0 < t1:
            w = t0 // Q
            e = (w + 1) * Q
            seg = (t1 if t1 < e else e) - t0
            use[w] = use.get(w, 0) + seg
            t0 += seg

    def add(self, start: int, ns: int) -> None:
        """Time used inside the window that starts at `start`."""
        if ns:
            w = start // self.Q
            self.use[w] = self.use.get(w, 0) + ns

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

    def report(self, out: list, end: int) -> None:
        """Tell our CPU how long we ran, per window (arbitrated one window later)."""
        if self.use:
            use = sorted(self.use.items())
            self.busy_total += sum(v for _, v in use)
            out.append((f"cpu{self.cpu}", "use", [self.actor, self.name, self.pri, use], end))
            self.use = {}
