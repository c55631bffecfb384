"""Internet checksum and address helpers shared by the protocol paths.

in_cksum (sys/netinet/in_cksum.c) is the ones'-complement sum of 16-bit
words.  Since 2**16 == 1 (mod 0xffff), that sum is congruent to the buffer
read as one big-endian integer, modulo 0xffff; Python's int.from_bytes does
the word loop in C.  A non-zero buffer never sums to 0 in ones'-complement
arithmetic, so a residue of 0 means 0xffff there.
"""

from __future__ import annotations

import ipaddress

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


def cksum_sum(data: bytes, initial: int = 0) -> int:
    """Ones'-complement sum (0..0xffff) of `data` (odd length padded) plus initial."""
    if len(data) & 1:
        data = data + b"\0"
    s = (_from(data, "big") + initial) % 0xFFFF
    if s == 0 and (initial or any(data)):
        return 0xFFFF
    return s


def in_cksum(data: bytes, initial: int = 0) -> int:
    """The checksum field value for `data` (checksum field zeroed in `data`)."""
    return ~cksum_sum(data, initial) & 0xFFFF


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
