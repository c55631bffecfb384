"""netstat-s.txt: FreeBSD's `netstat -s` layout, with numbers that agree
with the run's own accounting."""

import re

from cluster.reports import netstat_s
from conftest import run_scn


def _n(text, section, phrase):
    body = text.split(f"\n{section}:\n", 1)[1] if not text.startswith(f"{section}:") else text.split(":\n", 1)[1]
    for line in body.splitlines():
        if not line.startswith("\t"):
            break
        mm = re.match(r"\t(\d+) (.*)", line)
        if mm and mm.group(2) == phrase:
            return int(mm.group(1))
    raise AssertionError(f"{section}: no line {phrase!r}")


def test_netstat_s_agrees_with_the_run():
    m = run_scn(["scenario.duration_ms=2", "traffic.bad_ip_cksum_ratio=0.05",
                 "traffic.bad_udp_cksum_ratio=0.05", "traffic.family=\"inet\""]).metrics
    text = netstat_s(m)
    t = m["totals"]
    assert _n(text, "ip", "bad header checksums") == t["dropped"]["ips_badsum"]
    assert _n(text, "udp", "with bad checksum") == t["dropped"]["udps_badsum"]
    received = _n(text, "udp", "datagrams received")
    assert _n(text, "udp", "delivered") == received - t["dropped"]["udps_badsum"]
    # what udp says it delivered reached the sockets, or is on its way there
    gap = _n(text, "udp", "delivered") - t["delivered_by"]["socket"]
    assert 0 <= gap <= t["in_flight"]
    total = _n(text, "ip", "total packets received")
    assert total <= t["arrived"]
    assert _n(text, "ip", "packets for this host") == received
    assert _n(text, "ip", "bad header checksums") + received == total


def test_netstat_s_plurals():
    m = {"stats": {"ips_total": 1, "udps_ipackets": 2}, "totals": {"dropped": {}}}
    text = netstat_s(m)
    assert "\t1 total packet received" in text
    assert "\t2 datagrams received" in text


def test_netstat_Q_layout_and_numbers():
    from cluster.reports import netstat_Q
    m = run_scn(["scenario.duration_ms=2", "net.inet.ip.intr_queue_maxlen=4", "costs.ip_input=20000",
                 "net.inet6.ip6.intr_queue_maxlen=4"]).metrics
    text = netstat_Q(m).splitlines()
    assert text[0] == "Configuration:"
    assert text[1] == "Setting                        Current        Limit"
    assert text[2] == "Thread count                         4            4"
    assert text[4] == "Dispatch policy               deferred          n/a"
    assert text[8] == "Name   Proto QLimit Policy Dispatch Flags"
    assert text[9] == "ip         1      4   flow  default   ---"
    assert "WSID CPU   Name     Len WMark   Disp'd  HDisp'd   QDrops   Queued  Handled" in text
    rows = [ln for ln in text if re.match(r"^ {3}\d {3}\d {3}", ln)]
    assert len(rows) == 4 * 4
    for ln in rows:
        assert len(ln) == len("WSID CPU   Name     Len WMark   Disp'd  HDisp'd   QDrops   Queued  Handled")
    got = {}
    for ln in rows:
        f = ln.split()
        got[(int(f[0]), f[2])] = [int(x) for x in f[3:]]
    qdrops = 0
    for w in m["netisr"].values():
        for name in ("ip", "ip6"):
            p = w["protocols"][name]
            ln, wm, _d, _h, qd, qu, ha = got[(w["wsid"], name)]
            assert (wm, qd, qu, ha) == (p["wmark"], p["qdrops"], p["queued"], p["handled"])
            qdrops += qd
    assert qdrops == m["totals"]["dropped"]["netisr_qdrops"] > 0
