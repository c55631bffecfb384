"""ip6_input: IPv6 input (sys/netinet6/ip6_input.c), the checks in FreeBSD's order.

What this models, per packet (data starting at the IPv6 header): ip6s_total;
shorter than the 40-byte header -> ip6s_toosmall; version -> ip6s_badvers;
ip6s_nxthist[next header]; multicast source or unspecified/v4-mapped
addresses -> ip6s_badscope; not for one of the vnet's addresses with
forwarding off -> ip6s_cantforward; data shorter than 40 + payload length ->
ip6s_tooshort, longer -> trimmed; ip6s_delivered (bumped before the
extension-header walk, as FreeBSD does); then the extension-header chain: hop-by-hop (first only, else
ip6s_badoptions), routing (a type 0 header with segments left is
ip6s_badoptions, RFC 5095; any other with segments left would be forwarded:
ip6s_cantforward), destination options, each checked against the data
(ip6s_tooshort) and at most net.inet6.ip6.hdrnestlimit (15) of them
(ip6s_toomanyhdr); a fragment header goes to frag6_input
(actors/ip_reass.py); UDP and ICMPv6 onward, TCP counted and dropped as
`tcps_noport`, anything else `ip6s_noproto`.

What it leaves out: the options inside hop-by-hop and destination headers
(jumbo payload, router alert), scope zones, multicast, forwarding, pfil,
AH/ESP (a later work item), raw sockets.
"""

from __future__ import annotations

from .inet import IPPROTO_ICMPV6, IPPROTO_TCP, IPPROTO_UDP, bslice
from .counter import IP6S_DELIVERED, IP6S_TOTAL, NXTHIST
from .mbuf import m_adj

# C constants when compiled: the per-packet tests box no int
_NXTHIST = NXTHIST
_UDP = IPPROTO_UDP
_TCP = IPPROTO_TCP
_ICMPV6 = IPPROTO_ICMPV6



def _zeros(d: bytes, p: int, n: int) -> bool:
    """d[p:p + n] is all zero bytes (p + n within d)."""
    for i in range(p, p + n):
        if d[i]:
            return False
    return True


def _v4mapped(d: bytes, p: int) -> bool:
    """The address at d[p:p + 16] is v4-mapped (::ffff:a.b.c.d)."""
    return d[p + 10] == 0xFF and d[p + 11] == 0xFF and _zeros(d, p, 10)


def _loopback(d: bytes, p: int) -> bool:
    """The address at d[p:p + 16] is ::1."""
    return d[p + 15] == 1 and _zeros(d, p, 15)


def ip6_input(m, vnets: dict, cnt):
    """Return (ulp, l4 offset from m.off) for a packet that is ours, else a drop reason."""
    cnt.v[IP6S_TOTAL] += 1
    d = m.st.data
    o = m.off
    n = m.len
    if n < 40:
        return "ip6s_toosmall"
    if d[o] >> 4 != 6:
        return "ip6s_badvers"
    nxt = d[o + 6]
    cnt.v[_NXTHIST + nxt] += 1            # ip6s_nxthist[nxt]
    # the addresses' checks read the header in place: a multicast source,
    # the unspecified destination, v4-mapped addresses (::ffff:0:0/96)
    s = o + 8
    t = o + 24
    if d[s] == 0xFF or _zeros(d, t, 16) or _v4mapped(d, s) or _v4mapped(d, t):
        return "ip6s_badscope"
    if (_loopback(d, s) or _loopback(d, t)) and m.rcvif != "lo0":
        return "ip6s_badscope"            # ::1 only ever comes from lo0
    v = vnets.get(m.vnet)
    if v is None or (bslice(d, t, t + 16) not in v["inet6"] and not v["any"]):
        return "ip6s_cantforward"
    plen = (d[o + 4] << 8) | d[o + 5]
    if n - 40 < plen:
        return "ip6s_tooshort"
    if n - 40 > plen:
        m_adj(m, 40 + plen - n)
    cnt.v[IP6S_DELIVERED] += 1
    return ip6_nexthdr(m, cnt)


IPPROTO_HOPOPTS = 0
IPPROTO_ROUTING = 43
IPPROTO_FRAGMENT = 44
IPPROTO_DSTOPTS = 60
IPPROTO_NONE = 59
HDRNESTLIMIT = 15       # net.inet6.ip6.hdrnestlimit
IP6_FRAG = -1           # "a fragment header": reassemble first (actors/ip_reass.py)


def ip6_nexthdr(m, cnt, first: bool = True):
    """Walk the extension-header chain (the pr_input loop of ip6_input).

    Returns (ulp, offset of its header from the IPv6 header) for UDP and
    ICMPv6, (IP6_FRAG, offset of the fragment header, offset of the next
    header field that names it) for a fragment, or a drop reason."""
    d = m.st.data
    o = m.off
    end = o + m.len
    nxt = d[o + 6]
    nxt_pos = o + 6
    p = o + 40
    nhdr = 0
    while True:
        if nxt == _UDP or nxt == _ICMPV6 or nxt == _TCP:
            m.l3hlen = p - o
            return nxt, p - o
        nhdr += 1
        if nhdr > HDRNESTLIMIT:
            return "ip6s_toomanyhdr"
        if nxt == IPPROTO_FRAGMENT:
            if p + 8 > end:
                return "ip6s_tooshort"
            return IP6_FRAG, p - o, nxt_pos - o
        if nxt in (IPPROTO_HOPOPTS, IPPROTO_ROUTING, IPPROTO_DSTOPTS):
            if nxt == IPPROTO_HOPOPTS and (p != o + 40 or not first):
                return "ip6s_badoptions"         # hop-by-hop must come first
            if p + 8 > end:
                return "ip6s_tooshort"
            hlen = (d[p + 1] + 1) << 3
            if p + hlen > end:
                return "ip6s_tooshort"
            if nxt == IPPROTO_ROUTING and d[p + 3]:  # segments left: we would forward
                return "ip6s_badoptions" if d[p + 2] == 0 else "ip6s_cantforward"
            nxt_pos = p
            nxt = d[p]
            p += hlen
            continue
        return "ip6s_noproto"
