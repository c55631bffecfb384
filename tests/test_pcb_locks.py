"""pcbs, their references and locks (issue: transport and the pcbinfo lock):
in_pcbref / in_pcbrele in any interleaving, the locks' FIFO semantics, and
the model's truths - a global pcbinfo lock caps throughput at 1/hold, per-pcb
references scale with the netisrs, and no connection ever runs on two
threads at once."""

from hypothesis import HealthCheck, given, settings, strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, invariant, rule
import pytest

from actors.in_pcb import (Pcb, PcbInfo, PcbRefUnderflow, PcbUseAfterFree, in_pcbfree,
                           in_pcbref, in_pcbrele, use)
from actors.lock import Lock
from cluster.run import run
from cluster.scenario import validate


# -- references ------------------------------------------------------------------

class PcbRefs(RuleBasedStateMachine):
    """Threads look pcbs up (taking a reference), use them, release them;
    sockets close; in any interleaving no pcb is used after its memory goes,
    and none is leaked."""

    pcbs = Bundle("pcbs")

    def __init__(self):
        super().__init__()
        self.info = PcbInfo("udp")
        self.n = 0
        self.held = {t: [] for t in range(3)}      # thread -> pcbs it holds a reference on
        self.all = []

    @rule(target=pcbs)
    def create(self):
        p = Pcb(self.n, "udp", 4, bytes([10, 0, 0, 1]), 1000 + self.n)
        self.n += 1
        self.info.insert(p)
        self.all.append(p)
        return p

    @rule(t=st.integers(0, 2), p=pcbs)
    def lookup_and_ref(self, t, p):
        found = self.info.lookup(4, b"", 0, p.laddr, p.lport)
        if p.freed:
            assert found is not p        # a closed pcb is out of its table
            return
        assert found is p
        in_pcbref(found)                 # under the pcbinfo lock, then unlocked
        self.held[t].append(found)

    @rule(t=st.integers(0, 2))
    def use_held(self, t):
        for p in self.held[t]:
            use(p)                       # never raises: we hold a reference

    @rule(t=st.integers(0, 2))
    def release(self, t):
        if self.held[t]:
            p = self.held[t].pop(0)
            last = in_pcbrele(self.info, p)
            assert last == p.gone

    @rule(p=pcbs)
    def close(self, p):
        if p.freed:
            with pytest.raises(PcbUseAfterFree):
                in_pcbfree(self.info, p)
            return
        gone = in_pcbfree(self.info, p)
        assert gone == (not any(p in h for h in self.held.values()))

    @invariant()
    def memory_goes_only_with_the_last_reference(self):
        for p in self.all:
            held = sum(h.count(p) for h in self.held.values())
            assert p.refs == held + (0 if p.freed else 1)
            assert p.gone == (p.freed and held == 0)
        assert self.info.live() == sum(1 for p in self.all if not p.gone)

    def teardown(self):
        for t in self.held:
            while self.held[t]:
                in_pcbrele(self.info, self.held[t].pop())
        for p in self.all:
            if not p.freed:
                in_pcbfree(self.info, p)
        assert self.info.live() == 0 and all(p.gone for p in self.all)    # no leak
        for p in self.all:
            with pytest.raises(PcbUseAfterFree):
                use(p)


TestPcbRefs = PcbRefs.TestCase
TestPcbRefs.settings = settings(max_examples=150, stateful_step_count=40,
                                suppress_health_check=[HealthCheck.too_slow], deadline=None)


def test_release_without_reference_is_caught():
    info = PcbInfo("udp")
    p = info.insert(Pcb(0, "udp", 4, b"", 9))
    with pytest.raises(PcbRefUnderflow):
        in_pcbrele(info, p)              # the table's reference, dropped while in the table
    in_pcbref(p)
    in_pcbfree(info, p)
    assert not p.gone                    # our reference keeps it
    assert in_pcbrele(info, p) and p.gone
    with pytest.raises(PcbUseAfterFree):
        in_pcbref(p)


def test_lookup_exact_then_bound_then_wildcard():
    info = PcbInfo("udp")
    a = bytes([10, 0, 0, 1])
    f = bytes([198, 18, 0, 1])
    wild = info.insert(Pcb(0, "udp", 4, b"", 53))
    bound = info.insert(Pcb(1, "udp", 4, a, 53))
    conn = info.insert(Pcb(2, "udp", 4, a, 53, f, 4000))
    assert info.lookup(4, f, 4000, a, 53) is conn
    assert info.lookup(4, f, 4001, a, 53) is bound
    assert info.lookup(4, f, 4000, bytes([10, 0, 0, 2]), 53) is wild
    assert info.lookup(6, f, 4000, a, 53) is None



def _naive_lookup(info, fam, faddr, fport, laddr, lport):
    """in_pcblookup without shortcuts: all three tables, always."""
    p = info.exact.get((fam, faddr, fport, laddr, lport))
    if p is None:
        p = info.bound.get((fam, laddr, lport))
        if p is None:
            p = info.bound.get((fam, b"", lport))
    return p


ADDRS = [b"", bytes([10, 0, 0, 1]), bytes([10, 0, 0, 2])]
FADDRS = [bytes([198, 18, 0, 1]), bytes([198, 18, 0, 2])]


@settings(max_examples=200, deadline=None)
@given(ops=st.lists(st.tuples(st.booleans(), st.integers(0, 2), st.integers(0, 2),
                              st.integers(0, 1), st.sampled_from([0, 4000, 4001]),
                              st.sampled_from([53, 54]), st.sampled_from([4, 6])), max_size=30),
       probes=st.lists(st.tuples(st.sampled_from([4, 6]), st.integers(0, 1),
                                 st.sampled_from([4000, 4001, 9]), st.integers(1, 2),
                                 st.sampled_from([53, 54, 55])), min_size=1, max_size=20))
def test_lookup_shortcuts_answer_as_the_full_search(ops, probes):
    """The lookup skips the exact table when it is empty and the bound-address
    table when nothing is bound to a specific address, and finds a wildcard
    binding in its own per-family table; across any inserts (keys may
    collide) and closes, it answers as searching all three."""
    info = PcbInfo("udp")
    live = []
    for n, (close, pick, la, fa, fport, lport, pfam) in enumerate(ops):
        if close and live:
            p = live.pop(pick % len(live))
            if not p.freed:
                in_pcbfree(info, p)
        else:
            p = Pcb(n, "udp", pfam, ADDRS[la], lport, FADDRS[fa] if fport else b"", fport)
            info.insert(p)
            live.append(p)
        assert info.nspec == sum(1 for (_, a, _) in info.bound if a)
        assert {(f, b"", lp): p for f, w in info.wild.items() for lp, p in w.items()} == \
            {k: p for k, p in info.bound.items() if not k[1]}
        for fam, fa_, fport_, la_, lport_ in probes:
            args = (fam, FADDRS[fa_], fport_, ADDRS[la_], lport_)
            assert info.lookup(*args) is _naive_lookup(info, *args)


# -- locks -----------------------------------------------------------------------------

def test_mutex_is_fifo_and_counts_like_lockstat():
    lk = Lock("udp")
    assert lk.acquire(0, 100) == 0
    assert lk.acquire(10, 100) == 100          # waits 90
    assert lk.acquire(20, 50) == 200           # waits 180
    assert lk.acquire(500, 10) == 500          # free again
    s = lk.stats()
    assert (s["acquisitions"], s["contended"], s["wait_ns_total"], s["wait_ns_max"]) == (4, 2, 270, 180)
    assert (s["hold_ns_total"], s["hold_ns_max"]) == (260, 100)


def test_rwlock_readers_share_writers_wait():
    lk = Lock("tcp", "rw")
    assert lk.acquire(0, 100, shared=True) == 0
    assert lk.acquire(10, 100, shared=True) == 10      # readers overlap
    assert lk.acquire(20, 50) == 110                   # a writer waits for both
    assert lk.acquire(30, 10, shared=True) == 160      # a reader waits for the writer


# -- the model's truths ---------------------------------------------------------------

def host(locking: str, netisrs: int, conns: int, rate: float, seed: int = 1, ms: float = 10,
         udp_input: int = 30_000, lookup: int = 3_000):
    """4 CPUs, 4 RSS queues, `netisrs` flow-assigned netisrs (deferred), one
    connected UDP socket per flow; udp_input holds its lock(s) for 10 us."""
    return validate({
        "scenario": {"name": "locks", "duration_ms": ms, "seed": seed},
        "host": {"cpus": 4, "cache_model": False},
        "sysctl": {"net.isr.maxthreads": netisrs, "net.isr.bindthreads": 1,
                   "net.isr.dispatch": "deferred", "net.inet.ip.intr_queue_maxlen": 4096},
        "pcb": {"locking": locking},
        "costs": {"udp_input": udp_input, "in_pcblookup": lookup},
        "nic": [{"name": "ix0", "queues": 4}],
        "socket": [{"name": "s", "bind": "*:5001"}],
        "traffic": [{"family": "inet", "flows": conns, "connected": True, "rate_pps": rate,
                     "arrivals": "poisson"}],
    })


def test_global_lock_caps_throughput_at_one_over_hold():
    h = 30_000 / 3.0                                   # ns per segment under the lock
    cap = 1e9 / h
    for n in (1, 2, 4):
        m = run(host("global", n, 64, 400_000)).metrics
        tp = m["totals"]["throughput_pps"]
        assert tp <= cap * 1.01, (n, tp, cap)
        lk = m["vnets"]["vnet.vnet0"]["locks"]["udp"]
        if n > 1:                                      # the lock is what limits them
            assert tp >= 0.9 * cap, (n, tp, cap)
            assert lk["contended"] > 0.5 * lk["acquisitions"]


def test_pcb_references_scale_with_the_netisrs():
    tp = {}
    for n in (1, 2, 4):
        tp[n] = run(host("pcbref", n, 64, 1_000_000)).metrics["totals"]["throughput_pps"]
    # linear: each netisr is CPU-bound (its CPU also runs an ithread), none waits
    assert tp[2] > 1.9 * tp[1] and tp[4] > 3.8 * tp[1], tp
    # ... and far past the global lock's ceiling (1/hold = 100 kpps)
    assert tp[4] > 2.5 * run(host("global", 4, 64, 1_000_000)).metrics["totals"]["throughput_pps"]


def test_one_socket_serializes_even_with_references():
    """Every flow into one unconnected socket: its pcb lock is the global lock
    again."""
    one = validate({
        "scenario": {"duration_ms": 10}, "host": {"cpus": 4, "cache_model": False},
        "sysctl": {"net.isr.maxthreads": 4, "net.isr.bindthreads": 1, "net.isr.dispatch": "deferred",
                   "net.inet.ip.intr_queue_maxlen": 4096},
        "pcb": {"locking": "pcbref"}, "costs": {"udp_input": 30_000, "in_pcblookup": 3_000},
        "nic": [{"name": "ix0", "queues": 4}], "socket": [{"name": "s", "bind": "*:5001"}],
        "traffic": [{"family": "inet", "flows": 64, "rate_pps": 1_000_000}]})
    tp = run(one).metrics["totals"]["throughput_pps"]
    assert tp <= 1e9 / 9_000 * 1.01                # the pcb lock's hold: 27,000 cycles


@settings(max_examples=15, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(locking=st.sampled_from(["global", "pcbref", "pcbgroup"]), netisrs=st.integers(1, 4),
       conns=st.sampled_from([1, 3, 16, 300]), rate=st.sampled_from([100_000, 500_000]),
       seed=st.integers(0, 2**31))
def test_a_connection_never_runs_on_two_threads_at_once(locking, netisrs, conns, rate, seed):
    m = run(host(locking, netisrs, conns, rate, seed, ms=2, udp_input=6_000, lookup=600)).metrics
    p = m["vnets"]["vnet.vnet0"]["pcb"]
    assert p["inputs"] > 0 and p["overlaps"] == 0
    assert p["pcbs"] == conns + 1                  # every connected socket, and the bound one
    assert m["totals"]["reordered"] == 0
