"""The machine's own ceiling for a split run, measured beside it.

Why.  `netcabal bench --engine ray` compares a host packed into 2 Ray
workers with the same host in 1.  On a machine of its own with two idle
cores the best that split can do is 2x; on a shared or virtual machine it
is whatever the two cores give two busy processes at that moment, and on
the development machine that swings within minutes.  A speed-up read
without knowing that ceiling mixes up the code and the machine.  So the
bench measures the ceiling itself, round by round, with no Ray in the way.

What.  Plain processes ("helpers") on the local executor, linked to each
other by the Ray actors' mesh (cluster/exchange.py), each ready to run
windows on a word from the bench.  Each holds the scenario's whole host;
for a split into islands (no packet crosses between its groups, as in
bench-4nic-jails' packed split) each also holds its own group of the
split, a Host of those components alone whose messages to the others (the
CPUs' reports) are dropped.  One round: one helper runs the whole host
alone; then k helpers run their groups (or k copies of the host) at once,
first each on its own and then in step (after every window each sends the
others an empty frame and waits for theirs, the barrier the Ray workers
keep with `--windows-per-call`), and, for a bench with `--lookahead`, a
window apart (each sends its frame of window w and waits only for the
others' frame of w - 1, the slack the Ray workers then have); then one
runs the host alone again
(`alone` is the mean of the two, so whatever else the machine does around
the round falls on both sides).  Each helper times only the windows, as
the bench times its runs.  With groups, the split takes as long as its
slowest group, and the ceiling is `alone / max(t)`: what a split with free
messages and no Ray would have reached.  With k copies taking t_1..t_k,
each ran at `alone / t_i` of its speed alone, and k parts of the host at
that speed would run `k * alone / mean(t)` times as fast as one.  The
helpers run once untimed (a process's first run is slower) and build the
next host while idle, so building never overlaps a timed run; and the
bench has each run wait for the machine to settle first (`settle`: the
cores mostly idle for 0.2 s), as it has its own runs - Ray starts and ends
worker processes around every run, and those take a core for a second or
more.

What it leaves out.  The split's own costs: the messages between its parts
and Ray's calls.  Copies of the whole host do twice a worker's work a
window: the barrier's price relative to a window is about what the split
pays, its noise need not be.  The Ray runs' speed-up can come out above
the ceiling, since their 1-worker run pays Ray too and is slower than the
plain host alone; the bench prints the gauge's rates in packets a second
to hold against the runs'.  A reading above k means the machine's speed
moved within the round (one process alone went slower than two at once),
which on the development machine happens.  It measures the machine the
driver runs on, so the bench skips it on a cluster (`--address`): there
the workers are other machines.  Nothing here goes into metrics.json.

The probe.  `probe` times a fixed CPython loop in the calling process: how
fast the machine runs plain Python at that moment.  The local bench takes
it just before and just after each timed run and reports the run's rate
times the probe, which swings far less than the rate as the machine's
speed swings (the README's "The machine probe").  It reads the machine, it
corrects nothing: the rate stays the figure.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _serve() -> None:
    """A helper's loop (run in its own process).  Reads the scenario, the
    helpers' count, its own index and its group (or none) from stdin's
    first line, prints the port it listens on, reads every helper's
    address and links to them (the Ray actors' mesh, cluster/exchange.py).
    Then, for each word, it runs the windows and prints their wall seconds
    and the packets its run took in: "go", the whole host on its own;
    "go k", its group on its own (the whole host if it has none); "lock
    k", its group (or the whole host) with a barrier among helpers 0..k-1
    after every window; "slack k", the same a window apart (after window w
    it waits for the others' frame of w - 1 only).  Anything else ends it."""
    import copy
    import time

    from .engine import Host
    from .exchange import Mesh
    from .run import make_executor
    from .scenario import build, load

    cfg = json.loads(sys.stdin.readline())
    scn = load(cfg["path"], cfg["sets"])
    delay = cfg.get("delay_s", 0.0)     # a slower machine, for the tests
    group = cfg.get("group")            # the components this helper steps at once with others
    names = [f"helper{i}" for i in range(cfg["n"])]
    mesh = Mesh(cfg["index"], names, "127.0.0.1", timeout=600.0)
    out = sys.stdout
    out.write(f"port {mesh.port()}\n")
    out.flush()
    mesh.link(json.loads(sys.stdin.readline()))
    try:
        while True:
            ex = make_executor(scn, "local")
            if group is not None:       # its part of the split: messages to the others dropped
                actors = build(scn)
                everyone = {a.name: a for a in actors}
                part = Host([a for a in actors if a.name in group], scn["quantum_ns"])
            out.write("ready\n")
            out.flush()
            word = sys.stdin.readline().split()
            if not word or word[0] not in ("go", "lock", "slack"):
                return
            k = int(word[1]) if word[0] in ("lock", "slack") else 1
            slack = word[0] == "slack"
            sub = copy.copy(mesh)
            sub.peers = [(j, s) for j, s in mesh.peers if j < k]
            none = [None] * len(names)
            # "go": the whole host on its own; "go k" (k > 1): the part on
            # its own when it has one, else the whole host; "lock k": the
            # part (or the whole host) in step with helpers 0..k-1
            mine = group is not None and len(word) > 1
            step = (lambda: part.step(everyone)) if mine else ex.run_window
            t0 = time.perf_counter()
            for w in range(scn["windows"]):
                step()
                d = delay[w % len(delay)] if isinstance(delay, list) else delay
                if d:
                    time.sleep(d)
                if k > 1 and slack:
                    sub.send(w, none)
                    if w:
                        sub.receive(w - 1)
                elif k > 1:
                    sub.exchange(w, False, none)
            if k > 1 and slack and scn["windows"]:
                sub.receive(scn["windows"] - 1)
            dt = time.perf_counter() - t0
            arrived = sum(getattr(a, "arrived", 0) for a in (part.actors if mine else ex.actors))
            out.write(f"{dt!r} {arrived}\n")
            out.flush()
            ex.teardown()
    finally:
        mesh.close()


def _cpu_times():
    """(idle, total) jiffies of all the machine's cores, or None off Linux."""
    try:
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:9]]
    except (OSError, ValueError):
        return None
    return v[3] + v[4], sum(v)


def settle(timeout: float = 10.0, idle: float = 0.85, sample: float = 0.1):
    """Wait until the machine's cores have been at least `idle` idle for two
    samples of `sample` seconds in a row, `timeout` seconds at most: so that
    a timed run does not share the cores with what came before it (Ray
    starting or ending worker processes after the previous run, a helper
    building its host).  Returns the seconds waited, or None if it timed
    out or cannot tell (no /proc/stat); at once None when timeout is 0."""
    import time

    if timeout <= 0:
        return None
    t0 = time.perf_counter()
    last = _cpu_times()
    if last is None:
        return None
    calm = 0
    while True:
        time.sleep(sample)
        now = _cpu_times()
        d_idle, d_all = now[0] - last[0], now[1] - last[1]
        last = now
        calm = calm + 1 if d_all > 0 and d_idle >= idle * d_all else 0
        waited = time.perf_counter() - t0
        if calm >= 2:
            return waited
        if waited >= timeout:
            return None


PROBE_STEPS = 1_000_000


def probe(steps: int = PROBE_STEPS) -> float:
    """Seconds this process takes for a fixed CPython loop of `steps`
    steps (`s += i * i`): the speed the machine gives plain Python at this
    moment.  This machine's host runs it slower in some minutes than in
    others (2-3x, with no steal the guest can count and the process's CPU
    time equal to its wall time), and the model slows with it: the rate
    of a run times the probe beside it held within about a fifth while
    the rate alone swung 2-3x (README, "The machine probe").  A benchmark
    reading, never part of a result."""
    import time

    t0 = time.perf_counter()
    s = 0
    for i in range(steps):
        s += i * i
    return time.perf_counter() - t0


class GaugeError(RuntimeError):
    """A helper failed or vanished; the message carries what it printed."""


class Gauge:
    """`n` helpers for one scenario (a path and its --set overrides)."""

    def __init__(self, path, sets=(), n: int = 2, delays=None, calm: float = 0.0, groups=None):
        """`delays`: seconds each helper sleeps after every window (a
        slower core, for the tests), or a list of them taken in turn window
        by window; none by default.  `calm`: wait up to
        that many seconds for the machine to settle before each timed run
        (`settle`; each wait is kept in `waits`, None where it gave up);
        0, not at all.  `groups`: n lists of component names, the split
        to gauge; at once, helper i steps only group i (the messages it
        sends the others dropped: for splits that pass no packets between
        groups) - by default each steps the whole host."""
        if groups is not None and len(groups) != n:
            raise ValueError(f"{len(groups)} groups for {n} helpers")
        self.groups = groups
        self.settle = 0.0
        self.waits = []
        if n < 1:
            raise ValueError("a gauge needs at least one helper")
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
        self.procs = []
        self.errs = []
        try:
            for i in range(n):
                err = tempfile.TemporaryFile()
                p = subprocess.Popen([sys.executable, "-c", "from cluster.gauge import _serve; _serve()"],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err,
                                     text=True, env=env)
                self.procs.append(p)
                self.errs.append(err)
                self._say(i, json.dumps({"path": str(path), "sets": list(sets), "n": n, "index": i,
                                         "delay_s": (delays or {}).get(i, 0.0),
                                         "group": None if groups is None else list(groups[i])}))
            addrs = []
            for i in range(n):
                word = self._line(i).split()
                if len(word) != 2 or word[0] != "port":
                    raise GaugeError(f"gauge helper {i} said {' '.join(word)!r}, not its port")
                addrs.append(["127.0.0.1", int(word[1])])
            for i in range(n):
                self._say(i, json.dumps(addrs))
            for i in range(n):
                self._expect_ready(i)
            self._go(n, "go")   # a first run warms each helper up (untimed)
            if groups is not None:
                self._go(1, "go")   # ... and helper 0's whole host
            self.settle = calm
        except BaseException:
            self.close()
            raise

    def _say(self, i: int, line: str) -> None:
        try:
            self.procs[i].stdin.write(line + "\n")
            self.procs[i].stdin.flush()
        except OSError:         # it has ended: say why
            self._line(i)
            raise

    def _line(self, i: int) -> str:
        line = self.procs[i].stdout.readline()
        if not line:
            self.procs[i].wait()
            self.errs[i].seek(0)
            tail = self.errs[i].read().decode(errors="replace").strip().splitlines()
            why = tail[-1] if tail else f"exit status {self.procs[i].returncode}"
            raise GaugeError(f"gauge helper {i} ended: {why}")
        return line.strip()

    def _expect_ready(self, i: int) -> None:
        line = self._line(i)
        if line != "ready":
            raise GaugeError(f"gauge helper {i} said {line!r}, not ready")

    def _go(self, k: int, how: str) -> list:
        """Start helpers 0..k-1 at once ("go": each on its own; "lock": in
        step, a barrier after every window); their wall seconds, once all
        are ready again."""
        if self.settle:
            self.waits.append(settle(self.settle))
        for i in range(k):
            self._say(i, f"go {k}" if how == "go" and k > 1 else "go" if how == "go" else f"{how} {k}")
        said = [self._line(i).split() for i in range(k)]
        times = [float(x[0]) for x in said]
        self.arrived = [int(x[1]) for x in said]   # packets each helper's run took in
        for i in range(k):
            self._expect_ready(i)
        return times

    def alone(self) -> float:
        return self._go(1, "go")[0]

    def together(self, k: int | None = None, lockstep: bool = False, slack: bool = False) -> list:
        """k helpers at once: each on its own, in step (`lockstep`), or in
        step a window apart (`slack`)."""
        k = len(self.procs) if k is None else k
        if not 1 <= k <= len(self.procs):
            raise ValueError(f"{k} at once, but the gauge has {len(self.procs)} helpers")
        if self.groups is not None and k != len(self.procs):
            raise ValueError(f"a gauge of {len(self.procs)} groups runs them all at once, not {k}")
        return self._go(k, "slack" if slack else "lock" if lockstep else "go")

    def round(self, ks=None, slack: bool = False) -> dict:
        """One round: the host alone; then, for each k in ks (all helpers by
        default), k at once each on its own, k at once in step, and with
        `slack` k at once a window apart; then alone again.  Returns the
        seconds and, per k, the ceilings of each way: k * alone /
        mean(seconds at once) for k copies of the host, alone / max(seconds
        at once) for the groups of a split; `alone` the mean of the two runs
        alone."""
        ks = [len(self.procs)] if ks is None else list(ks)
        a0 = self.alone()
        packets = self.arrived[0]           # the whole host's, as every run's
        free = {k: self.together(k) for k in ks}
        lock = {k: self.together(k, lockstep=True) for k in ks}
        apart = {k: self.together(k, slack=True) for k in ks} if slack else {}
        a1 = self.alone()
        # alone before and after (whatever else the machine did around the
        # round falls on both sides of it)
        a = (a0 + a1) / 2
        if self.groups is not None:     # the split takes as long as its slowest part
            def ceil(k, t):
                return a / max(t)
        else:                           # k copies of the host: k parts of it at that speed
            def ceil(k, t):
                return k * a / statistics.fmean(t)
        out = {"alone_s": [a0, a1], "together_s": free, "lockstep_s": lock, "packets": packets,
               "ceiling": {k: ceil(k, t) for k, t in free.items()},
               "ceiling_lockstep": {k: ceil(k, t) for k, t in lock.items()}}
        if slack:
            out["slack_s"] = apart
            out["ceiling_slack"] = {k: ceil(k, t) for k, t in apart.items()}
        return out

    def close(self) -> None:
        for p in self.procs:
            try:
                if p.poll() is None:
                    p.stdin.write("quit\n")
                    p.stdin.flush()
                    p.stdin.close()
            except (BrokenPipeError, OSError, ValueError):
                pass
        for p in self.procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
            if p.stdout:
                p.stdout.close()
        for e in self.errs:
            e.close()
        self.procs = []
        self.errs = []

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
