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
gets what the higher ones leave.  Reports that arrive in one window are
arbitrated together against that window's capacity.

What it leaves out (for now): caches and memory pricing, context-switch and
migration costs, the ULE load balancer, interrupts as distinct from their
ithreads (design §4; a later work item).
"""

from __future__ import annotations

from .base import Actor, PRI_CLASS


class Cpu(Actor):
    def __init__(self, index: int, ghz: float):
        self.index = index
        self.name = f"cpu{index}"
        self.ghz = ghz
        self.granted = {}       # class -> ns granted in total
        self.wanted = 0         # ns asked for in total
        self.windows = 0
        self.busy_ns = 0

    def step(self, start, end, inbox):
        self.windows += 1
        if not inbox:
            return []
        reports = sorted((m[5][2], m[5][1], m[5][0], m[5][3]) for m in inbox if m[4] == "use")
        avail = end - start
        out = []
        for pri, thread, actor, used in reports:
            got = used if used <= avail else avail
            avail -= got
            self.wanted += used
            cls = PRI_CLASS.get(pri, str(pri))
            self.granted[cls] = self.granted.get(cls, 0) + got
            self.busy_ns += got
            if used > got:
                out.append((actor, "debt", [thread, used - got], end))
        return out

    def metrics(self):
        return {"busy_ns": self.busy_ns, "by_class_ns": dict(sorted(self.granted.items())),
                "wanted_ns": self.wanted}

    def snapshot(self):
        return [self.busy_ns, self.granted, self.wanted, self.windows]

    def restore(self, st):
        self.busy_ns, self.granted, self.wanted, self.windows = st
