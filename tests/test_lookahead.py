"""The CPUs one window ahead (cluster/engine.py, Host.lead): the same
results as the lock step, with no Ray.

A Host can step its CPUs for window w + 1 right after its other actors'
window w, when every thread that reports to them is its own.  Then what
the CPUs publish for w + 2 is ready a window early, and a Host that holds
only part of the host can take the other parts' messages one window late
(the Ray executor's `--lookahead`).  Here every part is a Host in this
process, and the other parts' messages of each pass are delivered as late
as that allows: after the next pass."""

import pytest

from cluster.engine import Host, LateMessage, LocalExecutor
from cluster.placement import groups_for
from cluster.run import gather, metrics_bytes
from cluster.scenario import build, load
from conftest import SCENARIOS

JAILS = SCENARIOS / "bench-4nic-jails.toml"
BENCH = SCENARIOS / "bench-4nic.toml"


def _metrics(scn: dict, hosts: list) -> bytes:
    summ = [s for h in hosts for s in h.summaries()]
    for s in summ:
        s.pop("tap", None)
    return metrics_bytes(gather(scn, summ, sum(h.in_flight_packets() for h in hosts),
                                hosts[0].window, sum(h.messages for h in hosts)))


def _local(scn: dict) -> bytes:
    ex = LocalExecutor(build(scn), scn["quantum_ns"])
    ex.run(scn["windows"])
    return _metrics(scn, [ex.host])


def _lagged(scn: dict, groups: list) -> bytes:
    """Each group a Host with its CPUs ahead; what a pass sends to another
    group is delivered only after that group's next pass."""
    actors = build(scn)
    hosts = [Host([a for a in actors if a.name in set(g)], scn["quantum_ns"]) for g in groups]
    host_of = {n: i for i, g in enumerate(groups) for n in g}
    known = set(host_of)
    cpus = [a.name for a in actors if a.name.startswith("cpu")]
    for h in hosts:
        h.set_ahead(cpus, stop_at=scn["windows"])
    pending = [m for h in hosts for m in h.lead(known)]      # pass -1: the CPUs of window 0
    for _ in range(scn["windows"]):
        out = [m for h in hosts for m in h.step(known)]
        for m in pending:
            hosts[host_of[m[3]]].deliver([m])
        pending = out
    for m in pending:
        hosts[host_of[m[3]]].deliver([m])
    return _metrics(scn, hosts)


@pytest.mark.parametrize("path,ms", [(SCENARIOS / "quickstart.toml", 2), (SCENARIOS / "link-layer.toml", 2),
                                     (JAILS, 10)], ids=["quickstart", "link-layer", "jails"])
def test_cpus_ahead_in_one_host_change_nothing(path, ms):
    scn = load(path, [f"scenario.duration_ms={ms}"])
    assert _lagged(scn, [[a.name for a in build(scn)]]) == _local(scn)


@pytest.mark.parametrize("k", [2, 4])
def test_jails_split_a_window_apart_give_the_lock_steps_results(k):
    """bench-4nic-jails packed over k: only the CPUs' published state crosses,
    and it can come a window late."""
    scn = load(JAILS, ["scenario.duration_ms=10"])
    groups = groups_for([a.name for a in build(scn)], "packed", k, scn)
    assert len(groups) == k
    assert _lagged(scn, groups) == _local(scn)


def test_a_message_that_comes_too_late_is_refused():
    """bench-4nic packed over 2: packets cross between the groups, due the
    next window; a window late, their destination has stepped it."""
    scn = load(BENCH, ["scenario.duration_ms=5"])
    groups = groups_for([a.name for a in build(scn)], "packed", 2, scn)
    with pytest.raises(LateMessage, match="after .* had stepped that window"):
        _lagged(scn, groups)


def test_late_message_for_a_cpu_ahead_is_refused():
    """A report for a CPU that has stepped its window already, delivered
    from outside: refused, not lost; one for a window it has not stepped
    yet is taken."""
    scn = load(JAILS, ["scenario.duration_ms=2"])
    Q = scn["quantum_ns"]
    h = Host(build(scn), Q)
    h.set_ahead(["cpu0"], stop_at=scn["windows"])
    h.lead()                # cpu0 has stepped window 0
    body = ["ix0", "ix0:rxq0", 16, [], [], []]
    with pytest.raises(LateMessage, match="ix0 sent 'use' to cpu0"):
        h.deliver([(0, "ix0", 0, "cpu0", "use", body)])
    h.deliver([(Q, "ix0", 1, "cpu0", "use", body)])     # window 1: not yet
    h.step()                # window 0, and cpu0's window 1 (which took it)
    with pytest.raises(LateMessage):
        h.deliver([(Q, "ix0", 2, "cpu0", "use", body)])
    h.deliver([(Q, "ix0", 3, "ix1", "debt", ["ix1:rxq0", 5])])    # others: window 1 is next
    # a box for a CPU ahead, filed behind deliver's back, is refused too
    h.mail.setdefault(1, {})["cpu0"] = [(Q, "ix0", 4, "cpu0", "use", body)]
    with pytest.raises(LateMessage):
        h.step()


def test_step_refuses_actors_ahead_not_led():
    scn = load(JAILS, ["scenario.duration_ms=2"])
    h = Host(build(scn), scn["quantum_ns"])
    h.set_ahead(["cpu0"])
    with pytest.raises(RuntimeError, match="not led"):
        h.step()
