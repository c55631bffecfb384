"""ip_input: IPv4 input (sys/netinet/ip_input.c), the checks in FreeBSD's order.

What this models, per packet (data starting at the IP header):
ips_total; shorter than a header -> ips_tooshort; version -> ips_badvers;
header length < 20 or past the data -> ips_badhlen; header checksum (trusting
CSUM_IP_CHECKED/CSUM_IP_VALID from the NIC, else computed) -> ips_badsum;
ip_len < hl -> ips_badlen; data shorter than ip_len -> ips_tooshort, longer
-> trimmed; 127/8 from a non-loopback ifnet -> ips_badaddr; not for one of
the vnet's addresses (or broadcast) with forwarding off -> ips_cantforward;
then ips_delivered and the protocol switch (UDP and ICMP onward; anything else,
until its path exists, -> ips_noproto with ips_delivered undone, as rip_input
does; TCP counts tcps_rcvtotal and is dropped as `tcps_noport`).

Fragments go to ip_reass (actors/ip_reass.py, run by the netisr that owns the
reassembly queues) before ips_delivered.

Options (ip_dooptions): malformed -> ips_badoptions; source routes refused
(ips_cantforward).

What it leaves out: filling in record-route and timestamp options, ICMP
errors, pfil/ipfw, forwarding (net.inet.ip.forwarding must be 0, so there is
no TTL decrement), multicast membership, raw sockets.
"""

from __future__ import annotations

from .inet import IPPROTO_ICMP, IPPROTO_TCP, IPPROTO_UDP, cksum_ok
from .counter import IPS_DELIVERED, IPS_TOTAL
from .mbuf import CSUM_IP_CHECKED, CSUM_IP_VALID, m_adj

_IP_CHECKED = CSUM_IP_CHECKED     # C constants when compiled (no int boxed to test)
_IP_VALID = CSUM_IP_VALID

_from = int.from_bytes
IP_FRAG = -1        # "a fragment": reassemble first



def ip_input(m, vnets: dict, cnt):
    """Return (ulp, l4 offset from m.off) for a packet that is ours, else a drop reason."""
    cnt.v[IPS_TOTAL] += 1
    d = m.st.data
    o = m.off
    n = m.len
    if n < 20:
        return "ips_tooshort"
    b0 = d[o]
    if b0 >> 4 != 4:
        return "ips_badvers"
    hl = (b0 & 15) << 2
    if hl < 20 or hl > n:
        return "ips_badhlen"
    fl = m.csum_flags
    if fl & _IP_CHECKED:
        if not fl & _IP_VALID:
            return "ips_badsum"
    elif not cksum_ok(d, o, o + hl):
        return "ips_badsum"
    iplen = (d[o + 2] << 8) | d[o + 3]
    if iplen < hl:
        return "ips_badlen"
    if n < iplen:
        return "ips_tooshort"
    if n > iplen:
        m_adj(m, iplen - n)
    if (d[o + 12] == 127 or d[o + 16] == 127) and m.rcvif != "lo0":
        return "ips_badaddr"
    if hl > 20:
        r = ip_dooptions(d, o, hl, cnt)
        if r is not None:
            return r
    # the destination as one integer (vnets' "inet4"), read in place; its
    # first byte widened before the 24-bit shift (compiled, a byte shifts
    # as a C int, and 24 bits would reach its sign)
    dst = d[o + 16]
    dst = (dst << 24) | (d[o + 17] << 16) | (d[o + 18] << 8) | d[o + 19]
    v = vnets.get(m.vnet)
    if v is None or (dst not in v["inet4"] and dst != 0xFFFFFFFF and not v["any"]):
        return "ips_cantforward"
    if ((d[o + 6] << 8) | d[o + 7]) & 0x3FFF:
        return IP_FRAG, hl                   # to ip_reass (actors/ip_reass.py)
    return ip_deliver(m, hl, cnt)


IPOPT_EOL, IPOPT_NOP, IPOPT_LSRR, IPOPT_SSRR = 0, 1, 131, 137


def ip_dooptions(d: bytes, o: int, hl: int, cnt):
    """Walk the options (ip_dooptions): each must fit the header with a length
    of at least 2, else ips_badoptions (FreeBSD also sends an ICMP parameter
    problem); a loose or strict source route is refused as ips_cantforward,
    net.inet.ip.sourceroute and accept_sourceroute being 0 by default.  Record
    route and timestamp options are checked for fit but not filled in."""
    p = o + 20
    end = o + hl
    while p < end:
        opt = d[p]
        if opt == IPOPT_EOL:
            break
        if opt == IPOPT_NOP:
            p += 1
            continue
        if p + 1 >= end or d[p + 1] < 2 or p + d[p + 1] > end:
            cnt["ips_badoptions"] += 1
            return "ips_badoptions"
        if opt == IPOPT_LSRR or opt == IPOPT_SSRR:
            cnt["ips_cantforward"] += 1
            return "ips_cantforward"
        p += d[p + 1]
    return None


def ip_deliver(m, hl: int, cnt):
    """ips_delivered and the protocol switch (ip_protox), for a whole datagram."""
    proto = m.st.data[m.off + 9]
    m.l3hlen = hl
    if proto == IPPROTO_UDP:
        cnt.v[IPS_DELIVERED] += 1
        return proto, hl
    if proto == IPPROTO_ICMP:
        cnt.v[IPS_DELIVERED] += 1
        return proto, hl
    if proto == IPPROTO_TCP:
        cnt.v[IPS_DELIVERED] += 1
        return proto, hl
    return "ips_noproto"
