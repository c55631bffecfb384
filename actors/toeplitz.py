# Models FreeBSD's receive-side-scaling (RSS) Toeplitz hash:
#   - sys/net/toeplitz.c toeplitz_hash(): the Toeplitz hash of the Microsoft
#     RSS specification.  A 32-bit window is loaded from key bytes 0-3; for
#     each input bit (MSB first) the window is XORed into the result if the
#     bit is set, then shifted left by one, pulling in the next key bit.
#   - sys/net/rss_config.c rss_key[]: FreeBSD's fixed 40-byte key, which is
#     the default Microsoft RSS key (never randomised; the net.inet.rss.key
#     sysctl is read-only).  Exposed here as RSS_KEY.
#   - sys/netinet/in_rss.c / sys/netinet6/in6_rss.c rss_hash_ip{4,6}_{2,4}tuple():
#     input is src addr, dst addr[, src port, dst port], all in network byte
#     order (8/12 bytes for IPv4, 32/36 bytes for IPv6).
#   - Hash-type policy (rss_gethashconfig() in sys/net/rss_config.c): TCP is
#     hashed on the 4-tuple, everything else on the 2-tuple.  In particular
#     FreeBSD hashes UDP on the 2-tuple by default, because the
#     RSS_HASHTYPE_RSS_UDP_IPV{4,6}[_EX] bits are #if 0'd out.  This module
#     only provides the hash functions; callers pick the tuple accordingly.
#
# Implementation: per key (cached) we precompute, for every input byte
# position, a 256-entry table of that byte value's 32-bit contribution, so a
# hash is an XOR of len(data) table lookups.  toeplitz_hash_bitwise() is the
# literal bit-by-bit algorithm, kept as a cross-check; toeplitz_hash_batch()
# is a numpy-vectorised form using the same tables.
#
# Left out:
#   - RSS_HASH_NAIVE (the other rss_hashalgo) and any other hash function.
#   - The indirection table / bucket / CPU mapping (rss_getbucket,
#     rss_hash2bucket, rss_getcpu, rss_bits) and mbuf M_HASHTYPE plumbing
#     (rss_mbuf_software_hash_v4, rss_proto_software_hash_v{4,6}).
#   - IPv6 extension-header (_EX) variants and any NIC-specific hardware
#     quirks; hardware is assumed to compute exactly this hash.
#   - Inputs longer than len(key) - 4 bytes: FreeBSD silently shifts zero bits
#     into the window past the key's end; we raise ValueError instead (with
#     the 40-byte key the limit is 36 bytes, i.e. the IPv6 4-tuple).
#
# This module must stay plain Python (+ numpy); it must never import ray.

from __future__ import annotations

import functools
from array import array

import numpy as np

__all__ = [
    "RSS_KEY",
    "toeplitz_hash",
    "toeplitz_hash_bitwise",
    "toeplitz_hash_batch",
    "flat_tables",
    "rss_hash_ip4_2tuple",
    "rss_hash_ip4_4tuple",
    "rss_hash_ip6_2tuple",
    "rss_hash_ip6_4tuple",
]

RSS_KEY: bytes = bytes(
    [
        0x6D, 0x5A, 0x56, 0xDA, 0x25, 0x5B, 0x0E, 0xC2,
        0x41, 0x67, 0x25, 0x3D, 0x43, 0xA3, 0x8F, 0xB0,
        0xD0, 0xCA, 0x2B, 0xCB, 0xAE, 0x7B, 0x30, 0xB4,
        0x77, 0xCB, 0x2D, 0xA3, 0x80, 0x30, 0xF2, 0x0C,
        0x6A, 0x42, 0xB7, 0x3B, 0xBE, 0xAC, 0x01, 0xFA,
    ]
)
assert len(RSS_KEY) == 40

_MASK32 = 0xFFFFFFFF


def _max_len(key: bytes) -> int:
    """Longest input (bytes) whose every bit has a full 32-bit key window."""
    return max(len(key) - 4, 0)


@functools.lru_cache(maxsize=16)
def _tables(key: bytes) -> tuple[tuple[int, ...], ...]:
    """Per byte position i, a 256-tuple: contribution of byte value v at i."""
    if len(key) < 4:
        raise ValueError("Toeplitz key must be at least 4 bytes")
    kbits = len(key) * 8
    kint = int.from_bytes(key, "big")
    tables = []
    for i in range(_max_len(key)):
        # Window for input bit k (MSB-first) is key bits k .. k+31.
        wins = [(kint >> (kbits - 32 - (8 * i + b))) & _MASK32 for b in range(8)]
        t = [0] * 256
        for v in range(1, 256):
            low = v & -v                      # lowest set bit of v
            b = 7 - (low.bit_length() - 1)    # its MSB-first bit index
            t[v] = t[v ^ low] ^ wins[b]
        tables.append(tuple(t))
    return tuple(tables)


@functools.lru_cache(maxsize=16)
def flat_tables(key: bytes = RSS_KEY) -> array:
    """The per-position tables in one int64 array, position i's 256 entries
    from i * 256: what a compiled caller reads in C (inet.toeplitz_at)."""
    return array("q", [v for t in _tables(key) for v in t])


@functools.lru_cache(maxsize=16)
def _np_tables(key: bytes) -> np.ndarray:
    return np.array(_tables(key), dtype=np.uint32).reshape(_max_len(key), 256)


def _too_long(n: int, key: bytes) -> ValueError:
    return ValueError(
        f"Toeplitz input of {n} bytes exceeds {_max_len(key)} bytes "
        f"supported by a {len(key)}-byte key"
    )


def toeplitz_hash(data: bytes, key: bytes = RSS_KEY) -> int:
    """32-bit Toeplitz hash of data (table-driven)."""
    tabs = _tables(key)
    if len(data) > len(tabs):
        raise _too_long(len(data), key)
    h = 0
    for t, v in zip(tabs, data):
        h ^= t[v]
    return h


def toeplitz_hash_bitwise(data: bytes, key: bytes = RSS_KEY) -> int:
    """Bit-by-bit reference, as in FreeBSD sys/net/toeplitz.c."""
    if len(key) < 4:
        raise ValueError("Toeplitz key must be at least 4 bytes")
    if len(data) > _max_len(key):
        raise _too_long(len(data), key)
    h = 0
    v = (key[0] << 24) | (key[1] << 16) | (key[2] << 8) | key[3]
    for i, byte in enumerate(data):
        kb = key[i + 4] if i + 4 < len(key) else 0
        for b in range(8):
            if byte & (1 << (7 - b)):
                h ^= v
            v = (v << 1) & _MASK32
            if kb & (1 << (7 - b)):
                v |= 1
    return h


def toeplitz_hash_batch(inputs: np.ndarray, key: bytes = RSS_KEY) -> np.ndarray:
    """Hash each row of an (N, L) uint8 array; returns (N,) uint32."""
    arr = np.asarray(inputs)
    if arr.ndim != 2:
        raise ValueError(f"expected a 2-D (N, L) array, got shape {arr.shape}")
    if arr.dtype != np.uint8:
        raise ValueError(f"expected dtype uint8, got {arr.dtype}")
    n, length = arr.shape
    tab = _np_tables(key)
    if length > tab.shape[0]:
        raise _too_long(length, key)
    if length == 0:
        return np.zeros(n, dtype=np.uint32)
    contrib = tab[np.arange(length), arr]          # (N, L) uint32
    return np.bitwise_xor.reduce(contrib, axis=1).astype(np.uint32, copy=False)


# --- FreeBSD in_rss.c / in6_rss.c helpers (default key) ---------------------

_T = _tables(RSS_KEY)
(_T0, _T1, _T2, _T3, _T4, _T5, _T6, _T7, _T8, _T9, _T10, _T11) = _T[:12]
_T32, _T33, _T34, _T35 = _T[32:36]


def _check_port(p: int) -> None:
    if not 0 <= p <= 0xFFFF:
        raise ValueError(f"port {p!r} out of range 0..65535")


def rss_hash_ip4_2tuple(src: bytes, dst: bytes) -> int:
    """Hash of src addr || dst addr (4-byte network-order addresses)."""
    s0, s1, s2, s3 = src
    d0, d1, d2, d3 = dst
    return (_T0[s0] ^ _T1[s1] ^ _T2[s2] ^ _T3[s3]
            ^ _T4[d0] ^ _T5[d1] ^ _T6[d2] ^ _T7[d3])


def rss_hash_ip4_4tuple(src: bytes, dst: bytes, sport: int, dport: int) -> int:
    """Hash of src addr || dst addr || sport || dport (network order)."""
    s0, s1, s2, s3 = src
    d0, d1, d2, d3 = dst
    if not (0 <= sport <= 0xFFFF and 0 <= dport <= 0xFFFF):
        _check_port(sport)
        _check_port(dport)
    return (_T0[s0] ^ _T1[s1] ^ _T2[s2] ^ _T3[s3]
            ^ _T4[d0] ^ _T5[d1] ^ _T6[d2] ^ _T7[d3]
            ^ _T8[sport >> 8] ^ _T9[sport & 0xFF]
            ^ _T10[dport >> 8] ^ _T11[dport & 0xFF])


def rss_hash_ip6_2tuple(src: bytes, dst: bytes) -> int:
    """Hash of src addr || dst addr (16-byte network-order addresses)."""
    if len(src) != 16 or len(dst) != 16:
        raise ValueError("IPv6 addresses must be 16 bytes")
    h = 0
    for t, v in zip(_T, src + dst):
        h ^= t[v]
    return h


def rss_hash_ip6_4tuple(src: bytes, dst: bytes, sport: int, dport: int) -> int:
    """Hash of src addr || dst addr || sport || dport (network order)."""
    _check_port(sport)
    _check_port(dport)
    return (rss_hash_ip6_2tuple(src, dst)
            ^ _T32[sport >> 8] ^ _T33[sport & 0xFF]
            ^ _T34[dport >> 8] ^ _T35[dport & 0xFF])
