"""ether_input: Ethernet input and demultiplexing (sys/net/if_ethersubr.c).

What this models: ether_input / ether_input_internal / ether_demux for an
Ethernet II frame received on an ifnet: a frame shorter than a header is an
input error (if_ierrors); the destination MAC must be ours, broadcast or
multicast (M_BCAST / M_MCAST), else it is dropped as for another host unless
the interface is promiscuous; the ethertype picks the netisr protocol (ip,
ip6, arp); the header is stripped (m_adj) and the packet is dispatched.

What it leaves out (until the link-layer work item): 802.1Q / QinQ tags and
VLAN interfaces, 802.3 length frames with LLC/SNAP.  FreeBSD frees frames of
an unknown ethertype without counting them; netcabal counts them under
`ether_unknown_type` so that every frame is accounted for.
"""

from __future__ import annotations

from .inet import ETHERTYPE_ARP, ETHERTYPE_IP, ETHERTYPE_IPV6
from .mbuf import M_BCAST, M_MCAST, M_PROMISC

ETHER_HDR_LEN = 14
BCAST = b"\xff" * 6

# netisr protocol numbers (sys/net/netisr.h)
NETISR_IP = 1
NETISR_ARP = 4
NETISR_ETHER = 5
NETISR_IPV6 = 6
ETHERTYPE_TO_ISR = {ETHERTYPE_IP: NETISR_IP, ETHERTYPE_IPV6: NETISR_IPV6,
                    ETHERTYPE_ARP: NETISR_ARP}
ISR_NAMES = {NETISR_IP: "ip", NETISR_ARP: "arp", NETISR_ETHER: "ether", NETISR_IPV6: "ip6"}


def ether_input(m, mac: bytes, promisc: bool = False):
    """Return the netisr protocol for `m` (header stripped), or a drop reason str."""
    d = m.st.data
    off = m.off
    if m.len < ETHER_HDR_LEN:
        return "if_ierrors"
    dst = d[off:off + 6]
    if dst != mac:
        if dst == BCAST:
            m.flags |= M_BCAST
        elif d[off] & 1:
            m.flags |= M_MCAST
        elif promisc:
            m.flags |= M_PROMISC
            return "ether_promisc"
        else:
            return "ether_otherhost"
    isr = ETHERTYPE_TO_ISR.get((d[off + 12] << 8) | d[off + 13])
    if isr is None:
        return "ether_unknown_type"
    m.off = off + ETHER_HDR_LEN       # m_adj(m, ETHER_HDR_LEN)
    m.len -= ETHER_HDR_LEN
    return isr
