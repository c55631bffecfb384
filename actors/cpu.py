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

What it leaves out (for now): caches and memory pricing, context-switch and
migration costs, the ULE load balancer, interrupts as distinct from their
ithreads (design §4; a later work item).
"""

from __future__ import annotations

from .base import Actor, PRI_CLASS


class Cpu(Actor):
    KEEP = 16       # windows of remaining capacity remembered for late reports

    def __init__(self, index: int, ghz: float, quantum_ns: int):
        self.index = index
        self.name = f"cpu{index}"
        self.ghz = ghz
        self.Q = quantum_ns
        self.cap = {}           # window index -> capacity not yet granted
        self.granted = {}       # class -> ns granted in total
        self.wanted = 0         # ns asked for in total
        self.busy_ns = 0

    def step(self, start, end, inbox):
        if not inbox:
            return []
        reports = sorted((w, m[5][2], m[5][1], m[5][0], used)
                         for m in inbox if m[4] == "use" for w, used in m[5][3])
        Q = self.Q
        cap = self.cap
        debts = {}
        for w, pri, thread, actor, used in reports:
            avail = cap.get(w, Q)
            got = used if used <= avail else avail
            cap[w] = avail - got
            self.wanted += used
            cls = PRI_CLASS.get(pri, str(pri))
            self.granted[cls] = self.granted.get(cls, 0) + got
            self.busy_ns += got
            if used > got:
                k = (actor, thread)
                debts[k] = debts.get(k, 0) + used - got
        old = start // Q - self.KEEP
        for w in [w for w in cap if w < old]:
            del cap[w]
        return [(actor, "debt", [thread, d], end) for (actor, thread), d in sorted(debts.items())]

    def metrics(self):
        return {"busy_ns": self.busy_ns, "by_class_ns": dict(sorted(self.granted.items())),
                "wanted_ns": self.wanted}
