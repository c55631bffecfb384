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

A `Host` is a group of actors that step together in one process: it stamps
what they send (sender, sequence number, due time), keeps a mailbox of
messages not yet due, and hands each actor its inbox in canonical order.
An inbox needs no sort when its order is known: the messages a window's
step files for the next window at exactly its start (the common case: a
latency rounded up to the window's end) are filed in (sender, seq) order,
because the Host steps its actors in name order and each actor's messages
leave in sequence.  Every other filing - a later due time, a later window,
messages from another Host, an actor list not in name order - marks its
box `mixed`, and a mixed box is sorted before it is handed over.

A Host can also step some of its actors (the CPUs) one window ahead of
the others (`Host.lead`): the same inboxes, so the same results, with what
those actors send leaving a window earlier - the Ray executor's
`--lookahead`.  A message that then comes for a window its destination has
already stepped raises `LateMessage`; it is never dropped.

`LocalExecutor` is one Host holding every actor; the Ray executor
(cluster/ray_executor.py) runs one Host per Ray actor and moves the messages
between them, encoded with `encode_msgs`, as Ray object references.
"""

from __future__ import annotations

import gc
import msgpack

from actors.mbuf import Uma, batch_from_parts, batch_parts, decode_batch, encode_batch, m_freem


def canonical(msgs: list) -> list:
    """Sort messages by (deliver_ns, sender, seq): the inbox order.

    The messages are tuples that begin with those three, and a sender
    never repeats a sequence number, so sorting the tuples themselves gives
    that order without a key tuple each (a comparison never reaches the
    fourth field)."""
    msgs.sort()
    return msgs


def is_pkts(kind: str) -> bool:
    return kind.startswith("pkts")


def packets_in(msg) -> int:
    return len(msg[5]) if is_pkts(msg[4]) else 0


def encode_msgs(msgs: list) -> bytes:
    """Messages for another process: mbuf batches in the mbuf codec's wire
    form, packed with the messages in one msgpack pass (the packets' bytes
    copied once, not once into each batch and again into the messages)."""
    return msgpack.packb([[d, s, q, dest, k, batch_parts(p) if is_pkts(k) else p]
                          for d, s, q, dest, k, p in msgs], use_bin_type=True)


def decode_msgs(blob: bytes) -> list:
    return [(d, s, q, dest, k, batch_from_parts(p) if is_pkts(k) else p)
            for d, s, q, dest, k, p in msgpack.unpackb(blob, raw=False)]


def _mark(mixed: dict, w: int, dest: str) -> None:
    """Window w's box for `dest` needs canonical() before it is handed over."""
    mx = mixed.get(w)
    if mx is None:
        mixed[w] = {dest}
    else:
        mx.add(dest)


class LateMessage(RuntimeError):
    """A message for a window its destination has already stepped."""

    def __init__(self, msg: tuple, window: int):
        super().__init__(f"{msg[1]} sent {msg[4]!r} to {msg[3]} due at {msg[0]} ns, "
                         f"after {msg[3]} had stepped that window (window {window})")
        self.msg = msg


def relax_gc() -> None:
    """Collect young objects every 100,000 allocations instead of 700.

    A run allocates several objects per packet (mbuf, storage, message
    tuples) that die young, and makes almost no reference cycles (a whole
    quickstart run leaves a few hundred); CPython's default thresholds then
    spend up to a fifth of the run walking live model state.  Reference
    counting still frees everything at once; only cycle collection is less
    frequent.  Results do not depend on it."""
    gc.set_threshold(100_000, 50, 1000)


class Host:
    """Actors that step together in one process, and their mailbox."""

    def __init__(self, actors: list, quantum_ns: int, codec_check: bool = False):
        relax_gc()
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
        self.mail = {}          # window -> dest -> msgs
        self.mixed = {}         # window -> {dest}: boxes that need canonical()
        self.messages = 0
        self.ahead = frozenset()    # actors stepped a window ahead (lead); none by default
        self.behind = self.actors
        self.leading = []
        self.stop_at = None
        self.ahead_window = 0

    def deliver(self, msgs) -> None:
        """File messages for our own actors under the window they are due in.

        A message due in a window its destination has stepped already would
        never be handed over: that is a broken promise of the executor's
        (a lookahead it did not have, see `lead`), raised, never dropped."""
        Q = self.Q
        mail = self.mail
        mixed = self.mixed
        ahead = self.ahead
        now = self.window
        for m in msgs:
            w = m[0] // Q
            dest = m[3]
            if w < (self.ahead_window if ahead and dest in ahead else now):
                raise LateMessage(m, self.window)
            box = mail.get(w)
            if box is None:
                box = mail[w] = {}
            lst = box.get(dest)
            if lst is None:
                box[dest] = [m]
            else:
                lst.append(m)
            _mark(mixed, w, dest)

    def set_ahead(self, names, stop_at: int | None = None) -> None:
        """Step the actors `names` one window ahead of the others (see
        `lead`), never past window `stop_at` - 1 (the run's end)."""
        self.ahead = frozenset(names) & frozenset(self.by_name)
        self.behind = [a for a in self.actors if a.name not in self.ahead]
        self.leading = [a for a in self.actors if a.name in self.ahead]
        self.stop_at = stop_at
        self.ahead_window = self.window

    def lead(self, known=None) -> list:
        """Step the ahead actors alone, in the window the others are about
        to step; from then on `step` runs them one window ahead.

        Why.  A CPU's step for window w + 1 reads only the reports its
        threads sent in window w.  Where every thread that reports to a
        Host's CPUs is the Host's own, the Host can step its CPUs for w + 1
        right after its other actors' window w, in the same pass, and what
        the CPUs publish for w + 2 leaves a window early.  Every inbox is
        the same as when all step in lock step (the canonical order does not
        depend on when a message was filed), so the results are too; a
        message that comes for a window its destination has already stepped
        raises LateMessage (`deliver`, `step`).  The Ray executor uses this
        to let its workers run a window apart (cluster/ray_executor.py)."""
        rest = []
        w = self.ahead_window
        if w == self.window and (self.stop_at is None or w < self.stop_at):
            self._run(self.leading, w, known, False, rest, False)
            self.ahead_window = w + 1
        return rest

    def step(self, known=None) -> list:
        """Run one window; keep messages for our own actors, return the rest.

        Each message an actor sends is stamped as it leaves (due time,
        sender, sequence number) and filed at once under the window it is
        due in: it is due no earlier than this window's end, so nothing
        filed here reaches an inbox of this window.  A message due exactly
        at this window's end, sent while the actors step in name order,
        keeps its box in canonical order; any other marks the box mixed
        (see the module comment).  With actors ahead (`lead`), the others
        step this window and then those the next, and every box is sorted."""
        w = self.window
        rest = []
        if not self.ahead:
            self._run(self.actors, w, known, True, rest, True)
        else:
            box = self.mail.get(w)
            if box is not None:
                for name in self.ahead:
                    if name in box:     # filed after its actor stepped the window
                        raise LateMessage(box[name][0], w)
            if self.ahead_window != w + 1:
                raise RuntimeError(f"actors ahead of window {w} not led (Host.lead)")
            self._run(self.behind, w, known, True, rest, False)
            if self.stop_at is None or w + 1 < self.stop_at:
                self._run(self.leading, w + 1, known, False, rest, False)
                self.ahead_window = w + 2
        self.window = w + 1
        return rest

    def _run(self, actors: list, w: int, known, whole: bool, rest: list, ordered: bool) -> None:
        """Step `actors` (in their order) in window w, filing what they send
        and adding to `rest` what is for other Hosts.  `whole`: this window's
        box is taken whole (else each actor takes its own inbox from it);
        `ordered`: the actors step in name order, each alone in its window,
        so a box filed only at the window's end needs no sort."""
        Q = self.Q
        start = w * Q
        end = start + Q
        if whole:
            box = self.mail.pop(w, None)
            mx = self.mixed.pop(w, None)    # this window's boxes that need sorting
        else:
            box = self.mail.get(w)
            mx = self.mixed.get(w)
        mixed = self.mixed
        mail = self.mail
        mine = self.by_name
        known = known or mine
        seqs = self.seq
        check = self.codec_check
        sent = 0
        nxt = w + 1             # most messages are due at the window's end: in the next one
        nbox = mail.get(nxt)
        if nbox is None:
            nbox = mail[nxt] = {}
        Qc = Q                  # the quantum and the window's end as C int64 (compiled)
        endc = end
        prev = None             # the last actor that sent: are senders in name order?
        for a in actors:
            name = a.name
            if box is None:
                inbox = None
            elif whole:
                inbox = box.get(name)
            else:
                inbox = box.pop(name, None)
            if inbox:
                if mx is not None and name in mx:
                    canonical(inbox)
            else:
                inbox = []
            o = a.step(start, end, inbox)
            if not o:
                continue
            if ordered and prev is not None and name < prev:
                ordered = False     # from here on every filing marks its box
            prev = name
            seq = seqs[name]
            for dest, kind, payload, at in o:
                if check and is_pkts(kind):
                    payload = decode_batch(encode_batch(payload))
                t = at
                if t < endc:            # a shorter latency: due at the window's end
                    at = end
                    t = endc
                msg = (at, name, seq, dest, kind, payload)
                seq += 1
                if t == endc:
                    # due at the window's end (most are): a destination that
                    # already has a list in the next window's box is ours
                    lst = nbox.get(dest)
                    if lst is not None:
                        lst.append(msg)
                        if not ordered:
                            _mark(mixed, nxt, dest)
                        continue
                if dest in mine:
                    dw = t // Qc        # t >= end > 0: C division is floor division
                    if dw == nxt:
                        dbox = nbox
                    else:
                        dbox = mail.get(dw)
                        if dbox is None:
                            dbox = mail[dw] = {}
                    if t != endc or not ordered:
                        _mark(mixed, dw, dest)
                    lst = dbox.get(dest)
                    if lst is None:
                        dbox[dest] = [msg]
                    else:
                        lst.append(msg)
                elif dest in known:
                    rest.append(msg)
                else:
                    raise KeyError(f"{name} sent {kind!r} to unknown actor {dest!r}")
            seqs[name] = seq
            sent += len(o)
        self.messages += sent

    # -- accounting -------------------------------------------------------
    def in_flight_packets(self) -> int:
        return sum(packets_in(m) for box in self.mail.values()
                   for msgs in box.values() for m in msgs)

    def summaries(self) -> list:
        """What the run needs to know of each actor, as plain data."""
        out = []
        for a in self.actors:
            s = {"name": a.name, "metrics": a.metrics(), "holding": a.holding(),
                 "arrived": getattr(a, "arrived", 0),
                 "delivered": getattr(a, "delivered", 0),
                 "absorbed": getattr(a, "absorbed", 0),
                 "dropped": a.dropped() if hasattr(a, "dropped") else {}}
            if hasattr(a, "uma"):
                s["uma"] = a.uma.state()
            tap = getattr(a, "tap", None)
            if tap is not None:
                s["tap"] = (tap.frames, tap.lost)
            out.append(s)
        return out

    def teardown(self) -> list:
        """Free what the actors and the mailbox still hold; return the zones' state."""
        uma = Uma()
        for a in self.actors:
            if hasattr(a, "teardown"):
                a.teardown()
        for box in self.mail.values():
            for msgs in box.values():
                for msg in msgs:
                    if is_pkts(msg[4]):
                        for m in msg[5]:
                            m_freem(uma, m)
        self.mail.clear()
        self.mixed.clear()
        for a in self.actors:
            if hasattr(a, "uma"):
                uma.merge(a.uma)
        return uma.state()


class LocalExecutor:
    """Every actor in one process, stepped window by window."""

    name = "local"

    def __init__(self, actors: list, quantum_ns: int, codec_check: bool = False):
        self.host = Host(actors, quantum_ns, codec_check)
        self.actors = self.host.actors
        self.Q = quantum_ns

    @property
    def window(self) -> int:
        return self.host.window

    @property
    def messages(self) -> int:
        return self.host.messages

    def run_window(self) -> None:
        rest = self.host.step()
        if rest:  # pragma: no cover - step() raises on unknown destinations
            raise KeyError(f"message to unknown actor {rest[0][3]!r}")

    def run(self, windows: int, on_window=None) -> None:
        for _ in range(windows):
            self.run_window()
            if on_window is not None:
                on_window(self)

    def in_flight_packets(self) -> int:
        return self.host.in_flight_packets()

    def summaries(self) -> list:
        return self.host.summaries()

    def teardown(self) -> list:
        return [self.host.teardown()]

    def close(self) -> None:
        pass
