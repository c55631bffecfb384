"""ether_input: link-layer input in one place (sys/net/if_ethersubr.c, if_vlan.c).

What this models - the "Link Layer Rationalization" of the 2006 meeting, in
the shape FreeBSD 7-13 gave ether_input_internal/ether_demux, with the LLC
half the meeting asked for:

  * a frame shorter than an Ethernet header is an input error (if_ierrors);
  * the destination MAC must be ours, broadcast (M_BCAST) or multicast
    (M_MCAST); a frame for another host is dropped (`ether_otherhost`: the
    NIC's filter would not pass it) unless the interface is promiscuous, when
    it is marked M_PROMISC and dropped in ether_demux (`ether_promisc`), or the
    interface accepts every destination (`rxfilter = "any"`, used to replay a
    capture as if every frame were for this host);
  * 802.1Q (0x8100) and 802.1ad (0x88a8) tags: VID 0 is a priority tag and
    the frame is handled as untagged; otherwise the tag is stripped into the
    mbuf's vlan field and the frame moves to the VLAN interface configured for
    that VID on the receiving interface (`vlan100 create vlan 100 vlandev ix0`;
    QinQ as a VLAN on a VLAN interface), or is dropped as `if_noproto` when
    there is none (IFCOUNTER_NOPROTO, as vlan_input counts it);
  * 802.3 length frames (type field <= 1500): the length must fit the frame
    (else `llc_badlen`); an LLC header with DSAP = SSAP = 0xAA, control UI and
    a SNAP header with OUI 00-00-00 (RFC 1042) or 00-00-F8 (802.1H) carries an
    ethertype and is demultiplexed like Ethernet II; any other LLC frame (STP,
    IPX, NetBIOS...) is dropped as `llc_unsupported`.  FreeBSD itself frees
    LLC frames silently; the meeting wanted this path in if_ethersubr.c;
  * the ethertype picks the netisr protocol (ip, ip6, arp); anything else is
    dropped as `ether_unknown_type` (FreeBSD frees those without a counter;
    we count every frame).

The raw link types of captures enter through `rawip_input` (IPv4/IPv6 with
no link header, picked by the version nibble) and `sll_input` (Linux cooked
capture v1 and v2: the protocol field is an ethertype).

Left out: bridging, lagg, carp, netgraph hooks, layer-2 pfil, IPX and
AppleTalk, hardware VLAN tagging (the tag is always in the frame here),
FCS trimming (captures carry none).
"""

from __future__ import annotations

from .inet import bslice
from .inet import ETHERTYPE_ARP, ETHERTYPE_IP, ETHERTYPE_IPV6, ETHERTYPE_QINQ, ETHERTYPE_VLAN
from .mbuf import M_BCAST, M_MCAST, M_PROMISC

ETHER_HDR_LEN = 14
_EHL = ETHER_HDR_LEN        # a C constant when compiled (no int boxed to compare)
BCAST = b"\xff" * 6
MAX_TAGS = 4                 # nested tags followed before giving up (if_noproto)

# netisr protocol numbers (sys/net/netisr.h)
NETISR_IP = 1
NETISR_ARP = 4
NETISR_ETHER = 5
NETISR_IPV6 = 6
_ET_IP = ETHERTYPE_IP
_ET_IP6 = ETHERTYPE_IPV6
_ET_VLAN = ETHERTYPE_VLAN        # (and these: the tag loop's tests)
_ET_QINQ = ETHERTYPE_QINQ
_MAX_TAGS = MAX_TAGS
ETHERTYPE_TO_ISR = {ETHERTYPE_IP: NETISR_IP, ETHERTYPE_IPV6: NETISR_IPV6,
                    ETHERTYPE_ARP: NETISR_ARP}
ISR_NAMES = {NETISR_IP: "ip", NETISR_ARP: "arp", NETISR_ETHER: "ether", NETISR_IPV6: "ip6"}
_SNAP_OUIS = (b"\x00\x00\x00", b"\x00\x00\xf8")


def vlan_table(vlans) -> dict:
    """The VLAN interfaces reached through a NIC, as ether_input looks
    them up: parent ifnet name -> a list of 4096 (one entry a VID) holding
    the VLAN interface's name or None (`vlans`: (parent, VID, name)s), so a
    tag costs one lookup by name and one list index, not a tuple's hash."""
    out = {}
    for parent, vid, name in vlans:
        tab = out.get(parent)
        if tab is None:
            tab = out[parent] = [None] * 4096
        tab[vid] = name
    return out


def _is_at(d: bytes, p: int, a: bytes) -> bool:
    """d[p:p + len(a)] == a, read in place: a MAC address (p + 6 within d)."""
    if len(a) != 6:
        return bslice(d, p, p + 6) == a
    for i in range(6):
        if d[p + i] != a[i]:
            return False
    return True


def ether_input(m, mac: bytes, promisc: bool = False, vlans: dict | None = None,
                accept_any: bool = False):
    """Return the netisr protocol for `m` (link headers stripped), or a drop reason.

    `vlans` maps a parent ifnet's name to its VLAN table (`vlan_table`):
    the name of the VLAN interface for each VID, or None."""
    d = m.st.data
    off = m.off
    n = m.len
    if n < _EHL:
        return "if_ierrors"
    if not _is_at(d, off, mac):              # the destination, read in place
        if _is_at(d, off, BCAST):
            m.flags |= M_BCAST
        elif d[off] & 1:
            m.flags |= M_MCAST
        elif accept_any:
            pass
        elif promisc:
            m.flags |= M_PROMISC
            return "ether_promisc"
        else:
            return "ether_otherhost"
    et = (d[off + 12] << 8) | d[off + 13]
    isrs = ETHERTYPE_TO_ISR
    # the common case: Ethernet II, untagged, IPv4 or IPv6 (compared as C
    # ints when compiled; the table below would box the type to look it up,
    # and a tag is not in it)
    if et == _ET_IP:
        isr = NETISR_IP
    elif et == _ET_IP6:
        isr = NETISR_IPV6
    elif et == _ET_VLAN or et == _ET_QINQ:
        isr = None
    else:
        isr = isrs.get(et)
    if isr is not None:
        m.off = off + _EHL                   # m_adj(m, ETHER_HDR_LEN)
        m.len = n - _EHL
        return isr
    p = off + 12                             # position of the type/length field
    end = off + n
    tags = 0
    while et == _ET_VLAN or et == _ET_QINQ:
        if p + 6 > end:
            return "if_ierrors"              # a tag cut short
        vid = ((d[p + 2] << 8) | d[p + 3]) & 0x0FFF
        if vid:
            tags += 1
            if tags > _MAX_TAGS or vlans is None:
                return "if_noproto"
            vt = vlans
            tab = vt.get(m.rcvif)
            if tab is None:
                return "if_noproto"
            name = tab[vid]                  # (a list of 4096: vid < 4096)
            if name is None:
                return "if_noproto"
            m.rcvif = name
            m.vlan = vid
        p += 4
        et = (d[p] << 8) | d[p + 1]
    if et <= 1500:                           # 802.3 length field: LLC follows
        length = et
        if p + 2 + length > end or length < 3:
            return "llc_badlen"
        llc = p + 2
        if (length >= 8 and d[llc] == 0xAA and d[llc + 1] == 0xAA and d[llc + 2] == 0x03
                and d[llc + 3:llc + 6] in _SNAP_OUIS):
            isr = isrs.get((d[llc + 6] << 8) | d[llc + 7])
            if isr is None:
                return "ether_unknown_type"
            m.off = llc + 8
            m.len = length - 8               # padding after the LLC payload is trimmed
            return isr
        return "llc_unsupported"
    isr = NETISR_IP if et == _ET_IP else NETISR_IPV6 if et == _ET_IP6 else isrs.get(et)
    if isr is None:
        return "ether_unknown_type"
    hdr = p + 2 - off
    m.off = off + hdr
    m.len = n - hdr
    return isr


def rawip_input(m):
    """A frame with no link header (LINKTYPE_RAW/IPV4/IPV6): the version picks."""
    if m.len < 1:
        return "if_ierrors"
    v = m.st.data[m.off] >> 4
    if v == 4:
        return NETISR_IP
    if v == 6:
        return NETISR_IPV6
    return "rawip_badvers"


def sll_input(m, v2: bool = False):
    """Linux cooked capture (SLL: 16-byte header; SLL2: 20 bytes)."""
    d = m.st.data
    o = m.off
    hl = 20 if v2 else 16
    if m.len < hl:
        return "if_ierrors"
    et = (d[o] << 8 | d[o + 1]) if v2 else (d[o + 14] << 8 | d[o + 15])
    isr = ETHERTYPE_TO_ISR.get(et)
    if isr is None:
        return "ether_unknown_type"
    m.off = o + hl
    m.len -= hl
    return isr
