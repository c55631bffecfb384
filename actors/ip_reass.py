"""ip_reass and frag6_input: IPv4 and IPv6 fragment reassembly
(sys/netinet/ip_reass.c, sys/netinet6/frag6.c).

What this models.

IPv4 (ip_reass): queues keyed by (src, dst, id, protocol).  A fragment with
no data, or with MF set and a length that is not a multiple of 8, is
`ips_toosmall` (and counted in ips_fragdropped); otherwise ips_fragments.
Overlaps are trimmed as FreeBSD trims them: the part a predecessor already
holds is cut from the newcomer (which is dropped whole if covered), and the
newcomer overrides the successors it overlaps (those fully covered are
freed, ips_fragdropped).  A datagram is complete when the fragments are
contiguous from offset 0 and the last has MF clear; longer than 65535 bytes
is `ips_toolong` (every fragment ips_fragdropped).  More than
`maxfragsperpacket` (16) fragments drops the whole queue (ips_fragdropped).
Queues live for `fragttl` (30 s); an expired queue's fragments are
ips_fragtimeout, and so are those of the oldest queue evicted when
`maxfragpackets` queues exist (nmbclusters / 32 = 800 in 2006).

IPv6 (frag6_input, modern RFC 8200 rules): queues keyed by (src, dst, id);
an atomic fragment (offset 0, M clear) is handled at once (ip6s_atomicfrags);
M set with a length that is not a multiple of 8 is a parameter problem
(`ip6s_badfrag`, not counted in ip6s_fragments); otherwise ip6s_fragments.
An overlap that is not an exact duplicate drops the newcomer and the whole
queue (ip6s_fragdropped); an exact duplicate is dropped alone.  Complete as
for IPv4, longer than 65535 -> `ip6s_toolong`; queues live 60 s
(ip6s_fragtimeout); at most `maxfragsperpacket` (64) fragments.

The reassembled datagram is a new mbuf holding the first fragment's link
header and IP header (IPv4: ip_len set, offset and MF cleared, header
checksum recomputed; IPv6: payload length set, the fragment header removed)
and the data of all fragments; the fragments' mbufs are freed, the datagram
going on for all of them (`absorbed` counts the fragments a datagram took
in, so that every frame stays accounted for).  Reassembly state is kept per
netisr workstream: the fragments of one datagram share its IP 2-tuple, so
the RSS hash and the flow and source policies send them all to the same one.

Left out: ECN mixing rules, ICMP time-exceeded on expiry, IPv6 jumbograms,
per-bucket limits (`maxfragbucketsize`), the drain on mbuf shortage.
"""

from __future__ import annotations

from .counter import IP6S_REASSEMBLED, IPS_REASSEMBLED
from .inet import frozen, hdr_cksum
from .mbuf import m_alloc

IPV4_FRAGTTL_NS = 30 * 10**9
IPV6_FRAGTTL_NS = 60 * 10**9


class FragQueue:
    __slots__ = ("frags", "created", "total", "first")

    def __init__(self, now: int):
        self.frags = []         # [off, end, mbuf, data bytes] sorted by off
        self.created = now
        self.total = -1         # datagram length once the last fragment is in (-1: not yet)
        self.first = None       # (link+IP header bytes up to the payload) of offset 0


class Reass:
    """The reassembly queues of one workstream, for one family."""

    def __init__(self, v6: bool, maxpackets: int, maxfrags: int, ttl_ns: int):
        self.v6 = v6
        self.p = "ip6s_" if v6 else "ips_"
        self.dropped = self.p + "fragdropped"
        self.i_done = IP6S_REASSEMBLED if v6 else IPS_REASSEMBLED   # its counter's index
        self.maxpackets = maxpackets
        self.maxfrags = maxfrags
        self.ttl = ttl_ns
        self.q = {}             # key -> FragQueue (dict order = creation order)

    def holding(self) -> int:
        return sum(len(q.frags) for q in self.q.values())

    def _drop_queue(self, key, reason: str, cnt, end_fn) -> None:
        q = self.q.pop(key)
        for f in q.frags:
            cnt[self.p + reason] += 1
            end_fn(f[2], self.p + reason)

    def expire(self, now: int, cnt, end_fn) -> None:
        """Free queues older than the TTL (ip_slowtimo / frag6_slowtimo)."""
        old = [k for k, q in self.q.items() if now - q.created >= self.ttl]
        for k in old:
            self._drop_queue(k, "fragtimeout", cnt, end_fn)

    def _fragdropped(self, m, cnt, end_fn) -> None:
        cnt[self.dropped] += 1
        end_fn(m, self.dropped)

    def input(self, m, key, off: int, mf: bool, hdr, data: bytes, now: int, cnt, end_fn):
        """Add a fragment (`hdr`: what the caller needs of the first fragment).
        Returns (payload, fragments, first fragment's hdr) when the datagram
        is complete - the caller checks its length and builds it - else None
        (the fragment is queued, or dropped: `end_fn(m, reason)` ends the way
        of every mbuf dropped here)."""
        qs = self.q
        q = qs.get(key)
        if q is None:
            if len(qs) >= self.maxpackets:              # evict the oldest queue
                self._drop_queue(next(iter(qs)), "fragtimeout", cnt, end_fn)
            q = FragQueue(now)
            qs[key] = q
        end = off + len(data)
        frags = q.frags
        n = len(frags)
        # where the newcomer goes
        i = 0
        while i < n:
            f = frags[i]
            fo = f[0]
            if fo >= off:
                break
            i += 1
        if self.v6:
            for f in frags:
                fo = f[0]
                fe = f[1]
                if fo < end and off < fe:                # overlap
                    exact = fo == off and fe == end and f[3] == data
                    self._fragdropped(m, cnt, end_fn)
                    if not exact:
                        self._drop_queue(key, "fragdropped", cnt, end_fn)
                    return None
        else:
            if i > 0:
                fe = frags[i - 1][1]
                if fe > off:                             # predecessor wins
                    cut = fe - off
                    if cut >= len(data):
                        self._fragdropped(m, cnt, end_fn)
                        return None
                    data = data[cut:]
                    off += cut
            while i < len(frags):                        # newcomer overrides successors
                f = frags[i]
                fo = f[0]
                if fo >= end:
                    break
                fe = f[1]
                if fe <= end:
                    frags.pop(i)
                    self._fragdropped(f[2], cnt, end_fn)
                else:
                    f[3] = f[3][end - fo:]
                    f[0] = end
                    break
        frags.insert(i, [off, end, m, data])
        if off == 0:
            q.first = hdr
        if not mf:
            q.total = end
        if len(frags) > self.maxfrags and (q.total < 0 or not _complete(q)):
            self._drop_queue(key, "fragdropped", cnt, end_fn)
            return None
        if q.total < 0 or q.first is None or not _complete(q):
            return None
        del qs[key]
        cnt.v[self.i_done] += 1
        return b"".join([f[3] for f in frags]), frags, q.first


def _complete(q: FragQueue) -> bool:
    """Are the fragments contiguous from 0 to the datagram's length?"""
    at = 0
    for f in q.frags:
        fo = f[0]
        if fo > at:
            return False
        fe = f[1]
        if fe > at:
            at = fe
    return at >= q.total


def rebuild_v4(first: bytes, l2: int, hl: int, payload: bytes, uma):
    """The reassembled IPv4 datagram: link header + IP header (fixed) + data."""
    total = hl + len(payload)
    buf = bytearray(first[:l2 + hl])
    buf[l2 + 2] = total >> 8
    buf[l2 + 3] = total & 0xFF
    buf[l2 + 6] = 0
    buf[l2 + 7] = 0
    buf[l2 + 10] = 0
    buf[l2 + 11] = 0
    c = hdr_cksum(frozen(buf), l2, l2 + hl)
    buf[l2 + 10] = c >> 8
    buf[l2 + 11] = c & 0xFF
    buf += payload
    m = m_alloc(uma, frozen(buf))
    m.off = l2
    m.len = total
    return m


def rebuild_v6(first: bytes, l2: int, unfrag: int, payload: bytes, uma):
    """The reassembled IPv6 datagram: link header and unfragmentable part of
    the first fragment (whose chain already names the fragment header's next
    header in its place), payload length set, then the data."""
    buf = bytearray(first[:l2 + unfrag])
    plen = unfrag - 40 + len(payload)
    buf[l2 + 4] = (plen >> 8) & 0xFF
    buf[l2 + 5] = plen & 0xFF
    buf += payload
    m = m_alloc(uma, frozen(buf))
    m.off = l2
    m.len = unfrag + len(payload)
    return m
