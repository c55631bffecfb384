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
* A thread that runs without sleeping is never re-placed at a wakeup; an
  idle CPU steals it (tdq_idled) if it waits behind threads of better or
  equal priority where it is - checked at every window.
* "Can run at once": the CPU spent less than half the window on threads of
  better or equal priority.  "Idle": it spent less than 5% of the window.
  "One thread's worth": one quantum.

A floating (unpinned) MSI-X vector is delivered in the APIC's lowest-
priority mode; FreeBSD leaves every CPU's task priority at 0, so the APIC's
arbitration rotates among all CPUs: we deliver interrupt k of vector v to
CPU (v + k) mod ncpu.  A "balanced" vector is moved by netcabal's own
balancer (FreeBSD has none at run time; intr_shuffle_irqs spreads them once
at boot): each interrupt goes to the least loaded CPU.

What it leaves out: ULE's periodic balancer (sched_balance, every ~0.5-1.5
s, longer than most runs), steal_thresh (we steal one waiting thread), time slices and the
interactivity score, SMT, and cpusets other than "pinned to one CPU".
"""

from __future__ import annotations

IDLE_FRACTION = 0.05
BUSY_FRACTION = 0.5
_IDLE = IDLE_FRACTION       # C doubles when compiled (no value boxed to compare)
_BUSY = BUSY_FRACTION


class Loads:
    """The CPUs' published loads: cpu -> [(priority, thread, ns wanted)].
    A thread asking where to run leaves its own load out (`me`)."""

    __slots__ = ("by_cpu", "Q", "pkg")

    def __init__(self, ncpu: int, quantum_ns: int, pkg: list):
        self.by_cpu = [[] for _ in range(ncpu)]
        self.Q = quantum_ns
        self.pkg = list(pkg)

    def set(self, cpu: int, demand: list) -> None:
        self.by_cpu[cpu] = demand

    def total(self, c: int, me: str = "") -> int:
        s = 0
        for e in self.by_cpu[c]:
            if e[1] != me:
                ns = e[2]
                s += ns
        return s

    def at_or_above(self, c: int, pri: int, me: str = "") -> int:
        s = 0
        for e in self.by_cpu[c]:
            p = e[0]
            if p <= pri and e[1] != me:
                ns = e[2]
                s += ns
        return s

    def can_run(self, c: int, pri: int, me: str = "") -> bool:
        return self.at_or_above(c, pri, me) < _BUSY * self.Q

    def idle(self, c: int, me: str = "") -> bool:
        return self.total(c, me) < _IDLE * self.Q


def _before(a0: int, a1: int, a2: int, a3: int, b0: int, b1: int, b2: int, b3: int) -> bool:
    """(a0, a1, a2, a3) < (b0, b1, b2, b3), as tuples compare."""
    if a0 != b0:
        return a0 < b0
    if a1 != b1:
        return a1 < b1
    if a2 != b2:
        return a2 < b2
    return a3 < b3


def pick_ithread_cpu(loads: Loads, pri: int, vec_cpu: int, last: int, me: str = "") -> int:
    """sched_pickcpu for an interrupt thread woken by a vector on vec_cpu:
    among vec_cpu's package, the least of (cannot run at once, load, not
    the last CPU, not vec_cpu, number)."""
    if loads.idle(vec_cpu, me):
        return vec_cpu
    pkg = loads.pkg
    p = pkg[vec_cpu]
    best = -1
    b0 = b1 = b2 = b3 = 0
    for c in range(len(loads.by_cpu)):
        pc = pkg[c]
        if pc != p:
            continue
        k0 = 0 if loads.can_run(c, pri, me) else 1
        k1 = loads.total(c, me)
        k2 = 1 if c != last else 0
        k3 = 1 if c != vec_cpu else 0
        if best < 0 or _before(k0, k1, k2, k3, b0, b1, b2, b3):
            best = c            # c rises: a tie keeps the lower number, as the key's c would
            b0 = k0
            b1 = k1
            b2 = k2
            b3 = k3
    return best


def pick_thread_cpu(loads: Loads, pri: int, last: int, waker: int | None, me: str = "") -> int:
    """sched_pickcpu for a thread that is not an interrupt thread: its last
    CPU if it can run there at once; else the least of (cannot run at
    once, load, not the last CPU's package, not the last CPU, number); and
    the waker's CPU instead in the case the module comment gives."""
    if loads.can_run(last, pri, me):
        return last
    pkg = loads.pkg
    lp = pkg[last]
    best = -1
    b0 = b1 = b2 = b3 = 0
    for c in range(len(loads.by_cpu)):
        k0 = 0 if loads.can_run(c, pri, me) else 1
        k1 = loads.total(c, me)
        pc = pkg[c]
        k2 = 1 if pc != lp else 0
        k3 = 1 if c != last else 0
        if best < 0 or _before(k0, k1, k2, k3, b0, b1, b2, b3):
            best = c
            b0 = k0
            b1 = k1
            b2 = k2
            b3 = k3
    if (waker is not None and waker != best and not loads.idle(best, me)
            and loads.can_run(waker, pri, me)
            and loads.total(waker, me) <= b1 + loads.Q):
        return waker
    return best


def steal(loads: Loads, pri: int, cur: int, me: str = "") -> int:
    """tdq_idled: a CPU with nothing to run takes a runnable thread from a
    CPU where it waits behind others of better or equal priority.  The
    thread `me`, running on `cur` but unable to run there at once, moves to
    the first idle CPU of its package, else of any package; or stays."""
    if loads.can_run(cur, pri, me):
        return cur
    pkg = loads.pkg
    p = pkg[cur]
    other = -1                  # the first idle CPU of another package
    for c in range(len(loads.by_cpu)):
        if c != cur and loads.idle(c, me):
            pc = pkg[c]
            if pc == p:
                return c
            if other < 0:
                other = c
    return cur if other < 0 else other


def float_vector_cpu(vector: int, k: int, ncpu: int) -> int:
    """Lowest-priority delivery with equal task priorities: a rotation."""
    return (vector + k) % ncpu


def balance_vector_cpu(loads: Loads, vector: int) -> int:
    """An interrupt balancer (netcabal's option; FreeBSD moves no vector at
    run time): the least loaded CPU by the last published loads, ties
    broken by a rotation from the vector's number so that vectors spread."""
    n = len(loads.by_cpu)
    return min(range(n), key=lambda c: (loads.total(c), (c - vector) % n))
