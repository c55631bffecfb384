"""Text reports written beside metrics.json.

A plain-text summary (the table `netcabal run` prints) and `netstat-s.txt`,
the protocol statistics laid out as FreeBSD's `netstat -s` prints them; the
other FreeBSD formats (`netstat -Q`, `netstat -m`, `vmstat -z`, lockstat)
come with the work items that model what they show.
"""

from __future__ import annotations

from pathlib import Path


def summary_rows(m: dict) -> list:
    """(section, label, value) rows of the run summary, in display order."""
    t = m["totals"]
    rows = [("packets", "in (arrived on the wire)", f"{t['arrived']:,}"),
            ("packets", "delivered", f"{t['delivered']:,}" + (
                "  (" + ", ".join(f"{k} {v:,}" for k, v in t.get("delivered_by", {}).items()) + ")"
                if t.get("delivered_by") else "")),
            ("packets", "fragments absorbed by reassembly", f"{t.get('absorbed_by_reassembly', 0):,}"),
            ("packets", "dropped", f"{t['dropped_total']:,}"),
            ("packets", "in flight at the end", f"{t['in_flight']:,}"),
            ("packets", "reordered within a flow", f"{t['reordered']:,}"),
            ("packets", "throughput", f"{t['throughput_pps']:,.0f} pps"),
            ("latency", "mean wire-to-socket", f"{m['latency_ns']['mean'] / 1000:,.2f} us"),
            ("latency", "p99 (log2 bucket bound)", f"<= {m['latency_ns']['p99_le'] / 1000:,.2f} us")]
    if "read_mean" in m["latency_ns"]:
        rows.append(("latency", "mean to the application's recv()",
                     f"{m['latency_ns']['read_mean'] / 1000:,.2f} us"))
    from .sweep import cost_columns
    cc = cost_columns(m)
    rows += [("cost", "cycles a packet (of which memory)",
              f"{cc['cycles_per_pkt']:,.0f}  ({cc['mem_cycles_per_pkt']:,.0f})"),
             ("cost", "cache lines a packet: local/LLC/other core/other pkg/DRAM",
              " / ".join(f"{cc[k + '_lines_per_pkt']:.2f}" for k in ("local", "llc", "xcore", "xpkg"))
              + f" / {cc['dram_lines_per_pkt'] + cc['dram_remote_lines_per_pkt']:.2f}"),
             ("cost", "context switches a packet (involuntary)",
              f"{cc['csw_per_pkt']:.2f}  ({cc['invol_csw_per_pkt']:.2f})"),
             ("cost", "interrupts, migrations", f"{cc['interrupts']:,}, {cc['migrations']:,}")]
    for reason, n in t["dropped"].items():
        rows.append(("dropped", reason, f"{n:,}"))
    for name, w in m["netisr"].items():
        handled = sum(p["handled"] for p in w["protocols"].values())
        qd = sum(p["qdrops"] for p in w["protocols"].values())
        rows.append(("netisr", f"{name} (cpu{w['cpu']})", f"handled {handled:,}  qdrops {qd:,}"))
    for name, c in m["cpus"].items():
        cls = "  ".join(f"{k} {v / m['scenario']['duration_ns']:.1%}" for k, v in c["by_class_ns"].items())
        rows.append(("cpu", name, f"{c['utilization']:.1%}" + (f"  ({cls})" if cls else "")))
    return rows


def summary_text(m: dict) -> str:
    rows = summary_rows(m)
    w = max(len(r[1]) for r in rows)
    out, sec = [], None
    for s, label, val in rows:
        if s != sec:
            out.append(f"{s}:")
            sec = s
        out.append(f"  {label:<{w}}  {val}")
    return "\n".join(out) + "\n"


def lockstat(m: dict) -> str:
    """lockstat(1)-style tables: contention (spin) events and hold events per
    lock, with lockstat's columns (Count, indv, cuml, nsec, Lock, Caller);
    then each lock's totals and maxima."""
    locks = m.get("locks", {})
    secs = m["scenario"]["duration_ns"] / 1e9
    out = []
    for title, count, total in (("Adaptive mutex spin", "contended", "wait_ns_total"),
                                ("Adaptive mutex hold", "acquisitions", "hold_ns_total")):
        rows = sorted(((st[count], st[total], name) for name, st in locks.items() if st[count]),
                      key=lambda r: (-r[0], r[2]))
        n = sum(r[0] for r in rows)
        out.append(f"{title}: {n} events in {secs:.3f} seconds ({n / secs if secs else 0:.0f} events/sec)")
        out.append("")
        out.append("Count indv cuml rcnt     nsec Lock                           Caller")
        out.append("-" * 79)
        cum = 0
        for c, tot, name in rows:
            cum += c
            out.append("%5u %3.0f%% %3.0f%% 0.00 %8u %-30s %s" % (
                c, 100.0 * c / n, 100.0 * cum / n, tot // c, name,
                "udp_input" if "udp" in name.split(":")[-1] else "-"))
        out.append("-" * 79)
        out.append("")
    out.append("%-34s %9s %9s %12s %10s %12s %10s" % ("Lock", "acquired", "contended", "wait ns", "max wait",
                                                   "hold ns", "max hold"))
    for name, st in locks.items():
        out.append("%-34s %9u %9u %12u %10u %12u %10u" % (
            f"{name} (x{st['instances']})" if st.get("instances", 1) > 1 else name,
            st["acquisitions"], st["contended"], st["wait_ns_total"], st["wait_ns_max"],
            st["hold_ns_total"], st["hold_ns_max"]))
    return "\n".join(out) + "\n"


def write_text_reports(m: dict, folder: Path) -> None:
    (Path(folder) / "lockstat.txt").write_text(lockstat(m))
    (Path(folder) / "summary.txt").write_text(summary_text(m))
    (Path(folder) / "netstat-s.txt").write_text(netstat_s(m))
    (Path(folder) / "netstat-Q.txt").write_text(netstat_Q(m))


# `netstat -s` lines (usr.bin/netstat/inet.c ip_stats/udp_stats, inet6.c
# ip6_stats, modern wording): (counter, text); "{s}" is the plural s.
_TCP = [("tcps_sndacks", "ack-only packet{s}"), ("tcps_delack", "delayed ack{s} sent"),
        ("tcps_sndctrl", "control packet{s}"),
        ("tcps_rcvtotal", "packet{s} received"),
        ("tcps_rcvackpack", "ack{s} (for received data)"),
        ("tcps_rcvpack", "packet{s} received in-sequence"),
        ("tcps_rcvbyte", "byte{s} received in-sequence"),
        ("tcps_rcvduppack", "completely duplicate packet{s}"),
        ("tcps_rcvdupbyte", "duplicate byte{s}"),
        ("tcps_rcvpartduppack", "packet{s} with some dup. data"),
        ("tcps_rcvpartdupbyte", "dup. byte{s} in part-dup. packets"),
        ("tcps_rcvoopack", "out-of-order packet{s}"), ("tcps_rcvoobyte", "out-of-order byte{s}"),
        ("tcps_rcvpackafterwin", "packet{s} of data after window"),
        ("tcps_rcvbyteafterwin", "byte{s} of data after window"),
        ("tcps_rcvbadsum", "discarded for bad checksum{s}"),
        ("tcps_rcvbadoff", "discarded for bad header offset field{s}"),
        ("tcps_rcvshort", "discarded because packet too short"),
        ("tcps_accepts", "connection accept{s}"), ("tcps_connects", "connection{s} established"),
        ("tcps_badsyn", "bad connection attempt{s}"),
        ("tcps_noport", "dropped due to no socket")]
_IP = [("ips_total", "total packet{s} received"), ("ips_badsum", "bad header checksum{s}"),
       ("ips_toosmall", "with size smaller than minimum"), ("ips_tooshort", "with data size < data length"),
       ("ips_toolong", "with ip length > max ip packet size"),
       ("ips_badhlen", "with header length < data size"), ("ips_badlen", "with data length < header length"),
       ("ips_badoptions", "with bad options"), ("ips_badvers", "with incorrect version number"),
       ("ips_fragments", "fragment{s} received"),
       ("ips_fragdropped", "fragment{s} dropped (dup or out of space)"),
       ("ips_fragtimeout", "fragment{s} dropped after timeout"),
       ("ips_reassembled", "packet{s} reassembled ok"), ("ips_delivered", "packet{s} for this host"),
       ("ips_noproto", "packet{s} for unknown/unsupported protocol"),
       ("ips_cantforward", "packet{s} not forwardable"),
       ("ips_badaddr", "datagram{s} with bad address in header")]
_UDP = [("udps_ipackets", "datagram{s} received"), ("udps_hdrops", "with incomplete header"),
        ("udps_badlen", "with bad data length field"), ("udps_badsum", "with bad checksum"),
        ("udps_nosum", "with no checksum"), ("udps_noport", "dropped due to no socket"),
        ("udps_noportbcast", "broadcast/multicast datagram{s} undelivered"),
        ("udps_fullsock", "dropped due to full socket buffers"),
        ("udpps_pcbhashmiss", "not for hashed pcb"), ("udp_delivered", "delivered")]
_IP6 = [("ip6s_total", "total packet{s} received"), ("ip6s_toosmall", "with size smaller than minimum"),
        ("ip6s_tooshort", "with data size < data length"), ("ip6s_badoptions", "with bad options"),
        ("ip6s_badvers", "with incorrect version number"), ("ip6s_fragments", "fragment{s} received"),
        ("ip6s_fragdropped", "fragment{s} dropped (dup or out of space)"),
        ("ip6s_fragtimeout", "fragment{s} dropped after timeout"),
        ("ip6s_fragoverflow", "fragment{s} that exceeded limit"),
        ("ip6s_reassembled", "packet{s} reassembled ok"), ("ip6s_delivered", "packet{s} for this host"),
        ("ip6s_cantforward", "packet{s} not forwardable"),
        ("ip6s_badscope", "packet{s} that violated scope rules"),
        ("ip6s_toomanyhdr", "packet{s} discarded because of too many headers")]
_ICMP = [("icps_tooshort", "message{s} < minimum length"), ("icps_checksum", "bad checksum{s}")]
_ICMP6 = [("icp6s_tooshort", "message{s} < minimum length"), ("icp6s_checksum", "bad checksum{s}")]
_NXT = {0: "hop by hop", 6: "TCP", 17: "UDP", 43: "routing", 44: "fragment", 50: "ESP", 51: "AH",
        58: "ICMP6", 59: "no next header", 60: "destination option", 89: "OSPF", 103: "PIM"}


def _lines(st: dict, table: list) -> list:
    out = []
    for k, text in table:
        n = st.get(k, 0)
        out.append(f"\t{n} " + text.replace("{s}", "" if n == 1 else "s"))
    return out


def netstat_s(m: dict) -> str:
    """The protocol statistics in the layout of FreeBSD's `netstat -s` (all
    lines, zeros included, as `netstat -s` without -z prints them)."""
    st = dict(m.get("stats", {}))
    st["udp_delivered"] = (st.get("udps_ipackets", 0) - st.get("udps_hdrops", 0) - st.get("udps_badlen", 0)
                           - st.get("udps_badsum", 0) - st.get("udps_noport", 0)
                           - st.get("udps_noportbcast", 0) - st.get("udps_fullsock", 0))
    out = ["tcp:"] + _lines(st, _TCP) + ["udp:"] + _lines(st, _UDP) + ["ip:"] + _lines(st, _IP)
    out += ["icmp:"] + _lines(st, _ICMP) + ["\tInput histogram:"]
    for k in sorted((k for k in st if k.startswith("icps_inhist.")), key=lambda k: int(k.split(".")[1])):
        out.append(f"\t\ttype {k.split('.')[1]}: {st[k]}")
    out += ["ip6:"] + _lines(st, _IP6) + ["\tInput histogram:"]
    for k in sorted((k for k in st if k.startswith("ip6s_nxthist.")), key=lambda k: int(k.split(".")[1])):
        nh = int(k.split(".")[1])
        out.append(f"\t\t{_NXT.get(nh, f'#{nh}')}: {st[k]}")
    out += ["icmp6:"] + _lines(st, _ICMP6) + ["\tInput histogram:"]
    for k in sorted((k for k in st if k.startswith("icp6s_inhist.")), key=lambda k: int(k.split(".")[1])):
        out.append(f"\t\ttype {k.split('.')[1]}: {st[k]}")
    out += ["arp:", f"\t{st.get('arp_received', 0)} packet{'' if st.get('arp_received', 0) == 1 else 's'} received"]
    link = {k: v for k, v in m["totals"]["dropped"].items()
            if k.startswith(("if_", "ether_", "llc_", "rawip_", "netisr_"))}
    out += ["link (netcabal's drop reasons below IP; FreeBSD counts only if_ierrors and if_noproto):"]
    out += [f"\t{v} {k}" for k, v in sorted(link.items())]
    return "\n".join(out) + "\n"


_POLICY = {1: "source", 2: "flow", 3: "cpu"}
# netisr2's registered protocols in netcabal (sys/net/netisr.h numbers):
# name, number, policy, dispatch (ether is always direct: it runs in the ithread)
_PROTOS = [("ip", 1, "flow", "default"), ("arp", 4, "source", "default"),
           ("ether", 5, "source", "direct"), ("ip6", 6, "flow", "default")]


def netstat_Q(m: dict) -> str:
    """`netstat -Q` as FreeBSD's usr.bin/netstat/netisr.c prints it (current,
    without libxo decoration): configuration, protocols, workstreams.

    Direct dispatches are charged to the CPU that ran them, as netisr2 does:
    the `ether` rows count the frames the NIC ithreads on that workstream's
    CPU passed through ether_input; CPUs without a workstream are not listed."""
    sc = m["scenario"]["sysctl"]
    isrs = m["netisr"]
    n = len(isrs)
    maxthreads = sc.get("net.isr.maxthreads", 1)
    lines = ["Configuration:", "%-25s %12s %12s" % ("Setting", "Current", "Limit"),
             "%-25s %12u %12u" % ("Thread count", n, max(n, maxthreads if maxthreads > 0 else n)),
             "%-25s %12u %12u" % ("Default queue limit", sc.get("net.isr.defaultqlimit", 256),
                                  sc.get("net.isr.maxqlimit", 10240)),
             "%-25s %12s %12s" % ("Dispatch policy", sc.get("net.isr.dispatch", "direct"), "n/a"),
             "%-25s %12s %12s" % ("Threads bound to CPUs",
                                  "enabled" if sc.get("net.isr.bindthreads") else "disabled", "n/a"),
             "", "Protocols:",
             "%-6s %5s %6s %-6s %-8s %-5s" % ("Name", "Proto", "QLimit", "Policy", "Dispatch", "Flags")]
    any_ws = next(iter(isrs.values()), None)
    for name, num, pol, disp in _PROTOS:
        ql = any_ws["protocols"][name]["qlimit"] if any_ws and name in any_ws["protocols"] \
            else sc.get("net.isr.defaultqlimit", 256)
        lines.append("%-6s %5u %6u %6s %8s   %s" % (name, num, ql, pol, disp, "---"))
    lines += ["", "Workstreams:",
              "%4s %3s " % ("WSID", "CPU") + "  " + "%-6s %5s %5s %8s %8s %8s %8s %8s" % (
                  "Name", "Len", "WMark", "Disp'd", "HDisp'd", "QDrops", "Queued", "Handled")]
    ether = {}
    direct = {}          # (cpu, protocol) -> packets dispatched directly by ithreads there
    hybrid = {}          # ... directly, under hybrid dispatch
    for nic in m["nics"].values():
        for q in nic["queues"]:
            # counted on the CPU that ran them (an ithread may move)
            for cs, b in q["by_cpu"].items():
                c = int(cs)
                ether[c] = ether.get(c, 0) + b["packets"]
                for proto, k in b["direct"].items():
                    direct[(c, proto)] = direct.get((c, proto), 0) + k
                for proto, k in b["hybrid"].items():
                    hybrid[(c, proto)] = hybrid.get((c, proto), 0) + k
    for wname in sorted(isrs, key=lambda k: isrs[k]["wsid"]):
        w = dict(isrs[wname])
        w["cpu"] = w.get("ws_cpu", w["cpu"])      # the workstream's CPU, not its thread's
        for name, _num, _pol, _disp in _PROTOS:
            if name == "ether":
                e = ether.get(w["cpu"], 0)
                row = (0, 0, e, 0, 0, 0, e)
            else:
                p = w["protocols"].get(name, {})
                dd = direct.get((w["cpu"], name), 0)
                hd = hybrid.get((w["cpu"], name), 0)
                row = (p.get("qlen", 0), p.get("wmark", 0), dd, hd,
                       p.get("qdrops", 0), p.get("queued", 0), p.get("handled", 0) + dd + hd)
            lines.append("%4u %3u " % (w["wsid"], w["cpu"]) + "  "
                         + "%-6s %5u %5u" % (name, row[0], row[1])
                         + "".join(" %8u" % v for v in row[2:]))
    return "\n".join(lines) + "\n"
