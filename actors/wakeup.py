"""wakeup: when a sleeping consumer thread is signalled that work waits.

What this models: the meeting's netisr.wakeup item.  A producer (a user
thread sending over loopback, whose if_simloop queues to a netisr; or a
netisr or ithread appending to a socket buffer, whose sorwakeup wakes the
reading application) tells a sleeping consumer that work is queued.  Three
policies:

  immediate  every enqueue signals (swi_sched / wakeup at once); a consumer
             of better priority on the producer's CPU preempts it there and
             then - FreeBSD's behaviour, and the meeting's regression for
             loopback;
  deferred   the signal waits for the producer's next scheduling point: the
             moment it blocks or yields (for a sender: the end of its burst
             of sends; for a netisr or an ithread: the moment it sleeps);
  batched    the signal goes out once `batch` items wait unsignalled, or
             `timeout_ns` after the first of them, whichever is first.

A signal to a consumer that is already running changes nothing (it takes
the item in its loop); a signal to a sleeping consumer wakes it.

`Batcher` keeps the unsignalled items of one producer and says when they
are signalled; it knows nothing of threads or packets.
"""

from __future__ import annotations

IMMEDIATE, DEFERRED, BATCHED = "immediate", "deferred", "batched"
MODES = (IMMEDIATE, DEFERRED, BATCHED)


class Batcher:
    """Items wait here until signalled.  `add(t, item)` returns the items
    signalled by adding one at t (with their signal time); `point(t)` is the
    producer's scheduling point; `due(now)` flushes what timed out."""

    __slots__ = ("mode", "batch", "timeout", "pending", "first")

    def __init__(self, mode: str, batch: int = 1, timeout_ns: int = 0):
        self.mode = mode
        self.batch = max(1, batch)
        self.timeout = timeout_ns
        self.pending = []
        self.first = 0

    def add(self, t: int, item) -> list:
        out = []
        if self.mode == IMMEDIATE:
            return [(t, item)]
        if self.mode == BATCHED and self.pending and self.timeout and self.first + self.timeout <= t:
            out = self.flush(self.first + self.timeout)
        if not self.pending:
            self.first = t
        self.pending.append(item)
        if self.mode == BATCHED and len(self.pending) >= self.batch:
            out.extend(self.flush(t))
        return out

    def point(self, t: int) -> list:
        """The producer blocks or yields at t: deferred items are signalled."""
        if self.mode == DEFERRED and self.pending:
            return self.flush(t)
        return []

    def due(self, now: int) -> list:
        """Batched items whose timeout fell before `now`."""
        if self.mode == BATCHED and self.pending and self.timeout and self.first + self.timeout < now:
            return self.flush(self.first + self.timeout)
        return []

    def flush(self, t: int) -> list:
        out = [(t, it) for it in self.pending]
        self.pending = []
        return out

    def __len__(self):
        return len(self.pending)
