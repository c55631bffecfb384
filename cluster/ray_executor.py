"""The Ray executor: the emulated host's actors spread over Ray actors.

Placement.  `per-component` makes every CPU, NIC, netisr and vnet its own
named Ray actor (`cpu3`, `ix0`, `netisr3`, `vnet.vnet0`: what `ray list
actors` and the dashboard show), spread over the cluster's nodes; `packed`
groups the components into a few Ray actors (`pack0`, `pack1`, ..., one per
worker, default one per CPU Ray has), for laptops, cut where the fewest
packets cross between them (cluster/placement.py says how).  Each Ray actor is a thin
shell over a `cluster.engine.Host`, the same object the local executor uses,
so the model code runs unchanged and never sees Ray.

Data path.  In window w the driver calls `step(w, *lists)` on every Ray
actor, where `lists` are the object references of what every actor returned
in window w-1.  `step` returns one small object: the window and a list with
one entry per destination actor - nothing, a few bytes of control messages
(CPU time reports and debts), or, whenever the messages carry packets, a
reference to them, put in the object store by the sending worker and
fetched by the receiving one (msgpack, with mbuf batches in the mbuf wire
codec).  The driver only passes those references along and checks them: it
never fetches a packet.  It lets at most `max_inflight` windows run ahead of
the oldest unconfirmed one, so memory stays flat on long runs; it fetches
the statuses only every `CHECK_EVERY` windows and merely waits for the rest
(see `run`).  (One return
a window, not a status and the lists apart: a Ray object less per actor and
window, which on a 2-core machine is driver time the workers get back.)

Determinism.  Every Host sorts its inbox canonically (deliver time, sender,
sequence number), whatever order the bytes arrived in, so metrics are
byte-identical to the local executor's for any placement and any number of
workers.

Failure.  A Ray actor that dies (its process killed, its node lost) surfaces
as an error on its status for that window; the run stops with `RunError`
naming the component(s) and the window.  Nothing is written: results folders
are renamed into place only after a successful run.
"""

from __future__ import annotations

import os
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
from .placement import PLACEMENTS, groups_for
from .scenario import build


class RunError(RuntimeError):
    pass


@ray.remote
class HostActor:
    """A thin Ray shell over a Host holding some of the emulated components."""

    def __init__(self, scn: dict, names: list, host_of: dict, index: int, crash_at=None):
        mine = set(names)
        self.crash_at = crash_at
        self.t_step = 0.0       # wall seconds in the model's step
        self.t_codec = 0.0      # ... fetching, decoding and encoding messages
        self.host = Host([a for a in build(scn) if a.name in mine], scn["quantum_ns"])
        self.host_of = host_of
        self.index = index
        self.P = max(host_of.values()) + 1
        self.known = set(host_of)

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

    def step(self, w: int, *lists):
        """Run window w; `lists` are what every host returned for window
        w-1.  Returns (w, parts): parts[k] is None, the encoded messages for
        host k (control messages only), or a reference to them in the object
        store (whenever they hold packets)."""
        host = self.host
        if w == self.crash_at:
            os._exit(70)        # fault injection: this worker process dies here
        self._take(lists)
        if host.window != w:
            raise RuntimeError(f"window {w} asked of a host at window {host.window}")
        t0 = time.perf_counter()
        out = host.step(self.known)
        t1 = time.perf_counter()
        self.t_step += t1 - t0
        by = [None] * self.P
        for m in out:
            k = self.host_of[m[3]]
            if by[k] is None:
                by[k] = [m]
            else:
                by[k].append(m)
        parts = []
        for b in by:
            if b is None:
                parts.append(None)
            elif any(is_pkts(m[4]) for m in b):
                parts.append(ray.put(encode_msgs(b)))      # worker to worker
            else:
                parts.append(encode_msgs(b))
        self.t_codec += time.perf_counter() - t1
        return w, parts

    def finish(self, *lists):
        self._take(lists)
        return True

    def summaries(self):
        h = self.host
        return h.summaries(), h.in_flight_packets(), h.messages

    def teardown(self):
        return self.host.teardown()

    def timing(self):
        """Wall seconds in the model and with messages (fetch, decode, encode), for `netcabal bench`."""
        return {"step_s": self.t_step, "codec_s": self.t_codec}

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
                 fault: str | None = None, place_timeout: float = 120.0):
        """`fault` = "COMPONENT@WINDOW" makes the Ray actor holding that
        component exit at that window (to test how failures are handled)."""
        if placement not in PLACEMENTS:
            raise ValueError(f"placement must be one of {', '.join(PLACEMENTS)}")
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
        for i, g in enumerate(self.groups):
            actor_name = g[0] if placement == "per-component" else f"pack{i}"
            strategy = (NodeAffinitySchedulingStrategy(nodes[i % len(nodes)], soft=True)
                        if nodes else "SPREAD")
            self.hosts.append(HostActor.options(
                name=actor_name, namespace=self.namespace, num_cpus=num_cpus,
                scheduling_strategy=strategy, max_restarts=0, max_task_retries=0,
            ).remote(scn, g, host_of, i, crash.get(i)))
        self.actor_names = [g[0] if placement == "per-component" else f"pack{i}"
                            for i, g in enumerate(self.groups)]
        self.max_inflight = max(1, max_inflight)
        self.window = 0
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

    # -- running -------------------------------------------------------------
    def _check(self, w: int, refs: list, timeout: float | None = None) -> None:
        try:
            ray.get(refs, timeout=timeout)
        except (RayActorError, RayError, GetTimeoutError):
            bad = []
            for j, r in enumerate(refs):
                try:
                    ray.get(r, timeout=5)
                except Exception as e:  # noqa: BLE001 - we report every kind
                    bad.append(f"{self.actor_names[j]} ({self.labels[j]}): {type(e).__name__}")
            raise RunError(f"run failed in window {w}: Ray actor "
                           + "; ".join(bad or ["?"])) from None

    CHECK_EVERY = 8     # windows between fetching the statuses (only waiting for the others)

    def run(self, windows: int, progress=None) -> None:
        """Run the windows.  The driver waits for the oldest window in flight
        before it submits past `max_inflight`; it fetches the statuses (to
        see a failure) only every CHECK_EVERY windows - the others it only
        waits for, which costs it less - and keeps enough recent windows to
        name the first that failed: every window's steps take every host's
        output of the window before, so a failure fails every window after."""
        prev = []
        pending = deque()
        recent = deque(maxlen=self.max_inflight + 2 * self.CHECK_EVERY)
        step_every = max(1, windows // 100)
        for w in range(windows):
            prev = [h.step.remote(w, *prev) for h in self.hosts]
            pending.append((w, prev))
            recent.append((w, prev))
            while len(pending) > self.max_inflight:
                ww, refs = pending.popleft()
                if ww % self.CHECK_EVERY == self.CHECK_EVERY - 1:
                    self._check_recent(recent, ww)
                else:
                    ray.wait(refs, num_returns=len(refs), fetch_local=False)
            if progress is not None and (w % step_every == 0 or w == windows - 1):
                progress(w + 1, windows)
        if pending:
            self._check_recent(recent, pending[-1][0])
        if prev:
            self._check(windows, [h.finish.remote(*prev) for h in self.hosts])
        self.window = windows

    def _check_recent(self, recent, upto: int) -> None:
        """Fetch window `upto`'s statuses; if one failed, find the first
        window in `recent` that failed and name it.  Then forget the
        windows up to `upto`."""
        try:
            ray.get(next(refs for ww, refs in recent if ww == upto))
        except (RayActorError, RayError):
            for ww, refs in list(recent):
                if ww <= upto:
                    self._check(ww, refs)
            raise
        while recent and recent[0][0] <= upto:
            recent.popleft()

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
