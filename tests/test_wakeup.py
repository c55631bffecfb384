"""Loopback senders, socket readers and the wakeup policies (the meeting's
netisr.wakeup item): the policy's own rules, and what each does to context
switches, wakeups, latency and packet conservation."""

from pathlib import Path

import pytest

from actors.inet import cksum_sum
from actors.wakeup import Batcher
from cluster.run import metrics_bytes
from cluster.scenario import ScenarioError, load

LO = """
[scenario]
name = "lo"
duration_ms = 4
[host]
cpus = 2
[[nic]]
name = "ix0"
queues = 1
[[socket]]
name = "sink"
bind = "127.0.0.1:5001"
[[app]]
name = "sender"
to = "127.0.0.1:5001"
cpu = 0
rate_pps = 100000
burst = 64
"""


def _run(tmp_path, extra="", sets=()):
    from cluster.run import run
    p = Path(tmp_path) / "lo.toml"
    p.write_text(LO + extra)
    return run(load(p, list(sets)))


def _per_packet(m):
    n = m["vnets"]["vnet.vnet0"]["senders"]["sender"]["sent"]
    cs = m["cpus"]["cpu0"]["context_switches"]
    return n, (cs["voluntary"] + cs["involuntary"]) / n, m["netisr"]["netisr0"]["wakeups"] / n


# -- the policy's rules ------------------------------------------------------------

def test_batcher_rules():
    b = Batcher("immediate")
    assert b.add(5, "a") == [(5, "a")]
    b = Batcher("deferred")
    assert b.add(1, "a") == [] and b.add(2, "b") == [] and b.point(7) == [(7, "a"), (7, "b")]
    assert b.point(9) == []
    b = Batcher("batched", batch=3, timeout_ns=100)
    assert b.add(0, "a") == [] and b.add(10, "b") == []
    assert b.add(20, "c") == [(20, "a"), (20, "b"), (20, "c")]        # the third one
    assert b.add(30, "d") == [] and b.due(120) == []                   # not yet past 30 + 100
    assert b.due(131) == [(130, "d")]                                  # the timeout
    assert b.add(200, "e") == [] and b.add(400, "f") == [(300, "e")]   # timed out before f
    assert len(b) == 1


# -- whole-host truths ---------------------------------------------------------------

def test_immediate_wakeup_costs_a_switch_per_packet(tmp_path):
    """The netisr shares the sender's CPU and preempts it for every datagram."""
    m = _run(tmp_path, '[wakeup]\nmode = "immediate"\n').metrics
    n, cs, wk = _per_packet(m)
    assert n > 300
    assert cs >= 1.0 and wk > 0.95
    # every wakeup preempts the running sender: an involuntary switch each
    assert m["cpus"]["cpu0"]["context_switches"]["involuntary"] >= 0.9 * n


def test_batched_wakeup_by_n_costs_at_most_1_over_n(tmp_path):
    for n_batch in (4, 16):
        m = _run(tmp_path, f'[wakeup]\nmode = "batched"\nbatch = {n_batch}\n').metrics
        n, cs, wk = _per_packet(m)
        assert wk <= 1 / n_batch + 0.01, (n_batch, wk)
        # a wakeup is two switches (to the netisr and back); the sender's own
        # timer wakeups, one burst of 64 each, add two more per burst
        assert cs <= 2 / n_batch + 2 / 64 + 0.02, (n_batch, cs)
        assert m["cpus"]["cpu0"]["context_switches"]["involuntary"] <= n / n_batch + 2


def test_deferred_wakeup_waits_for_the_senders_sleep(tmp_path):
    m = _run(tmp_path, '[wakeup]\nmode = "deferred"\n').metrics
    n, cs, wk = _per_packet(m)
    bursts = m["vnets"]["vnet.vnet0"]["senders"]["sender"]["wakeups"]
    assert abs(m["netisr"]["netisr0"]["wakeups"] - bursts) <= 1
    # the netisr runs when the sender sleeps: no preemption at all
    assert m["cpus"]["cpu0"]["context_switches"]["involuntary"] == 0
    imm = _run(tmp_path, '[wakeup]\nmode = "immediate"\n').metrics
    # fewer switches, more latency (a datagram waits for the end of its burst)
    assert cs < _per_packet(imm)[1] / 10
    assert m["latency_ns"]["mean"] > imm["latency_ns"]["mean"]


def test_a_netisr_on_another_cpu_does_not_preempt_the_sender(tmp_path):
    m = _run(tmp_path, '[sysctl]\n"net.isr.maxthreads" = 2\n"net.isr.bindthreads" = 1\n'
                       '[netisr]\npin = {lo0 = 1}\n[wakeup]\nmode = "immediate"\n').metrics
    n = m["vnets"]["vnet.vnet0"]["senders"]["sender"]["sent"]
    assert m["cpus"]["cpu0"]["context_switches"]["involuntary"] == 0   # no preemption
    # it drains beside the sender, which sends faster than it serves: it
    # wakes once and takes a run of datagrams
    assert m["netisr"]["netisr1"]["wakeups"] < 0.5 * n
    assert m["cpus"]["cpu1"]["context_switches"]["voluntary"] >= 2 * m["netisr"]["netisr1"]["wakeups"] - 4
    # the datagrams cross to CPU 1's cache
    assert m["cpus"]["cpu1"]["memory"]["lines"]["xcore"] >= 4 * n


def test_readers_are_woken_by_the_same_policy(tmp_path):
    reader = '[[socket]]\nname = "app"\nbind = "127.0.0.1:5002"\nreader_cpu = 1\n'
    send = '[[app]]\nname = "s2"\nto = "127.0.0.1:5002"\ncpu = 0\nrate_pps = 100000\nburst = 64\n'
    imm = _run(tmp_path, reader + send + '[wakeup]\nmode = "immediate"\n').metrics
    bat = _run(tmp_path, reader + send + '[wakeup]\nmode = "batched"\nbatch = 16\n').metrics
    ri = imm["vnets"]["vnet.vnet0"]["sockets"]["app"]["reader"]
    rb = bat["vnets"]["vnet.vnet0"]["sockets"]["app"]["reader"]
    assert ri["read"] > 300 and rb["read"] > 300
    assert ri["wakeups"] > 4 * rb["wakeups"]
    assert rb["wakeups"] <= rb["read"] / 16 + 1
    # a read comes after the send (latency > 0), and the metrics carry it
    for r, m in ((ri, imm), (rb, bat)):
        assert r["latency_ns"]["sum"] > 0 and r["latency_ns"]["max"] > 0
        assert m["latency_ns"]["read_mean"] > 0


def test_loopback_conserves_packets_and_mbufs(tmp_path):
    for mode in ("immediate", "deferred", "batched"):
        res = _run(tmp_path, f'[wakeup]\nmode = "{mode}"\nbatch = 7\ntimeout_us = 30\n'
                             '[[socket]]\nname = "r"\nbind = "[::1]:5003"\nreader_cpu = "float"\n'
                             '[[app]]\nname = "s6"\nto = "[::1]:5003"\ncpu = "float"\n'
                             'rate_pps = 50000\nburst = 3\n')
        t = res.metrics["totals"]
        assert t["arrived"] == (t["delivered"] + t["dropped_total"] + t["in_flight"]
                                + t["absorbed_by_reassembly"]), mode
        assert t["dropped_total"] == 0 and t["delivered"] > 0.9 * t["arrived"]
        assert res.metrics["uma_leaked_after_teardown"] == {}


def test_loopback_is_deterministic(tmp_path):
    a = _run(tmp_path, '[wakeup]\nmode = "batched"\nbatch = 5\n')
    b = _run(tmp_path, '[wakeup]\nmode = "batched"\nbatch = 5\n')
    assert metrics_bytes(a.metrics) == metrics_bytes(b.metrics)


def test_loopback_datagrams_have_real_checksums(tmp_path):
    res = _run(tmp_path, '[engine]\ntap_max = 50\n')
    frames = [f for fr, _ in res.taps for f in fr if not f[3]]
    assert len(frames) >= 50
    for _, _, rcvif, _, _, data in frames:
        assert rcvif == "lo0"
        ip = data[14:]
        hl = (ip[0] & 15) * 4
        assert cksum_sum(ip[:hl]) == 0xFFFF
        udp = ip[hl:]
        pseudo = ip[12:20] + bytes([0, 17]) + len(udp).to_bytes(2, "big")
        assert cksum_sum(pseudo + udp) == 0xFFFF


@pytest.mark.parametrize("app, key", [
    ({"to": "10.9.9.9:5001"}, "app[0].to"),                 # not local
    ({"to": "127.0.0.1:5001", "rate_pps": 0}, "app[0].rate_pps"),
    ({"to": "127.0.0.1:5001", "cpu": 7}, "app[0].cpu"),
    ({"to": "127.0.0.1"}, "app[0].to"),
    ({"to": "127.0.0.1:5001", "colour": 1}, "app[0].colour"),
])
def test_bad_apps_are_refused(tmp_path, app, key):
    from cluster.scenario import validate
    data = {"nic": [{"name": "ix0"}], "app": [dict({"rate_pps": 1000}, **app)]}
    with pytest.raises(ScenarioError) as e:
        validate(data)
    assert e.value.key == key


def test_bad_wakeup_is_refused():
    from cluster.scenario import validate
    with pytest.raises(ScenarioError) as e:
        validate({"nic": [{"name": "ix0"}], "wakeup": {"mode": "sometimes"}})
    assert e.value.key == "wakeup.mode"
    with pytest.raises(ScenarioError) as e:
        validate({"nic": [{"name": "ix0"}], "wakeup": {"mode": "batched"}})
    assert e.value.key == "wakeup.batch"
