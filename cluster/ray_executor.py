"""The Ray executor: the emulated host's actors spread over Ray actors.

Placement.  `per-component` makes every CPU, NIC, netisr and vnet its own
named Ray actor (`cpu3`, `ix0`, `netisr3`, `vnet.vnet0`: what `ray list
actors` and the dashboard show), spread over the cluster's nodes; `packed`
groups the components into a few Ray actors (`pack0`, `pack1`, ..., one per
worker, default one per CPU Ray has), for laptops, cut where the fewest
packets cross between them (cluster/placement.py says how).  Each Ray actor is a thin
shell over a `cluster.engine.Host`, the same object the local executor uses,
so the model code runs unchanged and never sees Ray.

Data path.  The driver calls `steps(n, *lists)` on every Ray actor: run up
to n windows (`windows_per_call`, 1 by default) from where the hosts stand,
where `lists` are the object references of what every actor returned from
its call before.  A call returns one small object: the last window it ran
and a list with one entry per destination actor - nothing, a few bytes of
control messages (CPU time reports and debts), or, whenever the messages
carry packets, a reference to them, put in the object store by the sending
worker and fetched by the receiving one (msgpack, with mbuf batches in the
mbuf wire codec).  The driver only passes those references along and checks
them: it never fetches a packet.  It keeps at most `max_inflight` calls in
flight, so memory stays flat on long runs; calls of one window it merely
waits for and fetches only every `CHECK_EVERY`-th (see `run`).  (One return
a call, not a status and the lists apart: a Ray object less per actor and
call, which on a 2-core machine is driver time the workers get back.)

With `windows_per_call` above 1 the Ray actors swap the output of the
windows inside a call directly, over TCP connections between each pair of
them, for as long as it holds no packets; the first window whose output
holds packets ends the call, so mbuf batches still travel only as object
references.  That saves a Ray call a window on hosts cut into islands
(cluster/exchange.py says how and why), but the control messages of those
windows then do not travel as object references, as design §2 asks of
every output: it is opt-in.

Lookahead.  With `--lookahead` (packed placement, windows_per_call above
1) every Ray actor steps its CPUs one window ahead of its other components
(cluster/engine.py, Host.lead).  Where the only messages between the Ray
actors are what the CPUs publish, those leave a window before they are
due, so a Ray actor needs its peers' frame of window w - 1, not w, before
its window w + 1: the Ray actors run up to a window apart, and the jitter of
a shared machine no longer stops both at every window.  The results are
the lock step's.  A message between Ray actors that could not wait that
long (a packet, a thread's report to another actor's CPU) ends the run
with an error naming it: that placement must run without it.

Determinism.  Every Host sorts its inbox canonically (deliver time, sender,
sequence number), whatever order the bytes arrived in, so metrics are
byte-identical to the local executor's for any placement and any number of
workers.

Failure.  A Ray actor that dies (its process killed, its node lost) surfaces
as an error on its call's result; the run stops with `RunError` naming the
component(s) and the window (in a call of several windows, the one its
peers were waiting in when they lost it; a lone Ray actor's call gives only
its range of windows; with `--lookahead` the last window of a call too is
one the peers wait in).  Nothing is written: results folders are renamed into
place only after a successful run.
"""

from __future__ import annotations

import os
import re
import time
import uuid
from collections import deque

# Ray 2.60 clusters use token authentication (the token in ~/.ray/auth_token);
# a client must say so before Ray is imported.  RAY_AUTH_MODE=disabled in the
# environment still opts out.
os.environ.setdefault("RAY_AUTH_MODE", "token")

import ray  # noqa: E402
from ray.exceptions import GetTimeoutError, RayActorError, RayError  # noqa: E402
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy  # noqa: E402

from .engine import Host, decode_msgs, encode_msgs, is_pkts
from .exchange import MAX_FRAME

_PEER_LOST = re.compile(r"PeerLost: peer \S+ lost in window (\d+)")
_BROKEN = re.compile(r"LookaheadBroken: (.+)")
from actors.cpu import Cpu  # noqa: E402

from .placement import PLACEMENTS, groups_for  # noqa: E402
from .scenario import build  # noqa: E402


class RunError(RuntimeError):
    pass


class LookaheadBroken(RuntimeError):
    """With --lookahead, a message between Ray actors that cannot wait a window."""


# windows a call on the Ray actors runs at most, by default: one, so that
# every window's output travels between the Ray actors as Ray object
# references, as design §2 asks.  More (`--windows-per-call`) lets the Ray
# actors swap the packet-free output of the windows inside a call directly
# (cluster/exchange.py): faster, but a departure from that rule, so opt-in.
PER_CALL = {"packed": 1, "per-component": 1}


@ray.remote
class HostActor:
    """A thin Ray shell over a Host holding some of the emulated components."""

    def __init__(self, scn: dict, names: list, host_of: dict, index: int, actor_names: list,
                 crash_at=None, lookahead: bool = False):
        mine = set(names)
        self.crash_at = crash_at
        self.t_step = 0.0       # wall seconds in the model's step
        self.t_codec = 0.0      # ... fetching, decoding and encoding messages
        actors = build(scn)
        self.host = Host([a for a in actors if a.name in mine], scn["quantum_ns"])
        self.Q = scn["quantum_ns"]
        self.lookahead = lookahead
        self.cpus = frozenset(a.name for a in actors if isinstance(a, Cpu))
        if lookahead:
            self.host.set_ahead(self.cpus)
        self.host_of = host_of
        self.index = index
        self.P = max(host_of.values()) + 1
        self.known = set(host_of)
        self.names = actor_names     # every Ray actor's name, for errors
        self.mesh = None
        self.t_exchange = 0.0   # ... exchanging them directly, waiting for the peers included

    def _take(self, lists) -> None:
        """Deliver our part of every host's output of the previous window."""
        t0 = time.perf_counter()
        refs = []
        for lst in lists:
            part = lst[1][self.index]
            if part is None:
                continue
            if isinstance(part, bytes):
                self.host.deliver(decode_msgs(part))
            else:
                refs.append(part)
        if refs:
            for blob in ray.get(refs):
                self.host.deliver(decode_msgs(blob))
        self.t_codec += time.perf_counter() - t0

    def listen(self) -> tuple:
        """Open our end of the direct exchange; returns its address."""
        from .exchange import Mesh
        self.mesh = Mesh(self.index, self.names)
        return ray.util.get_node_ip_address(), self.mesh.port()

    def link(self, addrs: list) -> bool:
        self.mesh.link(addrs)
        return True

    def steps(self, n: int, *lists):
        """Run up to n windows from where the host stands; `lists` are what
        every host returned from its previous call.  Returns (w, parts) for
        the last window w it ran: parts[k] is None, the encoded messages for
        host k (control messages only), or a reference to them in the object
        store (whenever they hold packets).  Between the windows of one call
        the messages go directly (cluster/exchange.py says when)."""
        try:
            return self._steps(n, lists)
        except BaseException:
            if self.mesh is not None:
                self.mesh.close()       # our peers must not wait for us
            raise

    def lead(self, stop_at: int):
        """--lookahead: step our CPUs in the window the others are about to
        step (Host.lead), never past window stop_at - 1.  Returns what a
        call returns, for the first call of the run to take."""
        try:
            host = self.host
            host.stop_at = stop_at
            w = host.window - 1         # the pass before the run's first
            return w, self._ahead_parts(host.lead(self.known), w)
        except BaseException:
            if self.mesh is not None:
                self.mesh.close()
            raise

    def _ahead_parts(self, out: list, w: int) -> list:
        """Pass w's messages for the other Ray actors, encoded per actor,
        after checking that each can be taken a window late: due two
        windows on at least (three for a CPU, which runs a window ahead),
        and holding no packet."""
        by = [None] * self.P
        host_of = self.host_of
        Q = self.Q
        for m in out:
            d = m[0] // Q
            if is_pkts(m[4]) or d < (w + 3 if m[3] in self.cpus else w + 2):
                raise LookaheadBroken(
                    f"{m[1]} sent {m[4]!r} to {m[3]} (on {self.names[host_of[m[3]]]}) due in "
                    f"window {d}, too soon for a Ray actor a window behind; only what the CPUs "
                    f"publish may pass between them with --lookahead: run this placement without it")
            k = host_of[m[3]]
            if by[k] is None:
                by[k] = [m]
            else:
                by[k].append(m)
        return [None if b is None else encode_msgs(b) for b in by]

    def _step(self, w: int) -> list:
        """Our Host's window w, its time counted; where a fault is injected,
        this worker process dies here."""
        if w == self.crash_at:
            os._exit(70)
        t0 = time.perf_counter()
        out = self.host.step(self.known)
        self.t_step += time.perf_counter() - t0
        return out

    def _steps_ahead(self, n: int, lists):
        """_steps with the CPUs a window ahead: each window's frames go to
        the peers at once, and a peer's frame of window w - 1 is read only
        after our window w.  A call's last window's messages go with its
        result; an empty frame of it, read by every peer before the call
        returns, keeps a Ray actor that dies in it named with that window."""
        host = self.host
        mesh = self.mesh
        self._take(lists)
        w = first = host.window
        last = w + n - 1
        while True:
            out = self._step(w)
            t1 = time.perf_counter()
            enc = self._ahead_parts(out, w)
            t2 = time.perf_counter()
            self.t_codec += t2 - t1
            if mesh is not None:
                if w < last:
                    for k, e in enumerate(enc):
                        if e is not None and len(e) > MAX_FRAME:
                            raise LookaheadBroken(
                                f"window {w}'s messages for {self.names[k]} take {len(e)} bytes, "
                                f"more than a frame holds ({MAX_FRAME}): run without --lookahead")
                    mesh.send(w, enc)
                else:           # the last window's go with the result: an empty frame says we got here
                    mesh.send(w, [None] * self.P)
                got = mesh.receive(w - 1) if w > first else ()
                if w >= last:   # and the peers got here too (a lost one is named with this window)
                    mesh.receive(w)
                t3 = time.perf_counter()
                self.t_exchange += t3 - t2
                for _, blob in got:
                    host.deliver(decode_msgs(blob))
                self.t_codec += time.perf_counter() - t3
            if w >= last:
                return w, enc
            w += 1

    def _steps(self, n: int, lists):
        if self.lookahead:
            return self._steps_ahead(n, lists)
        host = self.host
        mesh = self.mesh
        self._take(lists)
        w = host.window
        last = w + n - 1
        host_of = self.host_of
        P = self.P
        while True:
            out = self._step(w)
            t1 = time.perf_counter()
            by = [None] * P
            for m in out:
                k = host_of[m[3]]
                if by[k] is None:
                    by[k] = [m]
                else:
                    by[k].append(m)
            enc = [None] * P
            pk = [False] * P
            stop = w >= last
            for k, b in enumerate(by):
                if b is not None:
                    enc[k] = encode_msgs(b)
                    if len(enc[k]) > MAX_FRAME or any(is_pkts(m[4]) for m in b):
                        pk[k] = stop = True
            t2 = time.perf_counter()
            self.t_codec += t2 - t1
            if mesh is not None:
                stop, got = mesh.exchange(w, stop, enc)
                t3 = time.perf_counter()
                self.t_exchange += t3 - t2
                t2 = t3
            else:
                got = ()
                if any(e is not None for e in enc):
                    stop = True         # no direct exchange: every message goes by Ray
            if stop:
                parts = [ray.put(e) if pk[k] else e for k, e in enumerate(enc)]   # worker to worker
                self.t_codec += time.perf_counter() - t2
                return w, parts
            for _, blob in got:
                host.deliver(decode_msgs(blob))
            self.t_codec += time.perf_counter() - t2
            w += 1

    def finish(self, *lists):
        self._take(lists)
        return True

    def summaries(self):
        h = self.host
        return h.summaries(), h.in_flight_packets(), h.messages

    def teardown(self):
        return self.host.teardown()

    def timing(self):
        """Wall seconds in the model, with messages (fetch, decode, encode) and
        in the direct exchange (waiting for the peers included), for `netcabal bench`."""
        return {"step_s": self.t_step, "codec_s": self.t_codec, "exchange_s": self.t_exchange}

    def whereami(self):
        from actors._core import status
        return {"pid": os.getpid(), "node": ray.get_runtime_context().get_node_id(),
                "core": status()["core"]}


def connect(address: str | None = None) -> None:
    """Join RAY_ADDRESS / `address`, or start a local Ray instance (laptop mode)."""
    if ray.is_initialized():
        return
    # Inside a Ray job, ray.init() may let Ray garbage-collect the job's
    # working directory under us: load every model module before it.
    import importlib
    import pkgutil

    import actors
    for mod in pkgutil.iter_modules(actors.__path__):
        importlib.import_module(f"actors.{mod.name}")
    addr = address or os.environ.get("RAY_ADDRESS") or None
    # we report failed tasks ourselves (RunError); without this Ray also
    # prints every unretrieved failed window when the run is torn down
    os.environ.setdefault("RAY_IGNORE_UNHANDLED_ERRORS", "1")
    ray.init(address=addr, log_to_driver=False, configure_logging=False)


class RayExecutor:
    name = "ray"

    def __init__(self, scn: dict, placement: str = "packed", workers: int | None = None,
                 address: str | None = None, max_inflight: int = 8, num_cpus: float | None = None,
                 fault: str | None = None, place_timeout: float = 120.0,
                 windows_per_call: int | None = None, lookahead: bool = False):
        """`fault` = "COMPONENT@WINDOW" makes the Ray actor holding that
        component exit at that window (to test how failures are handled).
        `windows_per_call` bounds the windows one call on the Ray actors
        runs (1: a call a window, every message through Ray); by default
        PER_CALL[placement].  `lookahead`: the CPUs a window ahead and the
        Ray actors up to a window apart (see the module comment)."""
        if placement not in PLACEMENTS:
            raise ValueError(f"placement must be one of {', '.join(PLACEMENTS)}")
        if lookahead and placement != "packed":
            raise ValueError("--lookahead wants the packed placement")
        if lookahead and (windows_per_call or PER_CALL[placement]) < 2:
            raise ValueError("--lookahead wants --windows-per-call 2 or more (the Ray actors run "
                             "apart between the windows of a call)")
        if windows_per_call is not None and (not isinstance(windows_per_call, int) or windows_per_call < 1):
            raise ValueError(f"windows_per_call must be a whole number, 1 or more, not {windows_per_call!r}")
        connect(address)
        names = [a.name for a in build(scn)]
        if workers is None:
            workers = max(1, int(ray.cluster_resources().get("CPU", 1)))
        self.groups = groups_for(names, placement, workers, scn)
        self.labels = ["+".join(g) if len(g) > 1 else g[0] for g in self.groups]
        host_of = {n: i for i, g in enumerate(self.groups) for n in g}
        self.namespace = f"netcabal-{uuid.uuid4().hex[:8]}"
        if num_cpus is None:
            # packed actors each ask for a CPU, or an equal share when there are
            # more of them than CPUs; per-component actors ask for none (they
            # run in lock step, a window at a time)
            cpus = ray.cluster_resources().get("CPU", 1)
            num_cpus = 0 if placement == "per-component" else min(1.0, cpus / len(self.groups))
        crash = {}
        if fault:
            comp, _, win = fault.partition("@")
            if comp not in host_of or not win.isdigit():
                raise ValueError(f"--fault wants COMPONENT@WINDOW with a component of this host, not {fault!r}")
            crash[host_of[comp]] = int(win)
        # spread the Ray actors over the live nodes, round-robin (Ray's own
        # SPREAD leaves zero-CPU actors bunched on one node)
        nodes = sorted(n["NodeID"] for n in ray.nodes() if n.get("Alive"))
        self.hosts = []
        self.actor_names = [g[0] if placement == "per-component" else f"pack{i}"
                            for i, g in enumerate(self.groups)]
        for i, g in enumerate(self.groups):
            actor_name = g[0] if placement == "per-component" else f"pack{i}"
            strategy = (NodeAffinitySchedulingStrategy(nodes[i % len(nodes)], soft=True)
                        if nodes else "SPREAD")
            self.hosts.append(HostActor.options(
                name=actor_name, namespace=self.namespace, num_cpus=num_cpus,
                scheduling_strategy=strategy, max_restarts=0, max_task_retries=0,
            ).remote(scn, g, host_of, i, self.actor_names, crash.get(i), lookahead))
        self.lookahead = lookahead
        self.max_inflight = max(1, max_inflight)
        self.per_call = PER_CALL[placement] if windows_per_call is None else windows_per_call
        self.window = 0
        self.calls = 0          # calls on every Ray actor so far
        self.messages = 0
        self._summ = None
        self.info = {"placement": placement, "ray_actors": len(self.hosts),
                     "groups": self.labels, "namespace": self.namespace}
        try:        # every actor placed and constructed, or a clear error
            where = ray.get([h.whereami.remote() for h in self.hosts], timeout=place_timeout)
            self.info["nodes"] = len({x["node"] for x in where})
            self.info["worker_core"] = "/".join(sorted({x["core"] for x in where}))
            self.info["actor_nodes"] = {n: x["node"][:12] for n, x in zip(self.actor_names, where)}
        except GetTimeoutError:
            self.close()
            raise RunError(f"could not place {len(self.hosts)} Ray actors within {place_timeout:g} s "
                           f"(each asks for {num_cpus:g} CPU; the cluster has "
                           f"{ray.cluster_resources().get('CPU', 0):g})") from None
        self.info["windows_per_call"] = self.per_call
        self.info["lookahead"] = lookahead
        if len(self.hosts) > 1 and self.per_call > 1:     # the direct exchange's mesh
            try:
                addrs = ray.get([h.listen.remote() for h in self.hosts], timeout=place_timeout)
                ray.get([h.link.remote(addrs) for h in self.hosts], timeout=place_timeout)
            except (RayError, GetTimeoutError) as e:
                self.close()
                raise RunError(f"could not connect the Ray actors to each other ({type(e).__name__}: "
                               f"{str(e).strip().splitlines()[-1][:200]}); --windows-per-call 1 "
                               "runs without those connections") from None

    # -- running -------------------------------------------------------------
    def _failure(self, refs: list, first: int, last: int) -> RunError:
        """The error for a call (windows first..last at most) that failed:
        the Ray actors that died or raised, and the window - as the peers
        that lost them report it, or the call's windows when none did."""
        bad, lost = [], []
        for j, r in enumerate(refs):
            try:
                ray.get(r, timeout=5)
            except Exception as e:  # noqa: BLE001 - we report every kind
                m = _PEER_LOST.search(str(e))
                b = _BROKEN.search(str(e))
                if m:
                    lost.append(int(m.group(1)))
                elif b:
                    bad.append(f"{self.actor_names[j]} ({self.labels[j]}): {b.group(1)}")
                else:
                    bad.append(f"{self.actor_names[j]} ({self.labels[j]}): {type(e).__name__}")
        if lost:
            where = f"window {min(lost)}"
        else:
            where = f"window {first}" if first == last else f"windows {first}-{last}"
        return RunError(f"run failed in {where}: Ray actor " + "; ".join(bad or ["?"]))

    def _check(self, w: int, refs: list, timeout: float | None = None) -> list:
        try:
            return ray.get(refs, timeout=timeout)
        except (RayActorError, RayError, GetTimeoutError):
            raise self._failure(refs, w, w) from None

    def _fetch(self, waited: list) -> list:
        """The results of the last call in `waited`; if it failed, the
        RunError of the first of them that failed."""
        try:
            return ray.get(waited[-1][2])
        except (RayActorError, RayError):
            for first, n, refs in waited:
                try:
                    ray.get(refs)
                except (RayActorError, RayError):
                    raise self._failure(refs, first, first + n - 1) from None
            raise

    CHECK_EVERY = 8     # one-window calls between fetching the results (only waiting for the others)

    def run(self, windows: int, progress=None) -> None:
        """Run the windows, a call on every Ray actor at a time.  A call runs
        up to `per_call` windows from where the hosts stand and returns the
        last one it ran (fewer when packets cross: cluster/exchange.py); its
        results are the next call's arguments, passed on as references.

        The driver keeps at most `max_inflight` calls in flight, and submits
        one only while the calls in flight could fall short of the run.  It
        learns where a call of several windows ended by fetching its result,
        oldest first.  A call of one window ends where it began, so the
        driver fetches only every CHECK_EVERY-th of those (to see a failure)
        and merely waits for the others, which costs it less.  Every call
        takes the results of the one before, so a failure fails every call
        after it: on one, the driver fetches the calls it only waited for
        since the last it fetched, oldest first, and names the first that
        failed."""
        prev = []
        if self.lookahead and self.window < windows:
            prev = [h.lead.remote(windows) for h in self.hosts]     # the CPUs' first window
        pending = deque()       # (cap, refs) of the calls in flight
        waited = []             # (first window, cap, refs) waited for, not fetched
        done = self.window      # windows every host has run
        reach = done            # ... the calls in flight may have run at most
        ones = 0
        every = max(1, windows // 100)      # progress reports: about a hundred a run
        told = done
        while done < windows:
            if reach < windows and len(pending) < self.max_inflight:
                n = min(self.per_call, windows - reach)
                prev = [h.steps.remote(n, *prev) for h in self.hosts]
                self.calls += 1
                pending.append((n, prev))
                reach += n
                continue
            n, refs = pending.popleft()
            if n == 1 and ones % self.CHECK_EVERY != self.CHECK_EVERY - 1:
                ones += 1
                ray.wait(refs, num_returns=len(refs), fetch_local=False)
                waited.append((done, 1, refs))
                last = done
            else:
                ones += n == 1
                waited.append((done, n, refs))
                res = self._fetch(waited)
                waited.clear()
                last = res[0][0]
                if any(r[0] != last for r in res):
                    raise RunError(f"Ray actors out of step after window {done}: "
                                   + ", ".join(f"{a} at {r[0]}" for a, r in zip(self.actor_names, res)))
                reach -= done + n - 1 - last       # it stopped short of its cap
            done = last + 1
            if progress is not None and (done - told >= every or done == windows):
                progress(done, windows)
                told = done
        if waited:
            self._fetch(waited)
        if prev:
            self._check(windows, [h.finish.remote(*prev) for h in self.hosts])
        self.window = windows
        self.info["calls"] = self.calls

    def _summaries(self):
        if self._summ is None:
            refs = [h.summaries.remote() for h in self.hosts]
            self._check(self.window, refs)
            self._summ = ray.get(refs)
            self.messages = sum(s[2] for s in self._summ)
        return self._summ

    def summaries(self) -> list:
        return [s for part in self._summaries() for s in part[0]]

    def in_flight_packets(self) -> int:
        return sum(s[1] for s in self._summaries())

    def teardown(self) -> list:
        refs = [h.teardown.remote() for h in self.hosts]
        self._check(self.window, refs)
        return ray.get(refs)

    def timing(self) -> dict:
        return dict(zip(self.actor_names, ray.get([h.timing.remote() for h in self.hosts])))

    def whereabouts(self) -> dict:
        return dict(zip(self.actor_names, ray.get([h.whereami.remote() for h in self.hosts])))

    def close(self) -> None:
        for h in self.hosts:
            try:
                ray.kill(h)
            except Exception:  # noqa: BLE001 - already gone
                pass
        self.hosts = []
