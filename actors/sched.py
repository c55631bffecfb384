"""sched: where an unpinned thread runs, and where a floating interrupt lands.

What this models.  FreeBSD's ULE scheduler places a thread when it is woken
(sched_add -> sched_pickcpu); it follows that choice, simplified to the
loads the CPU actors publish every window (actors/cpu.py: time wanted per
priority in the window they last arbitrated, one to two windows old):

* An interrupt thread woken by its vector on CPU v (sched_pickcpu's "prefer
  to run interrupt threads on the processors that generate the interrupt"):
  v if v is idle; else the least-loaded CPU of v's package (v's last-level
  cache group) on which it can run at once, its last CPU first among equals.
* Any other thread (a netisr SWI thread with net.isr.bindthreads=0): its
  last CPU if it can run there at once (ULE's affinity: the thread ran
  there recently and the CPU runs nothing of better or equal priority);
  else the least-loaded CPU that can run it at once, the last CPU's package
  first (sched_lowest over the cache groups); and if that CPU is not idle
  while the waker's CPU could run it as well and is no more loaded by more
  than one thread's worth, the waker's CPU (ULE's last test in
  sched_pickcpu).  This last rule is why an unbound netisr woken from a
  busy sender's CPU tends to land on that CPU and preempt it.
* "Can run at once": the CPU spent less than half the window on threads of
  better or equal priority.  "Idle": it spent less than 5% of the window.
  "One thread's worth": one quantum.

A floating (unpinned) MSI-X vector is delivered in the APIC's lowest-
priority mode; FreeBSD leaves every CPU's task priority at 0, so the APIC's
arbitration rotates among all CPUs: we deliver interrupt k of vector v to
CPU (v + k) mod ncpu.

What it leaves out: ULE's periodic balancer (sched_balance, every ~0.5-1.5
s, longer than most runs), idle stealing (tdq_idled), time slices and the
interactivity score, SMT, and cpusets other than "pinned to one CPU".
"""

from __future__ import annotations

IDLE_FRACTION = 0.05
BUSY_FRACTION = 0.5


class Loads:
    """The CPUs' published loads: cpu -> [(priority, ns wanted)]."""

    __slots__ = ("by_cpu", "Q", "pkg")

    def __init__(self, ncpu: int, quantum_ns: int, pkg: list):
        self.by_cpu = [[] for _ in range(ncpu)]
        self.Q = quantum_ns
        self.pkg = pkg

    def set(self, cpu: int, demand: list) -> None:
        self.by_cpu[cpu] = demand

    def total(self, c: int) -> int:
        return sum(ns for _, ns in self.by_cpu[c])

    def at_or_above(self, c: int, pri: int) -> int:
        return sum(ns for p, ns in self.by_cpu[c] if p <= pri)

    def can_run(self, c: int, pri: int) -> bool:
        return self.at_or_above(c, pri) < BUSY_FRACTION * self.Q

    def idle(self, c: int) -> bool:
        return self.total(c) < IDLE_FRACTION * self.Q


def pick_ithread_cpu(loads: Loads, pri: int, vec_cpu: int, last: int) -> int:
    """sched_pickcpu for an interrupt thread woken by a vector on vec_cpu."""
    if loads.idle(vec_cpu):
        return vec_cpu
    p = loads.pkg[vec_cpu]
    cands = [c for c in range(len(loads.by_cpu)) if loads.pkg[c] == p]
    return min(cands, key=lambda c: (not loads.can_run(c, pri), loads.total(c),
                                     c != last, c != vec_cpu, c))


def pick_thread_cpu(loads: Loads, pri: int, last: int, waker: int | None) -> int:
    """sched_pickcpu for a thread that is not an interrupt thread."""
    if loads.can_run(last, pri):
        return last
    lp = loads.pkg[last]
    best = min(range(len(loads.by_cpu)),
               key=lambda c: (not loads.can_run(c, pri), loads.total(c),
                              loads.pkg[c] != lp, c != last, c))
    if (waker is not None and waker != best and not loads.idle(best)
            and loads.can_run(waker, pri)
            and loads.total(waker) <= loads.total(best) + loads.Q):
        return waker
    return best


def float_vector_cpu(vector: int, k: int, ncpu: int) -> int:
    """Lowest-priority delivery with equal task priorities: a rotation."""
    return (vector + k) % ncpu
