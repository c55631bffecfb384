"""Tests of the model's truth: conservation, ordering, queueing theory,
the quantum's bounded effect, determinism."""

import collections
import math

from hypothesis import HealthCheck, given, settings, strategies as st

from actors import counter
from cluster.run import metrics_bytes
from conftest import run_scn


def _small(**kv):
    """Overrides for a short variant of the quickstart."""
    base = {"scenario.duration_ms": 1}
    base.update(kv)
    return [f"{k}={v!r}" if isinstance(v, str) else f"{k}={str(v).lower() if isinstance(v, bool) else v}"
            for k, v in base.items()]


# -- conservation ---------------------------------------------------------------

@settings(max_examples=25, suppress_health_check=[HealthCheck.too_slow])
@given(queues=st.integers(1, 4), threads=st.integers(1, 4), ring=st.integers(2, 64),
       rate=st.sampled_from([50_000, 400_000, 2_000_000, 6_000_000]),
       qlimit=st.integers(1, 64), bad_ip=st.sampled_from([0.0, 0.05]),
       bad_udp=st.sampled_from([0.0, 0.1]), itr=st.sampled_from([0.0, 8.0, 50.0]),
       rxcsum=st.booleans(), quantum=st.sampled_from([1000, 20000, 100000]),
       seed=st.integers(0, 2**31))
def test_packet_conservation_every_window(queues, threads, ring, rate, qlimit, bad_ip, bad_udp,
                                          itr, rxcsum, quantum, seed):
    """in = delivered + dropped by reason + in flight, at every window end,
    and every mbuf is back in its zone after teardown."""
    cpus = 4
    irq = [i % cpus for i in range(queues)]
    res = run_scn(_small(**{
        "nic.ix0.queues": queues, "nic.ix0.irq_cpus": irq, "nic.ix0.ring_size": ring,
        "nic.ix0.itr_us": itr, "nic.ix0.rxcsum": rxcsum,
        "net.isr.maxthreads": threads, "net.inet.ip.intr_queue_maxlen": qlimit,
        "net.inet6.ip6.intr_queue_maxlen": qlimit,
        "traffic.rate_pps": rate, "traffic.bad_ip_cksum_ratio": bad_ip,
        "traffic.bad_udp_cksum_ratio": bad_udp, "engine.quantum_ns": quantum,
        "scenario.seed": seed}), check_every_window=True)
    t = res.metrics["totals"]
    assert t["arrived"] == (t["delivered"] + t["dropped_total"] + t["in_flight"]
                            + t["absorbed_by_reassembly"])
    assert res.metrics["uma_leaked_after_teardown"] == {}
    for reason in t["dropped"]:
        assert reason and reason.replace("_", "").replace(".", "").isalnum()


def test_corrupt_checksums_are_counted_not_raised():
    for rxcsum in (True, False):
        m = run_scn(_small(**{"traffic.bad_ip_cksum_ratio": 0.1, "traffic.bad_udp_cksum_ratio": 0.1,
                              "traffic.family": "inet", "nic.ix0.rxcsum": rxcsum})).metrics
        d = m["totals"]["dropped"]
        n = m["totals"]["arrived"]
        assert abs(d["ips_badsum"] / n - 0.1) < 0.03
        assert abs(d["udps_badsum"] / n - 0.1) < 0.03
        assert set(d) == {"ips_badsum", "udps_badsum"}


def test_full_ring_drops_are_counted():
    m = run_scn(_small(**{"nic.ix0.ring_size": 4, "costs.driver_rx": 20000})).metrics
    assert m["totals"]["dropped"].get("if_iqdrops", 0) > 0
    q = m["nics"]["ix0"]["queues"]
    assert sum(x["ring_drops"] for x in q) == m["totals"]["dropped"]["if_iqdrops"]


def test_full_netisr_queue_drops_are_counted():
    m = run_scn(_small(**{"costs.ip_input": 30000, "net.inet.ip.intr_queue_maxlen": 8,
                          "net.inet6.ip6.intr_queue_maxlen": 8})).metrics
    qd = sum(p["qdrops"] for w in m["netisr"].values() for p in w["protocols"].values())
    assert qd > 0 and m["totals"]["dropped"]["netisr_qdrops"] == qd
    for w in m["netisr"].values():
        for p in w["protocols"].values():
            # whole-queue snapshots: Len never exceeds qlimit, WMark reaches it
            assert p["wmark"] <= p["qlimit"]


# -- ordering ---------------------------------------------------------------------

@settings(max_examples=20, suppress_health_check=[HealthCheck.too_slow])
@given(flows=st.integers(1, 200), threads=st.integers(1, 4), queues=st.integers(1, 4),
       rate=st.sampled_from([100_000, 1_000_000, 4_000_000]),
       arrivals=st.sampled_from(["constant", "poisson"]), seed=st.integers(0, 2**31),
       quantum=st.sampled_from([2000, 20000]))
def test_flow_policy_preserves_per_flow_order(flows, threads, queues, rate, arrivals, seed, quantum):
    res = run_scn(_small(**{"traffic.flows": flows, "net.isr.maxthreads": threads,
                            "nic.ix0.queues": queues, "nic.ix0.irq_cpus": list(range(queues)),
                            "traffic.rate_pps": rate, "traffic.arrivals": arrivals,
                            "scenario.seed": seed, "engine.quantum_ns": quantum}))
    m = res.metrics
    assert m["totals"]["delivered"] > 0
    assert m["totals"]["reordered"] == 0


# -- queueing theory ----------------------------------------------------------------

def _md1(rho, packets=150_000):
    """One netisr, Poisson arrivals, a fixed service of 1 us per packet."""
    rate = rho * 1e6
    dur_ms = packets / rate * 1e3
    res = run_scn(_small(**{
        "scenario.duration_ms": dur_ms, "net.isr.maxthreads": 1, "nic.ix0.queues": 1,
        "nic.ix0.irq_cpus": [1], "nic.ix0.itr_us": 0.0, "nic.ix0.ring_size": 100000,
        "costs.driver_rx": 0, "costs.ether_input": 0, "costs.netisr_queue": 0,
        "costs.interrupt": 0, "costs.netisr_wakeup": 0, "costs.context_switch": 0,
        # a fixed service time: no cache model (memory would vary it per packet)
        "host.cache_model": False,
        "costs.ip_input": 1000, "costs.udp_input": 2000,      # 3000 cycles at 3 GHz = 1 us
        "net.inet.ip.intr_queue_maxlen": 10000, "traffic.family": "inet",
        "traffic.arrivals": "poisson", "traffic.rate_pps": rate, "traffic.sizes": [[64, 1]],
        "scenario.seed": 7}))
    w = res.metrics["netisr"]["netisr0"]
    return w["queue_wait_ns_total"] / w["queue_waits"], res.metrics


def test_md1_mean_queueing_delay():
    """Mean wait in the netisr queue matches M/D/1: Wq = rho*D / (2(1-rho))."""
    D = 1000.0
    for rho in (0.5, 0.8):
        wq, m = _md1(rho)
        theory = rho * D / (2 * (1 - rho))
        assert abs(wq - theory) / theory < 0.05, (rho, wq, theory)
        assert m["totals"]["dropped_total"] == 0
        # latency = wait + service, the ithread costs nothing here
        assert abs(m["latency_ns"]["mean"] - (wq + D)) < 0.02 * (wq + D)


def test_utilisation_law():
    """A CPU's netisr busy share equals arrival rate x service time."""
    _, m = _md1(0.5, packets=50_000)
    swi = m["cpus"]["cpu0"]["by_class_ns"]["swi"] / m["scenario"]["duration_ns"]
    assert abs(swi - 0.5) < 0.02


# -- the quantum ------------------------------------------------------------------

def test_quantum_tenfold_smaller_agrees():
    a = run_scn(["engine.quantum_ns=20000"]).metrics
    b = run_scn(["engine.quantum_ns=2000"]).metrics
    for key in ("throughput_pps",):
        x, y = a["totals"][key], b["totals"][key]
        assert abs(x - y) / x < 0.05, (key, x, y)
    x, y = a["latency_ns"]["mean"], b["latency_ns"]["mean"]
    assert abs(x - y) / x < 0.05, ("latency", x, y)
    assert a["totals"]["arrived"] == b["totals"]["arrived"]


# -- determinism ------------------------------------------------------------------

def test_same_seed_same_bytes():
    a = metrics_bytes(run_scn().metrics)
    b = metrics_bytes(run_scn().metrics)
    assert a == b


def test_codec_on_the_wire_changes_nothing():
    """Sending every batch through the msgpack codec (as Ray does) gives the same metrics."""
    a = metrics_bytes(run_scn(["scenario.duration_ms=5"]).metrics)
    b = metrics_bytes(run_scn(["scenario.duration_ms=5"], codec_check=True).metrics)
    assert a == b


def test_other_seed_other_run():
    a = run_scn(["scenario.duration_ms=2"]).metrics
    b = run_scn(["scenario.duration_ms=2", "scenario.seed=2"]).metrics
    assert a["totals"]["arrived"] != b["totals"]["arrived"] or a["latency_ns"] != b["latency_ns"]


def test_metrics_hold_no_wall_time():
    m = run_scn(["scenario.duration_ms=1"])
    blob = metrics_bytes(m.metrics).decode()
    assert "wall" not in blob
    assert m.run_info["wall_s"] > 0
    assert not math.isnan(m.metrics["latency_ns"]["mean"])


@settings(max_examples=300, deadline=None)
@given(st.integers(-(2**62), 2**62))
def test_latency_bucket_is_the_bit_length(x):
    """The vnet's latency histogram buckets by bit length (a C loop when
    compiled): the same as int.bit_length for every value."""
    from actors.vnet import _bit_length
    assert _bit_length(x) == x.bit_length()


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(list(counter.NAMES[:12]) + ["ips_badsum", "udps_nosum",
                                                                       "ip6s_nxthist.255"]),
                          st.integers(-3, 2**40)), max_size=60))
def test_stat_counts_as_a_dict_of_names(ops):
    """A thread's Stat (actors/counter.py) reads and writes by name as the
    defaultdict(int) it replaced, whether the name sits in the array or not;
    the hot paths' index constants name the same counters."""
    s, d = counter.Stat(), collections.defaultdict(int)
    for name, delta in ops:
        s[name] += delta
        d[name] += delta
        assert s[name] == d[name]
    assert {k: v for k, v in s.items() if v} == {k: v for k, v in d.items() if v}
    for const in ("IPS_TOTAL", "IPS_DELIVERED", "IP6S_TOTAL", "IP6S_DELIVERED",
                  "UDPS_IPACKETS", "TCPS_RCVTOTAL"):
        assert counter.NAMES[getattr(counter, const)] == const.lower()
    assert counter.NAMES[counter.NXTHIST + 17] == "ip6s_nxthist.17"
