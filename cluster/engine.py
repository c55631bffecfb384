"""The window engine: virtual time in quanta, messages in canonical order.

Design §2.  All time is virtual, in integer nanoseconds.  The engine advances
in windows of one quantum Q.  In window [s, s+Q) every actor gets the
messages due in that window, sorted by (deliver_ns, sender, seq), and returns
what it sends.  A message is due no earlier than the end of the window it was
sent in (a shorter physical latency is rounded up to the window's end), so
within one window no actor can see another's output: the actors of a window
are independent, can run in any order or in parallel, and the result is the
same.  That is what lets the `ray` executor spread them over processes and
machines and still write byte-identical metrics.

The engine is executor-agnostic: `LocalExecutor` below runs every actor in
this process; cluster/ray_executor.py (a later work item) runs them as Ray
actors.  Both use `route()` and `canonical()` from here.

Mbuf batches ("pkts" messages) are handed over as Python lists in-process;
with `codec_check=True` the local executor sends every batch through the
msgpack wire codec, exactly as the Ray executor must, so tests can prove the
codec changes nothing.
"""

from __future__ import annotations

from collections import defaultdict

from actors.mbuf import decode_batch, encode_batch


def canonical(msgs: list) -> list:
    """Sort messages by (deliver_ns, sender, seq): the inbox order."""
    msgs.sort(key=lambda m: (m[0], m[1], m[2]))
    return msgs


def packets_in(msg) -> int:
    return len(msg[5]) if msg[4].startswith("pkts") else 0


class LocalExecutor:
    """Every actor in one process, stepped window by window."""

    def __init__(self, actors: list, quantum_ns: int, codec_check: bool = False):
        if quantum_ns <= 0:
            raise ValueError("quantum_ns must be positive")
        self.actors = sorted(actors, key=lambda a: a.name)
        self.by_name = {a.name: a for a in self.actors}
        if len(self.by_name) != len(self.actors):
            raise ValueError("actor names must be unique")
        self.Q = quantum_ns
        self.codec_check = codec_check
        self.window = 0
        self.seq = dict.fromkeys(self.by_name, 0)
        # mailbox: window index -> dest -> [messages]
        self.mail = defaultdict(lambda: defaultdict(list))
        self.messages = 0

    # -- routing -----------------------------------------------------------
    def route(self, sender: str, end: int, outbox: list) -> None:
        Q = self.Q
        seq = self.seq[sender]
        mail = self.mail
        by_name = self.by_name
        for dest, kind, payload, at in outbox:
            if dest not in by_name:
                raise KeyError(f"{sender} sent {kind!r} to unknown actor {dest!r}")
            due = at if at > end else end
            if self.codec_check and kind.startswith("pkts"):
                payload = decode_batch(encode_batch(payload))
            mail[due // Q][dest].append((due, sender, seq, dest, kind, payload))
            seq += 1
        self.seq[sender] = seq
        self.messages += len(outbox)

    def in_flight_packets(self) -> int:
        return sum(packets_in(m) for box in self.mail.values()
                   for msgs in box.values() for m in msgs)

    # -- running -----------------------------------------------------------
    def run_window(self) -> None:
        w = self.window
        start = w * self.Q
        end = start + self.Q
        box = self.mail.pop(w, None) or {}
        outs = []
        for a in self.actors:
            inbox = box.get(a.name)
            if inbox:
                canonical(inbox)
            outs.append((a.name, a.step(start, end, inbox or [])))
        for name, out in outs:
            if out:
                self.route(name, end, out)
        self.window = w + 1

    def run(self, windows: int, on_window=None) -> None:
        for _ in range(windows):
            self.run_window()
            if on_window is not None:
                on_window(self)
