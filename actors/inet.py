"""Internet checksum and address helpers shared by the protocol paths.

in_cksum (sys/netinet/in_cksum.c) is the ones'-complement sum of 16-bit
words.  Since 2**16 == 1 (mod 0xffff), that sum is congruent to the buffer
read as one big-endian integer, modulo 0xffff; Python's int.from_bytes does
the word loop in C.  A non-zero buffer never sums to 0 in ones'-complement
arithmetic, so a residue of 0 means 0xffff there.
"""

from __future__ import annotations

import ipaddress
import sys

IPPROTO_ICMP = 1
IPPROTO_TCP = 6
IPPROTO_UDP = 17
IPPROTO_ICMPV6 = 58
ETHERTYPE_IP = 0x0800
ETHERTYPE_ARP = 0x0806
ETHERTYPE_VLAN = 0x8100
ETHERTYPE_IPV6 = 0x86DD
ETHERTYPE_QINQ = 0x88A8

_from = int.from_bytes

_LITTLE = sys.byteorder == "little"

try:                        # compiled (actors/_core.py): word_sum loops in C
    import cython
    COMPILED = cython.compiled
except ImportError:         # plain Python without Cython installed
    COMPILED = False
_FAST8 = COMPILED and _LITTLE   # word_sum's 8-byte loads (C constants when compiled)
_SOURCE = not COMPILED
_TZ_MEMO = {}       # toeplitz_at's terms from source: id(table) -> (table, {(bytes, pos): terms})
_LO32 = 0xFFFFFFFF


def cksum_sum(data: bytes, initial: int = 0) -> int:
    """Ones'-complement sum (0..0xffff) of `data` (odd length padded) plus initial."""
    if len(data) & 1:
        data = data + b"\0"
    s = (_from(data, "big") + initial) % 0xFFFF
    if s == 0 and (initial or any(data)):
        return 0xFFFF
    return s


def word_sum(data: bytes, start: int, end: int) -> int:
    """The 16-bit big-endian words of data[start:end] (an odd last byte
    padded with zero) summed, modulo 0xffff: the residue a checksum test
    needs.  From source, int.from_bytes of the slice does the loop;
    compiled, a C loop over the bytes in place does (same residue)."""
    n = len(data)
    if end > n:
        end = n
    if start < 0:
        start = 0
    if start >= end:
        return 0
    if COMPILED and type(data) is bytes:
        return _word_sum_c(data, start, end) % 0xFFFF
    if (end - start) & 1:
        return (_from(data[start:end], "big") << 8) % 0xFFFF
    return _from(data[start:end], "big") % 0xFFFF


def _word_sum_c(data: bytes, start: int, end: int) -> int:
    # the loop compiled code runs (typed in inet.pxd); 0 <= start < end <= len(data).
    # Compiled on a little-endian machine it takes 8 bytes a step: one load
    # (_le8, inet.pxd) is four byte-swapped words, and 2**32 = 1 (mod 0xffff),
    # so its two halves add up to their sum's residue; the byte-swapped
    # words' sum times 256 is the words' sum (mod 0xffff, RFC 1071 2.(B)).
    p = data
    s = 0
    i = start
    if _FAST8:
        t = 0
        while i + 8 <= end:
            x = _le8(p + i)
            t += (x >> 32) + (x & _LO32)
            i += 8
        s = (t % 0xFFFF) << 8
    while i + 1 < end:
        s += (p[i] << 8) | p[i + 1]
        i += 2
    if i < end:
        s += p[i] << 8
    return s


def bslice(data: bytes, start: int, end: int) -> bytes:
    """data[start:end], for 0 <= start, as Python slices it (end clamped to
    the data; empty when start >= end, so also for a negative end, which is
    never counted from the tail).  Compiled, one copy out of the
    bytes in place: no slice object and no boxed indices, which a slice of
    a typed bytes object costs in Cython (PySequence_GetSlice)."""
    if start < 0:
        raise ValueError("bslice: negative start")
    n = len(data)
    if end > n:
        end = n
    if start >= end:
        return b""
    p = data
    return p[start:end]


def toeplitz_at(tab, data: bytes, start: int, n: int, pos: int) -> int:
    """The Toeplitz hash's terms for the n bytes of data from `start`, taken
    as the hash input's bytes pos .. pos + n - 1: the XOR of their entries in
    `tab` (toeplitz.flat_tables: 256 a position).  The XOR of the terms of an
    input's parts is the hash of the whole (actors/toeplitz.py), read from a
    frame in place: no key bytes made."""
    if start < 0 or n < 0 or start + n > len(data):
        raise IndexError("toeplitz_at: bytes outside the data")
    if _SOURCE:                 # from source the loop is slow: the terms of bytes
        ent = _TZ_MEMO.get(id(tab))     # seen before are kept, per table (held, so
        if ent is None or ent[0] is not tab:    # that its id is not reused)
            ent = _TZ_MEMO[id(tab)] = (tab, {})
        memo = ent[1]
        key = (data[start:start + n], pos)
        hm = memo.get(key)
        if hm is not None:
            return hm
    p = data
    h = 0
    for i in range(n):
        h ^= tab[(pos + i) * 256 + p[start + i]]
    if _SOURCE:
        if len(memo) > 65536:
            memo.clear()
        memo[key] = h
    return h


def frozen(buf: bytearray) -> bytes:
    """bytes(buf).  Compiled, one copy straight out of the bytearray (no
    call of the bytes type, which looks for a buffer, a __bytes__ and more)."""
    if COMPILED:
        p = buf
        return p[:len(buf)]
    return bytes(buf)


def in_cksum(data: bytes, initial: int = 0) -> int:
    """The checksum field value for `data` (checksum field zeroed in `data`)."""
    return ~cksum_sum(data, initial) & 0xFFFF


def hdr_cksum(d: bytes, start: int, end: int) -> int:
    """in_cksum of d[start:end] (its checksum field zeroed), for a header
    that is not all zero (an IP header never is): the sum's residue 0 is
    then 0xffff in ones' complement, whose complement is 0."""
    s = word_sum(d, start, end)
    return 0 if s == 0 else 0xFFFF - s


def cksum_ok(d: bytes, start: int, end: int, initial=0) -> bool:
    """Does d[start:end] plus `initial` (a pseudo-header sum, unfolded) sum
    to 0xffff in ones' complement - a checksum that verifies - as
    cksum_sum(d[start:end], initial) == 0xffff says, without the slice: the
    residue is 0, and the sum is not truly zero."""
    if (word_sum(d, start, end) + initial) % 0xFFFF != 0:
        return False
    return initial != 0 or any(d[start:end])


def pseudo_sum(d: bytes, ip_off: int, v6: bool, proto: int, length: int) -> int:
    """Partial sum (not folded) of the IPv4/IPv6 pseudo header of the IP
    header at d[ip_off:], for upper-layer `proto` and `length` bytes."""
    if v6:
        return _from(d[ip_off + 8:ip_off + 40], "big") + proto + length
    return _from(d[ip_off + 12:ip_off + 20], "big") + proto + length


def ip4(addr: str) -> bytes:
    return ipaddress.IPv4Address(addr).packed


def ip6(addr: str) -> bytes:
    return ipaddress.IPv6Address(addr).packed


def mac(addr: str) -> bytes:
    parts = addr.split(":")
    if len(parts) != 6 or not all(len(p) in (1, 2) and all(c in "0123456789abcdefABCDEF" for c in p)
                                  for p in parts):
        raise ValueError(f"bad MAC address {addr!r}")
    return bytes(int(p, 16) for p in parts)
