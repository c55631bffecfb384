"""icmp_input, icmp6_input and arp input: the local consumers that end a
packet's way without a socket (sys/netinet/ip_icmp.c, icmp6.c, if_ether.c).

What this models: ICMP - at least 8 bytes (`icps_tooshort`), the checksum
over the message (`icps_checksum`), the type histogram (`icps_inhist.N`);
ICMPv6 - at least 4 bytes (`icp6s_tooshort`), the checksum over the IPv6
pseudo header and the message (`icp6s_checksum`), `icp6s_inhist.N`; ARP -
at least a fixed ARP header with its hardware and protocol lengths
(`arp_tooshort`), `arp_received`.  A packet that passes is consumed:
counted as delivered to its protocol.

What it leaves out: every reply and every state change - echo replies,
unreachables handed to the transport protocols, redirects, neighbour
discovery and MLD, ARP cache updates and replies.
"""

from __future__ import annotations

from .inet import IPPROTO_ICMPV6, cksum_ok, pseudo_sum


def icmp_input(m, off: int, cnt):
    """ICMP message at m.off + off; None if consumed, else a drop reason."""
    d = m.st.data
    s = m.off + off
    n = m.len - off
    if n < 8:
        return "icps_tooshort"
    if not cksum_ok(d, s, s + n):
        return "icps_checksum"
    cnt[f"icps_inhist.{d[s]}"] += 1
    return None


def icmp6_input(m, off: int, cnt):
    d = m.st.data
    o = m.off
    s = o + off
    n = m.len - off
    if n < 4:
        return "icp6s_tooshort"
    ps = pseudo_sum(d, o, True, IPPROTO_ICMPV6, n)
    if not cksum_ok(d, s, s + n, ps):
        return "icp6s_checksum"
    cnt[f"icp6s_inhist.{d[s]}"] += 1
    return None


def arp_input(m, cnt):
    d = m.st.data
    o = m.off
    if m.len < 8 or m.len < 8 + 2 * (d[o + 4] + d[o + 5]):
        return "arp_tooshort"
    cnt["arp_received"] += 1
    return None
