"""lock: mutexes and reader/writer locks, resolved by their owner.

What this models (design §2, §4).  A lock belongs to one actor (the vnet for
pcbinfo and pcb locks), which sees every acquisition its threads make - the
time the thread asked, how long it holds the lock, exclusive or shared, and
which thread - and orders them by the time asked (ties by thread name),
as the lock's FIFO hand-off would.  An exclusive acquisition starts when the
lock is free of every holder; a shared one when no writer holds it (readers
overlap).  The wait, start - asked, goes back to the thread as a stall: a
thread spins on an adaptive mutex while the owner runs (it burns its CPU),
so the stall counts as CPU time; hold times come from the code path's costs.

Every lock keeps lockstat's numbers: acquisitions, contended acquisitions,
total and maximum wait, total and maximum hold.  `lockstat.txt` prints them
in the spirit of lockstat(1)'s "Adaptive mutex spin" and "hold" tables.

What it leaves out: turnstiles and priority propagation, the spin-then-block
switch of a long wait (a waiter here always spins), lock-order checking
(WITNESS), and the error of a late request: a request that reaches the
owner a window after later ones waits behind them (FIFO by arrival), off
by at most a quantum.
"""

from __future__ import annotations


class Lock:
    __slots__ = ("name", "kind", "free_w", "free_r", "acq", "contended", "wait_total",
                 "wait_max", "hold_total", "hold_max")

    def __init__(self, name: str, kind: str = "mtx"):
        self.name = name
        self.kind = kind            # "mtx" (exclusive only) or "rw"
        self.free_w = 0             # when the last writer releases it
        self.free_r = 0             # when the last reader releases it
        self.acq = 0
        self.contended = 0
        self.wait_total = 0
        self.wait_max = 0
        self.hold_total = 0
        self.hold_max = 0

    def acquire(self, t: int, hold: int, shared: bool = False) -> int:
        """Ask at t for `hold` ns; returns the time the lock is granted."""
        if shared and self.kind == "rw":
            start = t if t >= self.free_w else self.free_w
            end = start + hold
            if end > self.free_r:
                self.free_r = end
        else:
            start = t
            if self.free_w > start:
                start = self.free_w
            if self.free_r > start:
                start = self.free_r
            self.free_w = start + hold
        self.acq += 1
        w = start - t
        if w:
            self.contended += 1
            self.wait_total += w
            if w > self.wait_max:
                self.wait_max = w
        self.hold_total += hold
        if hold > self.hold_max:
            self.hold_max = hold
        return start

    def stats(self) -> dict:
        return {"kind": self.kind, "acquisitions": self.acq, "contended": self.contended,
                "wait_ns_total": self.wait_total, "wait_ns_max": self.wait_max,
                "hold_ns_total": self.hold_total, "hold_ns_max": self.hold_max}
