"""ip6_input: IPv6 input (sys/netinet6/ip6_input.c), the checks in FreeBSD's order.

What this models, per packet (data starting at the IPv6 header): ip6s_total;
shorter than the 40-byte header -> ip6s_toosmall; version -> ip6s_badvers;
ip6s_nxthist[next header]; multicast source or unspecified/v4-mapped
addresses -> ip6s_badscope; not for one of the vnet's addresses with
forwarding off -> ip6s_cantforward; data shorter than 40 + payload length ->
ip6s_tooshort, longer -> trimmed; ip6s_delivered (bumped before the
extension-header walk, as FreeBSD does); then the next header: UDP and ICMPv6 onward,
TCP counted and dropped as `tcps_noport`, anything else -> `ip6s_noproto`.

What it leaves out until the IPv6 work item: extension headers (hop-by-hop,
routing, fragment + reassembly, destination options) and their nesting
limit, scope zones, multicast, forwarding, ICMPv6, pfil.
"""

from __future__ import annotations

from .inet import IPPROTO_ICMPV6, IPPROTO_TCP, IPPROTO_UDP
from .mbuf import m_adj

_V4MAPPED = b"\0" * 10 + b"\xff\xff"
_UNSPEC = b"\0" * 16



def ip6_input(m, vnets: dict, cnt):
    """Return (ulp, l4 offset from m.off) for a packet that is ours, else a drop reason."""
    cnt["ip6s_total"] += 1
    d = m.st.data
    o = m.off
    n = m.len
    if n < 40:
        return "ip6s_toosmall"
    if d[o] >> 4 != 6:
        return "ip6s_badvers"
    nxt = d[o + 6]
    cnt[f"ip6s_nxthist.{nxt}"] += 1
    src = d[o + 8:o + 24]
    dst = d[o + 24:o + 40]
    if src[0] == 0xFF or dst == _UNSPEC or src[:12] == _V4MAPPED or dst[:12] == _V4MAPPED:
        return "ip6s_badscope"
    v = vnets.get(m.vnet)
    if v is None or (dst not in v["inet6"] and not v["any"]):
        return "ip6s_cantforward"
    plen = (d[o + 4] << 8) | d[o + 5]
    if n - 40 < plen:
        return "ip6s_tooshort"
    if n - 40 > plen:
        m_adj(m, 40 + plen - n)
    cnt["ip6s_delivered"] += 1
    if nxt == IPPROTO_UDP:
        return nxt, 40
    if nxt == IPPROTO_ICMPV6:
        return nxt, 40
    if nxt == IPPROTO_TCP:
        cnt["tcps_rcvtotal"] += 1
        return "tcps_noport"
    return "ip6s_noproto"
