"""udp_input: the header half of UDP input (sys/netinet/udp_usrreq.c, udp6_usrreq.c).

What this models (it runs in the thread that called ip_input): udps_ipackets;
fewer than 8 bytes -> udps_hdrops; uh_ulen larger than the IP payload or
below 8 -> udps_badlen, smaller -> trimmed; destination port 0 -> dropped
(FreeBSD drops it without a counter; we count `udp_dport0`); the checksum:
trusted if the NIC set CSUM_DATA_VALID|CSUM_PSEUDO_HDR, else computed over
the pseudo header -> udps_badsum; uh_sum 0 -> udps_nosum, accepted on IPv4
and dropped on IPv6 (udp6_input requires a checksum).

The other half - in_pcblookup and udp_append, under the pcbinfo lock, with
udps_noport and udps_fullsock - runs against the vnet's state (actors/vnet.py).
"""

from __future__ import annotations

from .inet import IPPROTO_TCP, IPPROTO_UDP, cksum_ok, pseudo_sum
from .counter import TCPS_RCVTOTAL, UDPS_IPACKETS
from .mbuf import CSUM_DATA_VALID, CSUM_PSEUDO_HDR, m_adj

_VALID = CSUM_DATA_VALID | CSUM_PSEUDO_HDR



def udp_input_hdr(m, off: int, v6: bool, cnt):
    """Check the UDP header at m.off + off; None if good, else a drop reason."""
    cnt.v[UDPS_IPACKETS] += 1
    d = m.st.data
    o = m.off
    u = o + off
    avail = m.len - off
    if avail < 8:
        return "udps_hdrops"
    ulen = (d[u + 4] << 8) | d[u + 5]
    if ulen > avail or ulen < 8:
        return "udps_badlen"
    if ulen < avail:
        m_adj(m, ulen - avail)
    if d[u + 2] == 0 and d[u + 3] == 0:
        return "udp_dport0"
    if d[u + 6] == 0 and d[u + 7] == 0:
        cnt["udps_nosum"] += 1
        return "udps_nosum" if v6 else None
    fl = m.csum_flags                   # (a C int when compiled)
    if (fl & _VALID) == _VALID:
        return None
    ps = pseudo_sum(d, o, v6, IPPROTO_UDP, ulen)
    if not cksum_ok(d, u, u + ulen, ps):
        return "udps_badsum"
    return None


def tcp_input_hdr(m, off: int, v6: bool, cnt):
    """The checks tcp_input makes before it looks for a connection
    (sys/netinet/tcp_input.c): tcps_rcvtotal; shorter than a TCP header ->
    tcps_rcvshort; the checksum (trusting CSUM_DATA_VALID|CSUM_PSEUDO_HDR) ->
    tcps_rcvbadsum; a data offset below 20 or past the segment ->
    tcps_rcvbadoff.  Returns a drop reason, or None for a good segment (it
    goes on to the vnet: actors/tcp_input.py)."""
    cnt.v[TCPS_RCVTOTAL] += 1
    d = m.st.data
    o = m.off
    t = o + off
    n = m.len - off
    if n < 20:
        return "tcps_rcvshort"
    fl = m.csum_flags
    if (fl & _VALID) != _VALID:
        ps = pseudo_sum(d, o, v6, IPPROTO_TCP, n)
        if not cksum_ok(d, t, t + n, ps):
            return "tcps_rcvbadsum"
    doff = (d[t + 12] >> 4) << 2
    if doff < 20 or doff > n:
        return "tcps_rcvbadoff"
    return None
