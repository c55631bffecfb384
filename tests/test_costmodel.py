"""Tests of the cost model's truth (issue: cores, caches, interrupts,
wakeups): the LRU stack-distance cache model, CPU sharing by priority,
context switches, interrupts and the scheduler's placement."""

import pytest
from hypothesis import given, settings, strategies as st

from actors.cache import (L_DRAM, L_DRAM_REMOTE, L_LLC, L_LOCAL, L_XCORE, L_XPKG, LEVELS,
                          MemView, Topology, line_rec, shared_rec)
from actors.costs import DEFAULT_COSTS
from actors.sched import Loads, float_vector_cpu, pick_ithread_cpu, pick_thread_cpu, steal
from conftest import run_scn


def _topo(cpus=4, packages=1, l2=256 << 10, llc=8 << 20):
    return Topology({"cpus": cpus, "packages": packages, "l2_bytes": l2, "llc_bytes": llc,
                     "ghz": 3.0, "costs": DEFAULT_COSTS})


def _levels(view):
    """Lines counted this window, by (core, level) (view.cnt is flat: core c's
    six levels at c * 6)."""
    out = {}
    cnt = list(view.cnt)
    for i, n in enumerate(cnt):
        if n:
            c, lv = divmod(i, len(LEVELS))
            out[(c, LEVELS[lv])] = out.get((c, LEVELS[lv]), 0) + n
    return out


# -- the cache model ------------------------------------------------------------

def test_one_core_hits_in_its_cache_after_the_first_touch():
    v = MemView(_topo(), "t")
    rec = None
    lv = []
    for _ in range(100):
        lv.append(v.level(0, *(rec if rec else (-1, 0, 0))))
        v.touch(0, rec, 2)
        rec = v.now(0)
    assert lv[0] == L_DRAM and set(lv[1:]) == {L_LOCAL}


def test_alternating_cores_pay_a_transfer_every_touch():
    for packages, want in ((1, L_XCORE), (2, L_XPKG)):
        v = MemView(_topo(cpus=4, packages=packages), "t")
        rec = v.now(0)
        v.touch(0, None, 2)
        seen = []
        for i in range(100):
            c = 0 if i % 2 else 2           # core 2 is in package 1 when there are two
            seen.append(v.level(c, *rec))
            v.touch(c, rec, 2)
            rec = v.now(c)
        assert set(seen) == {want}, (packages, set(seen))


def test_working_set_larger_than_the_private_cache_misses_to_the_llc():
    l2 = 64 << 10
    for objects, want in ((l2 // 128 // 2, L_LOCAL),        # half the cache: hits
                          (4 * l2 // 128, L_LLC),           # 4x the private cache
                          (2 * (1 << 20) // 128, L_DRAM)):  # 2x the LLC
        v = MemView(_topo(l2=l2, llc=1 << 20), "t")
        recs = [None] * objects
        for sweep in range(2):
            seen = set()
            for i in range(objects):
                if sweep:
                    seen.add(v.level(0, *recs[i]))
                v.touch(0, recs[i], 2)          # 2 lines = 128 bytes an object
                recs[i] = v.now(0)
        assert seen == {want}, (objects, seen)


def test_dram_is_remote_from_the_other_package():
    v = MemView(_topo(cpus=4, packages=2), "t")
    assert v.level(0, -1, 0, 0) == L_DRAM and v.level(3, -1, 0, 0) == L_DRAM_REMOTE


def test_read_mostly_lines_are_shared():
    v = MemView(_topo(cpus=4, packages=2), "t")
    rec = shared_rec(4)
    v.touch_shared(0, rec, 1)        # first read anywhere: memory
    v.touch_shared(0, rec, 1)        # again on core 0: its cache
    v.touch_shared(1, rec, 1)        # core 1, same package: the LLC has it
    v.touch_shared(2, rec, 1)        # core 2, other package: memory (remote)
    got = _levels(v)
    assert got == {(0, "dram"): 1, (0, "local"): 1, (1, "llc"): 1, (2, "dram_remote"): 1}


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 3), st.integers(0, 2), st.integers(1, 40)), max_size=80))
def test_a_record_in_an_array_prices_as_the_tuple_record(touches):
    """touch_rec (the record an int64 array, updated in place) prices and
    counts every touch as touch() then now() does, for any sequence of
    cores, objects and sizes."""
    a = MemView(_topo(cpus=4, packages=2, l2=4096, llc=16384), "a")
    b = MemView(_topo(cpus=4, packages=2, l2=4096, llc=16384), "b")
    tup = [None] * 3
    arr = [line_rec() for _ in range(3)]
    for c, o, lines in touches:
        ns = a.touch(c, tup[o], lines)
        tup[o] = a.now(c)
        assert b.touch_rec(c, arr[o], lines) == ns
        assert tuple(arr[o]) == tup[o]
    assert list(a.cnt) == list(b.cnt) and list(a.nsl) == list(b.nsl)
    assert list(a.now_c) == list(b.now_c) and list(a.now_p) == list(b.now_p)


def test_other_actors_touches_reach_us_through_the_cpus_counters():
    """A line we touched is evicted by what another actor did on the core,
    once the CPU's published counter says so."""
    t = _topo(l2=4096)
    v = MemView(t, "a")
    v.touch(0, None, 1)
    rec = v.now(0)
    v.report([], 0)
    assert v.level(0, *rec) == L_LOCAL
    v.publish([64 + 8192, 0, 0, 0])    # the core touched 8 KB more (another actor)
    assert v.level(0, *rec) == L_LLC


# -- scheduler placement ------------------------------------------------------

def test_ule_placement_rules():
    Q = 10_000
    loads = Loads(4, Q, [0, 0, 1, 1])
    # ithread: the interrupted CPU if idle, else the least loaded of its package
    assert pick_ithread_cpu(loads, 16, 2, 0) == 2
    loads.set(2, [(16, "ix1:rxq0", 9000)])
    loads.set(3, [(160, "user", 2000)])
    assert pick_ithread_cpu(loads, 16, 2, 0) == 3
    # a thread stays where it can run at once (affinity) ...
    loads = Loads(4, Q, [0, 0, 1, 1])
    loads.set(0, [(160, "user", 9000)])
    assert pick_thread_cpu(loads, 40, 0, None) == 0          # user load does not block a SWI
    loads.set(0, [(40, "netisr 0", 9000)])
    assert pick_thread_cpu(loads, 40, 0, None, "netisr 0") == 0   # nor does its own
    loads.set(0, [(16, "ix0:rxq0", 8000)])
    # ... else goes to the least loaded CPU that can run it, its package first
    assert pick_thread_cpu(loads, 40, 0, None) == 1
    # and prefers the waker's CPU when the best one is not idle and the
    # waker's is no busier by a thread's worth
    loads.set(1, [(160, "a", 3000)])
    loads.set(2, [(160, "b", 3000)])
    loads.set(3, [(160, "c", 3000)])
    assert pick_thread_cpu(loads, 40, 0, 3) == 3
    # a running thread stuck behind an ithread is stolen by an idle CPU
    loads = Loads(4, Q, [0, 0, 1, 1])
    loads.set(0, [(16, "ix0:rxq0", 6000), (40, "netisr 0", 6000)])
    loads.set(1, [(160, "user", 9000)])
    assert steal(loads, 40, 0, "netisr 0") == 2
    loads.set(2, [(16, "ix0:rxq1", 100)])
    assert steal(loads, 40, 0, "netisr 0") == 2              # nearly idle is idle
    loads.set(0, [(16, "ix0:rxq0", 1000), (40, "netisr 0", 6000)])
    assert steal(loads, 40, 0, "netisr 0") == 0              # it can run where it is
    # floating vectors rotate over all CPUs
    assert [float_vector_cpu(1, k, 4) for k in range(5)] == [1, 2, 3, 0, 1]


# -- whole-host truths ------------------------------------------------------

def _one_cpu(ith_cycles, isr_cycles, rate=100_000, **kv):
    """One CPU, one queue, one netisr, deferred; no memory or switch costs,
    so the ithread's and the netisr's per-packet times are exact."""
    base = {"scenario.duration_ms": 20, "host.cpus": 1, "host.cache_model": False,
            "net.isr.maxthreads": 1, "net.isr.dispatch": "deferred", "net.isr.bindthreads": 1,
            "nic.ix0.queues": 1, "nic.ix0.irq_cpus": [0], "nic.ix0.itr_us": 0.0,
            "traffic.arrivals": "constant", "traffic.rate_pps": rate, "traffic.family": "inet",
            "traffic.sizes": [[64, 1]],
            "costs.interrupt": 0, "costs.context_switch": 0, "costs.netisr_wakeup": 0,
            "costs.migration": 0, "costs.driver_rx": ith_cycles, "costs.ether_input": 0,
            "costs.netisr_queue": 0, "costs.ip_input": isr_cycles, "costs.udp_input": 0,
            "net.inet.ip.intr_queue_maxlen": 256}
    base.update(kv)
    ov = [f"{k}={v}" if not isinstance(v, bool) else f"{k}={str(v).lower()}"
          for k, v in base.items()]
    return run_scn(ov).metrics


def test_high_priority_40_percent_leaves_the_low_one_60():
    """ithread (PI_NET) wants 40% of the CPU, the netisr (SWI) 80%: the
    netisr gets 60%, the CPU is 100% busy, the netisr's queue fills and
    drops what it cannot serve."""
    # 100 kpps: 4 us of ithread (12,000 cycles at 3 GHz) and 8 us of netisr a packet
    m = _one_cpu(12_000, 24_000)
    cpu = m["cpus"]["cpu0"]
    span = 20e6
    by = cpu["by_class_ns"]
    assert abs(by["intr"] / span - 0.40) < 0.01, by
    assert abs(by["swi"] / span - 0.60) < 0.02, by
    assert cpu["busy_ns"] / span > 0.98
    ws = m["netisr"]["netisr0"]["protocols"]["ip"]
    arrived = m["totals"]["arrived"]
    # the netisr serves 60/80 of the packets; the rest wait (<= 2 x qlimit) or drop
    assert abs(ws["handled"] / arrived - 0.75) < 0.03, (ws, arrived)
    assert ws["qdrops"] > 0 and ws["wmark"] == 256
    assert m["totals"]["dropped"]["netisr_qdrops"] == ws["qdrops"]


def test_low_priority_alone_gets_what_it_wants():
    m = _one_cpu(3_000, 24_000)      # 10% + 80%: no contention
    by = m["cpus"]["cpu0"]["by_class_ns"]
    assert abs(by["intr"] / 20e6 - 0.10) < 0.01 and abs(by["swi"] / 20e6 - 0.80) < 0.02
    assert m["totals"]["dropped_total"] == 0


def _flow(**kv):
    base = {"scenario.duration_ms": 2, "traffic.flows": 1, "traffic.family": "inet",
            "traffic.rate_pps": 200_000, "traffic.arrivals": "constant",
            "traffic.sizes": [[64, 1]], "nic.ix0.queues": 1, "nic.ix0.irq_cpus": [0],
            "net.isr.maxthreads": 2, "net.isr.bindthreads": 1}
    base.update(kv)
    return run_scn([f"{k}={_toml(v)}" for k, v in base.items()]).metrics


def _toml(v):
    if isinstance(v, dict):
        return "{" + ", ".join(f"{k} = {_toml(x)}" for k, x in v.items()) + "}"
    if isinstance(v, str):
        return f'"{v}"'
    return str(v).lower() if isinstance(v, bool) else str(v)


def test_a_flow_on_one_core_never_leaves_its_cache():
    """Direct dispatch, one queue on CPU 0: every named object stays in CPU
    0's cache; only the DMA'd packet data comes from memory."""
    m = _flow(**{"net.isr.dispatch": "direct"})
    lines = m["cpus"]["cpu0"]["memory"]["lines"]
    n = m["totals"]["delivered"]
    assert lines["xcore"] == lines["xpkg"] == 0
    assert lines["dram"] - 2 * n <= 16          # 2 data lines a packet; first touches aside
    assert lines["llc"] == 0 and lines["local"] > 8 * n


def test_a_flow_handed_to_another_core_pays_a_transfer_per_packet():
    """Deferred to a netisr bound on CPU 1: the packet's lines (and the
    queue head) move from CPU 0's cache to CPU 1's for every packet."""
    m = _flow(**{"net.isr.dispatch": "deferred", "netisr.pin": {"ix0": 1}})
    n = m["netisr"]["netisr1"]["protocols"]["ip"]["handled"]
    assert n > 300
    x1 = m["cpus"]["cpu1"]["memory"]["lines"]["xcore"]
    assert x1 >= 4 * n                # mbuf header + packet data, every packet
    # and the same with the netisr on the interrupt's CPU: no transfers
    m = _flow(**{"net.isr.dispatch": "deferred", "netisr.pin": {"ix0": 0}})
    assert m["cpus"]["cpu0"]["memory"]["lines"]["xcore"] == 0


def test_memory_time_is_part_of_cpu_time():
    m = _flow(**{"net.isr.dispatch": "direct"})
    c = m["cpus"]["cpu0"]
    assert 0 < c["memory"]["ns"] < c["busy_ns"]
    assert c["compute_ns"] == c["busy_ns"] - c["memory"]["ns"]


def test_pinned_interrupts_stay_floating_ones_move():
    pinned = _flow(**{"net.isr.dispatch": "direct", "host.cpus": 4})
    q = pinned["nics"]["ix0"]["queues"][0]
    assert q["migrations"] == 0
    cpus = pinned["cpus"]
    # (the CPUs count what reached them: the last window's reports are in flight)
    assert q["interrupts"] - 3 <= cpus["cpu0"]["interrupts"] <= q["interrupts"]
    assert all(cpus[f"cpu{i}"]["interrupts"] == 0 for i in (1, 2, 3))
    fl = _flow(**{"net.isr.dispatch": "direct", "host.cpus": 4, "nic.ix0.irq_cpus": "float"})
    q = fl["nics"]["ix0"]["queues"][0]
    per = [fl["cpus"][f"cpu{i}"]["interrupts"] for i in range(4)]
    assert q["interrupts"] - 3 <= sum(per) <= q["interrupts"] and min(per) > 0   # spread
    assert q["migrations"] > 0.5 * q["interrupts"]           # the ithread follows to idle CPUs
    # and moving costs: transfers appear, cycles per packet grow
    assert sum(fl["cpus"][f"cpu{i}"]["memory"]["lines"]["xcore"] for i in range(4)) > 0
    busy = lambda mm: sum(c["busy_ns"] for c in mm["cpus"].values()) / mm["totals"]["delivered"]  # noqa: E731
    assert busy(fl) > busy(pinned)


def test_every_ithread_wakeup_on_an_idle_cpu_is_two_switches():
    m = _flow(**{"net.isr.dispatch": "direct", "host.cpus": 2})
    q = m["nics"]["ix0"]["queues"][0]
    cs = m["cpus"]["cpu0"]["context_switches"]
    # idle -> ithread at the interrupt, ithread -> idle when the ring is empty
    # (the CPU judges a burst once every report that could cover it is in:
    # the last few windows' are not judged when the run ends)
    assert 2 * q["interrupts"] - 24 <= cs["voluntary"] <= 2 * q["interrupts"]
    assert cs["involuntary"] == 0


def test_an_ithread_preempts_the_netisr_on_its_cpu():
    """A netisr kept busy on CPU 0 (by a heavy ip_input) is preempted by the
    ithread's interrupts: involuntary switches on CPU 0, none on CPU 1."""
    m = _flow(**{"net.isr.dispatch": "deferred", "netisr.pin": {"ix0": 0},
                 "costs.ip_input": 14_000, "nic.ix0.itr_us": 20.0})
    cs = m["cpus"]["cpu0"]["context_switches"]
    assert cs["involuntary"] > 0.5 * m["nics"]["ix0"]["queues"][0]["interrupts"]
    assert m["cpus"]["cpu1"]["context_switches"]["involuntary"] == 0


def test_an_unbound_netisr_leaves_a_cpu_its_ithread_saturates():
    """net.isr.bindthreads=0: the netisr starts on CPU 0 with the ithread,
    which keeps CPU 0 over half busy; ULE moves the netisr to a CPU where it
    can run at once."""
    kv = {"net.isr.dispatch": "deferred", "net.isr.maxthreads": 1, "host.cpus": 2,
          "costs.driver_rx": 7_000, "costs.ip_input": 9_000, "traffic.rate_pps": 200_000}
    bound = _flow(**dict(kv, **{"net.isr.bindthreads": 1}))
    free = _flow(**dict(kv, **{"net.isr.bindthreads": 0}))
    assert bound["netisr"]["netisr0"]["migrations"] == 0
    assert free["netisr"]["netisr0"]["migrations"] >= 1
    assert free["netisr"]["netisr0"]["cpu"] == 1
    assert free["cpus"]["cpu1"]["by_class_ns"].get("swi", 0) > 0
    # bound, it shares CPU 0 with the ithread and loses
    assert (bound["totals"]["throughput_pps"] < free["totals"]["throughput_pps"]
            or bound["totals"]["dropped_total"] > free["totals"]["dropped_total"])



# The placement rules as the module comment states them, with min() over
# tuple keys: the reference the loops in actors/sched.py must agree with.
def _ref_total(by, c, me=""):
    return sum(ns for _, t, ns in by[c] if t != me)


def _ref_can_run(by, Q, c, pri, me=""):
    return sum(ns for p, t, ns in by[c] if p <= pri and t != me) < 0.5 * Q


def _ref_idle(by, Q, c, me=""):
    return _ref_total(by, c, me) < 0.05 * Q


def _ref_ithread(by, Q, pkg, pri, vec, last, me):
    if _ref_idle(by, Q, vec, me):
        return vec
    cands = [c for c in range(len(by)) if pkg[c] == pkg[vec]]
    return min(cands, key=lambda c: (not _ref_can_run(by, Q, c, pri, me), _ref_total(by, c, me),
                                     c != last, c != vec, c))


def _ref_thread(by, Q, pkg, pri, last, waker, me):
    if _ref_can_run(by, Q, last, pri, me):
        return last
    best = min(range(len(by)), key=lambda c: (not _ref_can_run(by, Q, c, pri, me),
                                              _ref_total(by, c, me), pkg[c] != pkg[last],
                                              c != last, c))
    if (waker is not None and waker != best and not _ref_idle(by, Q, best, me)
            and _ref_can_run(by, Q, waker, pri, me)
            and _ref_total(by, waker, me) <= _ref_total(by, best, me) + Q):
        return waker
    return best


def _ref_steal(by, Q, pkg, pri, cur, me):
    if _ref_can_run(by, Q, cur, pri, me):
        return cur
    idle = [c for c in range(len(by)) if c != cur and _ref_idle(by, Q, c, me)]
    if not idle:
        return cur
    return min(idle, key=lambda c: (pkg[c] != pkg[cur], c))


_THREADS = ["ix0:rxq0", "netisr 0", "netisr 1", "user", "app"]


@settings(max_examples=400, deadline=None)
@given(st.integers(1, 6).flatmap(lambda n: st.tuples(
    st.lists(st.lists(st.tuples(st.sampled_from([16, 40, 160]), st.sampled_from(_THREADS),
                                st.integers(0, 12_000)), max_size=4), min_size=n, max_size=n),
    st.lists(st.integers(0, 2), min_size=n, max_size=n),
    st.integers(0, n - 1), st.integers(0, n - 1), st.one_of(st.none(), st.integers(0, n - 1)))),
    st.sampled_from([16, 40, 160]), st.sampled_from(_THREADS + [""]))
def test_placement_rules_agree_with_their_statement(case, pri, me):
    by, pkg, a, b, waker = case
    Q = 10_000
    loads = Loads(len(by), Q, pkg)
    for c, d in enumerate(by):
        loads.set(c, d)
    assert pick_ithread_cpu(loads, pri, a, b, me) == _ref_ithread(by, Q, pkg, pri, a, b, me)
    assert pick_thread_cpu(loads, pri, a, waker, me) == _ref_thread(by, Q, pkg, pri, a, waker, me)
    assert steal(loads, pri, a, me) == _ref_steal(by, Q, pkg, pri, a, me)


def test_a_balanced_vector_goes_to_the_least_loaded_cpu():
    from actors.sched import balance_vector_cpu
    loads = Loads(4, 10_000, [0, 0, 0, 0])
    loads.set(0, [(16, "a", 5000)])
    loads.set(1, [(40, "b", 100)])
    loads.set(2, [(160, "c", 3000)])
    loads.set(3, [(16, "d", 4000)])
    assert balance_vector_cpu(loads, 0) == 1
    idle = Loads(4, 10_000, [0, 0, 0, 0])
    assert [balance_vector_cpu(idle, v) for v in range(4)] == [0, 1, 2, 3]
    m = _flow(**{"net.isr.dispatch": "direct", "host.cpus": 4, "nic.ix0.irq_cpus": "balanced"})
    q = m["nics"]["ix0"]["queues"][0]
    assert q["vector_cpu"] == "float" and q["interrupts"] > 0
    per = [m["cpus"][f"cpu{i}"]["interrupts"] for i in range(4)]
    assert sum(per) >= q["interrupts"] - 3 and sum(1 for x in per if x) >= 2


def test_cpu_name_for_any_core():
    from actors.cache import cpu_name
    assert [cpu_name(c) for c in (0, 3, 63, 64, 200)] == ["cpu0", "cpu3", "cpu63", "cpu64", "cpu200"]
    assert cpu_name(5) is cpu_name(5)          # made once
    with pytest.raises((ValueError, OverflowError)):
        cpu_name(-1)
