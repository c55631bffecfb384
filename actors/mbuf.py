"""mbufs: packet bytes, a packet header, and external storage shared by copies.

What this models (mbuf(9), sys/sys/mbuf.h, sys/kern/kern_mbuf.c, uipc_mbuf.c):

  * One `Mbuf` is one packet (an m_pkthdr chain head; chains of several mbufs
    are not modelled: the data always sits in one contiguous storage, and
    `m_adj`/`m_pullup` become offset arithmetic on it).
  * Its storage is a `Storage` object: the bytes, the UMA zone(s) they came
    from, and a reference count.  Storage of a packet that fits in MHLEN
    (168 bytes, modern amd64) is "inline" (zone `mbuf`, no M_EXT); larger
    packets get a cluster: a `mbuf_packet` item (mbuf + 2k cluster from the
    packet zone, as m_getcl does), or an mbuf plus a page / 9k / 16k jumbo
    cluster (m_getjcl).
  * `m_copypacket` shares the cluster and bumps its count (mb_dupcl); data
    held inline is copied, as FreeBSD copies data in plain mbufs.  `m_dup`
    deep-copies.  Shared storage is read-only (M_WRITABLE is false).
  * Freeing follows the modern scheme (FreeBSD 11+, EXT_FLAG_EMBREF): a copy's
    own mbuf returns to zone `mbuf` at once; the storage, and the owner mbuf
    that embeds its count, return to their zone(s) only when the last
    reference goes.
  * Where FreeBSD without INVARIANTS would silently corrupt memory, we raise:
    `DoubleFree` for a second m_freem, `UseAfterFree` for touching a freed
    mbuf.  That is what makes reference-count bugs in the model visible.
  * `Uma` counts allocations and frees per zone for one thread/actor; runs
    sum them (USED = allocs - frees, as libmemstat computes it).  Bucket
    caches, keg limits and the mbuf.leak secondary-zone behaviour are left
    to the UMA model (actors/uma.py, a later work item).

The wire codec (`encode_batch` / `decode_batch`) moves a batch of mbufs
between actors with msgpack.  It round-trips every header field exactly and
keeps sharing: storage referenced by several mbufs of the batch is sent once.
Storage whose references are not all inside the batch cannot move (the other
holder would be left with a dangling count); the encoder refuses it.

Two wire forms.  The common batch (every storage held once, the integer
fields in int64 and the names plain strings: every batch the model makes)
goes packed: one little-endian int64 row per mbuf (`_ROW`), the names (ifnet,
vnet, zones) once each in a table the rows index, the data as a list of
byte strings, tags only for the mbufs that carry some.  Anything else (shared
storage, a 64-bit unsigned value, a field of another type) goes as rows of
msgpack values, which hold whatever msgpack holds.  Both decode to the same
mbufs; the packed form is about three times faster each way.
"""

from __future__ import annotations

import operator
import struct
import sys
from array import array

import msgpack

try:                        # compiled (actors/_core.py): INT64_FIELDS are C int64
    import cython
    COMPILED = cython.compiled
except ImportError:         # plain Python without Cython installed
    COMPILED = False

# sys/sys/param.h and mbuf.h, modern amd64.
MSIZE = 256
MHLEN = 168
MCLBYTES = 2048
_MHLEN = MHLEN                  # (C constants when compiled: m_alloc's test boxes no int)
_MCLBYTES = MCLBYTES
MJUMPAGESIZE = 4096
MJUM9BYTES = 9216
MJUM16BYTES = 16384

Z_MBUF = "mbuf"
Z_PACKET = "mbuf_packet"
Z_CLUSTER = "mbuf_cluster"
Z_JUMBOP = "mbuf_jumbo_page"
Z_JUMBO9 = "mbuf_jumbo_9k"
Z_JUMBO16 = "mbuf_jumbo_16k"
ZONES = (Z_MBUF, Z_PACKET, Z_CLUSTER, Z_JUMBOP, Z_JUMBO9, Z_JUMBO16)
ZONE_INDEX = {z: i for i, z in enumerate(ZONES)}    # a zone's counters in Uma's arrays
_IX_MBUF = 0
_IX_PACKET = 1
ZONE_SIZE = {Z_MBUF: MSIZE, Z_PACKET: MSIZE + MCLBYTES, Z_CLUSTER: MCLBYTES,
             Z_JUMBOP: MJUMPAGESIZE, Z_JUMBO9: MJUM9BYTES, Z_JUMBO16: MJUM16BYTES}

# m_flags (modern values)
M_EXT = 0x1
M_PKTHDR = 0x2
M_RDONLY = 0x8
M_BCAST = 0x10
M_MCAST = 0x20
M_PROMISC = 0x40
M_VLANTAG = 0x80
# netcabal's own (FreeBSD's M_PROTO bits are per protocol): this packet's
# enqueue woke a workstream that preempted its sender (actors/app.py)
M_PREEMPT = 0x100000
# netcabal's own bit: this mbuf is a copy sharing another's storage (its own
# mbuf is freed at once; the storage goes with the last reference).
M_NC_COPY = 0x10000000

# receive checksum flags (modern CSUM_L3_CALC ... aliases)
CSUM_IP_CHECKED = 0x01 << 24
CSUM_IP_VALID = 0x02 << 24
CSUM_DATA_VALID = 0x04 << 24
CSUM_PSEUDO_HDR = 0x08 << 24

# hash types (sys/sys/mbuf.h)
M_HASHTYPE_NONE = 0
M_HASHTYPE_RSS_IPV4 = 0x81
M_HASHTYPE_RSS_TCP_IPV4 = 0x82
M_HASHTYPE_RSS_IPV6 = 0x83
M_HASHTYPE_RSS_TCP_IPV6 = 0x84
M_HASHTYPE_RSS_UDP_IPV4 = 0x87
M_HASHTYPE_RSS_UDP_IPV6 = 0x89
M_HASHTYPE_OPAQUE = 63

CODEC_VERSION = 4       # rows of msgpack values
CODEC_PACKED = 5        # int64 rows and a name table (see the module comment)
# off, len, flags, flowid, hashtype, fib, vlan, csum_flags, arrival_ns,
# stamp_ns, pkt_id, line_cpu, line_at, line_pat, l3hlen, and the table
# indexes of rcvif, vnet, zone and the storage's zones
_ROW = struct.Struct("<19q")
_ROW_SIZE = _ROW.size
_NCOL = _ROW_SIZE // 8      # int64 columns a row
_LITTLE = sys.byteorder == "little"     # the rows are little-endian on the wire
_NONAME = object()      # no name seen yet (None is a name: a missing vnet)


class MbufError(Exception):
    """A reference-count violation that a kernel with INVARIANTS would panic on."""


class DoubleFree(MbufError):
    pass


class UseAfterFree(MbufError):
    pass


class Uma:
    """Per-thread zone counters: allocations (`a`) and frees (`f`) per zone,
    int64 arrays in ZONES order (ZONE_INDEX); `allocs` and `frees` read them
    as {zone: count}."""

    __slots__ = ("a", "f")

    def __init__(self):
        # (not cache.zeros: the cache module cimports this one)
        self.a = array("q", bytes(8 * len(ZONES)))
        self.f = array("q", bytes(8 * len(ZONES)))

    @property
    def allocs(self) -> dict:
        return dict(zip(ZONES, self.a))

    @property
    def frees(self) -> dict:
        return dict(zip(ZONES, self.f))

    def used(self, zone: str) -> int:
        i = ZONE_INDEX[zone]
        return self.a[i] - self.f[i]

    def merge(self, other: "Uma") -> None:
        for i in range(len(ZONES)):
            self.a[i] += other.a[i]
            self.f[i] += other.f[i]

    def to_dict(self) -> dict:
        return {z: {"req": self.a[i], "used": self.a[i] - self.f[i], "frees": self.f[i]}
                for i, z in enumerate(ZONES)}

    def state(self) -> list:
        return [list(self.a), list(self.f)]

    @classmethod
    def from_state(cls, st) -> "Uma":
        u = cls()
        for i in range(len(ZONES)):
            u.a[i] = st[0][i]
            u.f[i] = st[1][i]
        return u


class Storage:
    """External (or inline) storage: bytes, the zones it returns to, a count."""

    __slots__ = ("data", "zones", "refcnt")

    def __init__(self, data: bytes, zones: tuple, refcnt: int = 1):
        self.data = data
        self.zones = zones
        self.refcnt = refcnt


# The zone lists zones_for returns: one tuple each, made once (a storage's
# `zones` is one of them unless it came through the codec)
_ZM = (Z_MBUF,)
_ZP = (Z_PACKET,)
_ZJP = (Z_MBUF, Z_JUMBOP)
_ZJ9 = (Z_MBUF, Z_JUMBO9)
_ZJ16 = (Z_MBUF, Z_JUMBO16)


def zones_for(size: int) -> tuple:
    """The zone(s) m_get2-style allocation takes for a packet of `size` bytes."""
    if size <= MHLEN:
        return _ZM
    if size <= MCLBYTES:
        return _ZP
    if size <= MJUMPAGESIZE:
        return _ZJP
    if size <= MJUM9BYTES:
        return _ZJ9
    return _ZJ16


# Header fields carried on the wire, in codec order.  `off`/`len` select the
# packet's bytes inside its storage.
HDR_FIELDS = ("off", "len", "flags", "rcvif", "flowid", "hashtype", "fib", "vnet",
              "vlan", "csum_flags", "arrival_ns", "stamp_ns", "pkt_id", "tags",
              "line_cpu", "line_at", "line_pat", "l3hlen")
# The fields the hot paths do arithmetic on - the view, the times and the
# cache record - are C int64 when the model is compiled (actors/mbuf.pxd),
# as the kernel's own are fixed-width: a value beyond int64 raises
# OverflowError there.  The model never makes one (integer ns and byte
# counts, far below 2**63).  So are the pkthdr fields the kernel keeps in
# fixed widths far narrower than int64 (flowid and csum_flags 32 bits,
# the hash type and the fib 8, the VLAN tag 16), which the drivers and
# the input path set and test on every packet.  The others (flags, pkt_id
# and the names) hold anything msgpack holds.
INT64_FIELDS = ("off", "len", "arrival_ns", "stamp_ns", "line_cpu", "line_at", "line_pat",
                "l3hlen", "flowid", "hashtype", "fib", "vlan", "csum_flags")


class Mbuf:
    """A packet: header fields plus a view (off, len) into shared storage.

    `rcvif` is the receiving ifnet's name; `vlan` is the 802.1Q VID or -1;
    `arrival_ns` the wire arrival; `stamp_ns` the virtual time of the last
    hand-off between threads (scratch, like PH_loc); `pkt_id` a per-run id;
    `tags` a list of [type, value] pairs (m_tag); `line_cpu`, `line_at`,
    `line_pat` the cache record of the packet's lines (header and first
    data lines, actors/cache.py): the core that last touched them and that
    core's and its package's touch counters then (-1: only memory has them); `l3hlen` the length of the network headers (IPv4 header
    with options, or IPv6 header with extension headers) once IP input has
    walked them (as the modern pkthdr's l3hlen).  `zone` is the zone this mbuf itself was taken from.
    """

    __slots__ = HDR_FIELDS + ("st", "zone", "freed")

    def __init__(self):
        # Mbufs are made by m_alloc / m_copypacket / the codec.
        raise TypeError("use m_alloc()")

    # -- data access -------------------------------------------------------
    @property
    def data(self) -> bytes:
        if self.freed:
            raise UseAfterFree(f"mbuf pkt_id={self.pkt_id} used after free")
        d = self.st.data
        if self.off == 0 and self.len == len(d):
            return d
        return d[self.off:self.off + self.len]

    @property
    def writable(self) -> bool:
        return not self.freed and self.st.refcnt == 1 and not (self.flags & M_RDONLY)

    def header(self) -> tuple:
        """All header fields as a tuple (for equality checks in tests)."""
        return tuple(getattr(self, f) for f in HDR_FIELDS) + (self.zone,)

    def __repr__(self):
        return (f"<mbuf id={self.pkt_id} len={self.len} if={self.rcvif} "
                f"zone={self.zone}{' FREED' if self.freed else ''}>")


# Mbufs and storage are made with Type.__new__(Type) and their fields set
# here: object.__new__ in plain Python, and when compiled (actors/mbuf.pxd)
# the type's own allocator called directly - no call through the type, and
# no __init__ (Mbuf's refuses).


def _storage(data, zones, refcnt) -> Storage:
    st = Storage.__new__(Storage)
    st.data = data
    st.zones = zones
    st.refcnt = refcnt
    return st


def _blank(st: Storage, zone: str, length: int) -> Mbuf:
    m = Mbuf.__new__(Mbuf)
    m.off = 0
    m.len = length
    zs = st.zones
    # (the zone's name by identity first: the allocator passes the zone
    # constants, and compiled, comparing unequal strings is a call)
    mz = zone is Z_MBUF or (zone is not Z_PACKET and zone == Z_MBUF)
    m.flags = _F_HDR if mz and (zs is _ZM or zs == _ZM) else _F_HDR_EXT
    m.rcvif = ""
    m.flowid = 0
    m.hashtype = M_HASHTYPE_NONE
    m.fib = 0
    m.vnet = ""
    m.vlan = -1
    m.csum_flags = 0
    m.arrival_ns = 0
    m.stamp_ns = 0
    m.pkt_id = 0
    m.tags = []
    m.line_cpu = -1
    m.line_at = 0
    m.line_pat = 0
    m.l3hlen = 0
    m.st = st
    m.zone = zone
    m.freed = False
    return m


_F_HDR = M_PKTHDR
_F_HDR_EXT = M_PKTHDR | M_EXT


def m_alloc(uma: Uma, data: bytes) -> Mbuf:
    """Allocate a packet for `data` from the zone that fits (m_get2/m_getjcl).
    The storage holds bytes (a bytearray or memoryview is copied), which the
    compiled protocol paths read as such."""
    if type(data) is not bytes:
        data = bytes(data)
    n = len(data)
    if _MHLEN < n <= _MCLBYTES:         # the common case: one packet-zone item
        uma.a[_IX_PACKET] += 1
        return _blank(_storage(data, _ZP, 1), Z_PACKET, n)
    if n <= _MHLEN:                     # a small packet: one mbuf, data inside
        uma.a[_IX_MBUF] += 1
        return _blank(_storage(data, _ZM, 1), Z_MBUF, n)
    zones = zones_for(n)
    for z in zones:
        uma.a[ZONE_INDEX[z]] += 1
    return _blank(_storage(data, zones, 1), zones[0], n)


def m_freem(uma: Uma, m: Mbuf) -> None:
    """Free a packet: drop its reference; storage goes when the last one does."""
    if m.freed:
        raise DoubleFree(f"mbuf pkt_id={m.pkt_id} freed twice")
    m.freed = True
    st = m.st
    if m.flags & M_NC_COPY:
        uma.f[_IX_MBUF] += 1    # a copy's own mbuf goes back at once
    st.refcnt -= 1
    if st.refcnt == 0:
        zones = st.zones
        if zones is _ZP:
            uma.f[_IX_PACKET] += 1
        elif zones is _ZM:
            uma.f[_IX_MBUF] += 1
        else:
            for z in zones:
                uma.f[ZONE_INDEX[z]] += 1
    elif st.refcnt < 0:  # pragma: no cover - guarded by `freed`
        raise DoubleFree("storage reference count below zero")


def m_copypacket(uma: Uma, m: Mbuf) -> Mbuf:
    """Copy a packet sharing its cluster (mb_dupcl); inline data is copied."""
    if m.freed:
        raise UseAfterFree(f"mbuf pkt_id={m.pkt_id} copied after free")
    st = m.st
    if not m.flags & M_EXT:
        c = m_alloc(uma, m.data)
        # m_dup_pkthdr copies the header flags; the copy owns its storage.
        c.flags = (m.flags & ~(M_EXT | M_RDONLY | M_NC_COPY)) | (c.flags & M_EXT)
    else:
        uma.a[_IX_MBUF] += 1
        st.refcnt += 1
        c = _blank(st, Z_MBUF, m.len)
        # mb_dupcl: the copy inherits M_RDONLY; the original's flags are left
        # alone (M_WRITABLE is false for both through the count while shared).
        c.flags = m.flags | M_NC_COPY
        c.off = m.off
    for f in HDR_FIELDS[2:]:
        if f != "flags":
            setattr(c, f, getattr(m, f))
    c.tags = [list(t) for t in m.tags]
    c.len = m.len
    return c


def m_dup(uma: Uma, m: Mbuf) -> Mbuf:
    """Deep copy into new storage (writable)."""
    c = m_alloc(uma, bytes(m.data))
    for f in HDR_FIELDS[2:]:
        if f != "flags":
            setattr(c, f, getattr(m, f))
    c.flags = (m.flags & ~(M_EXT | M_RDONLY | M_NC_COPY)) | (c.flags & M_EXT)
    c.tags = [list(t) for t in m.tags]
    return c


def m_adj(m: Mbuf, n: int) -> None:
    """Trim n bytes from the head (n > 0) or tail (n < 0)."""
    if m.freed:
        raise UseAfterFree(f"mbuf pkt_id={m.pkt_id} adjusted after free")
    if n >= 0:
        n = min(n, m.len)
        m.off += n
        m.len -= n
    else:
        m.len = max(0, m.len + n)


# -- codec -----------------------------------------------------------------

_ST = operator.attrgetter("st")


def _first_repeat(mbufs: list):
    return next(m for i, m in enumerate(mbufs) if any(m is x for x in mbufs[:i]))


def encode_batch(mbufs: list) -> bytes:
    """Serialize a batch of mbufs; storage shared within the batch is sent once.

    Packed form (CODEC_PACKED, whenever the batch fits it): [version, [names,
    data], tags, rows]: rows is n `_ROW`s of int64, names the table their last
    four columns index, data the bytes of each mbuf's storage, tags the
    (row, tags) of the mbufs that carry any.  Rows form (CODEC_VERSION):
    [version, storages, index, rows]: each row is the header fields
    (HDR_FIELDS) and the mbuf's own zone; storages are [data, zones]; index
    is null when row i uses storage i (nothing shared), else the storage
    number of every row."""
    return msgpack.packb(batch_parts(mbufs), use_bin_type=True)


def batch_parts(mbufs: list) -> list:
    """The wire form of a batch (see encode_batch) before msgpack packs it:
    so that a message carrying batches (cluster/engine.py) is packed once,
    the packets' bytes copied once."""
    packed = _encode_packed(mbufs)
    if packed is not None:
        return packed
    if len(set(map(id, mbufs))) != len(mbufs):
        # Decoding would make two packets of one (and could balance the
        # count check below while a sharer outside is left dangling).
        dup = _first_repeat(mbufs)
        raise ValueError(f"mbuf pkt_id={dup.pkt_id} appears twice in the batch")
    return _encode_rows(mbufs)


def _encode_rows(mbufs: list) -> list:
    """The general wire form: a row of msgpack values per mbuf."""
    rows = []
    data = []
    shared = False
    for m in mbufs:           # one pass: checks, header rows, storages
        if m.freed:
            raise UseAfterFree(f"mbuf pkt_id={m.pkt_id} sent after free")
        st = m.st
        if st.refcnt != 1:
            shared = True
        data.append((st.data, st.zones))
        rows.append((m.off, m.len, m.flags, m.rcvif, m.flowid, m.hashtype, m.fib, m.vnet,
                     m.vlan, m.csum_flags, m.arrival_ns, m.stamp_ns, m.pkt_id, m.tags,
                     m.line_cpu, m.line_at, m.line_pat, m.l3hlen, m.zone))
    if not shared:
        return [CODEC_VERSION, data, None, rows]
    sts = list(map(_ST, mbufs))
    index = {}
    table = []
    idx = []
    for st in sts:
        i = index.get(id(st))
        if i is None:
            i = index[id(st)] = len(table)
            table.append([st, 0])
        table[i][1] += 1
        idx.append(i)
    for st, refs in table:
        if st.refcnt != refs:
            raise ValueError(
                f"storage shared with {st.refcnt - refs} mbuf(s) outside the batch "
                "cannot move between actors; m_dup it first")
    return [CODEC_VERSION, [(st.data, st.zones) for st, _ in table], idx, rows]


def decode_batch(blob: bytes) -> list:
    """Inverse of encode_batch: new mbufs, storage shared as it was in the batch."""
    try:
        # tuples, not lists: half the unpacking time (tags made lists below)
        parts = msgpack.unpackb(blob, raw=False, use_list=False)
    except (ValueError, TypeError):
        raise ValueError("not an mbuf batch of this codec version") from None
    return batch_from_parts(parts)


def batch_from_parts(parts) -> list:
    """Inverse of batch_parts, from the unpacked wire form (lists or tuples)."""
    try:
        ver, sts, idx, rows = parts
    except (ValueError, TypeError):
        raise ValueError("not an mbuf batch of this codec version") from None
    if ver == CODEC_PACKED:
        return _decode_packed(sts, idx, rows)
    if ver != CODEC_VERSION:
        raise ValueError(f"mbuf codec version {ver}, expected {CODEC_VERSION} or {CODEC_PACKED}")
    storages = [_storage(d, z, 0) for d, z in sts]
    out = []
    for k, r in enumerate(rows):
        m = Mbuf.__new__(Mbuf)
        (m.off, m.len, m.flags, m.rcvif, m.flowid, m.hashtype, m.fib, m.vnet,
         m.vlan, m.csum_flags, m.arrival_ns, m.stamp_ns, m.pkt_id, m.tags,
         m.line_cpu, m.line_at, m.line_pat, m.l3hlen, m.zone) = r
        m.tags = [list(t) for t in m.tags] if m.tags else []
        st = storages[k if idx is None else idx[k]]
        st.refcnt += 1
        m.st = st
        m.freed = False
        out.append(m)
    return out



def _name(names: dict, v) -> int:
    """v's index in the name table (a str or None; a zones tuple of str), or
    -1 when v is none of those."""
    if v is not None and type(v) is not str and type(v) is not tuple:
        return -1
    try:
        i = names.get(v)
    except TypeError:           # a tuple holding something unhashable
        return -1
    if i is None:
        if type(v) is tuple:
            for z in v:
                if type(z) is not str:
                    return -1
        i = names[v] = len(names)
    return i


def _encode_packed(mbufs: list):
    """The packed wire form of a batch (its parts, for msgpack), or None
    when the batch does not fit it (shared storage, a field out of int64 or
    not an int, a name not a string, an mbuf twice): the caller then sends
    msgpack rows.  A freed mbuf also answers None; the caller raises.  The
    rows are written as int64s straight into an array (a C store each when
    compiled).  An mbuf is known to be in the batch already by its
    storage's count, set to 2 while the batch is encoded (a lone storage's
    count is 1: one seen twice is the same mbuf, or shared) and set back
    before this returns, whatever happens."""
    n = len(mbufs)
    rows = array("q", bytes(n * _ROW_SIZE))
    rv = rows
    names = {}
    data = []
    tags = []
    o = 0
    k = 0                       # mbufs whose storage is marked
    lr = lv = lz = lzs = _NONAME
    ir = iv = iz = izs = -1
    try:
        for m in mbufs:
            st = m.st
            if m.freed or st.refcnt != 1:
                return None
            st.refcnt = 2
            k += 1
            if not (type(m.flags) is int and type(m.pkt_id) is int):
                return None
            # INT64_FIELDS hold nothing but ints when compiled: asking would
            # only box each of them
            if not COMPILED and not (
                    type(m.off) is int and type(m.len) is int
                    and type(m.arrival_ns) is int and type(m.stamp_ns) is int
                    and type(m.line_cpu) is int and type(m.line_at) is int
                    and type(m.line_pat) is int and type(m.l3hlen) is int
                    and type(m.flowid) is int and type(m.hashtype) is int
                    and type(m.fib) is int and type(m.vlan) is int
                    and type(m.csum_flags) is int):
                return None
            # names mostly repeat from one mbuf to the next: the same objects
            if m.rcvif is not lr:
                lr = m.rcvif
                ir = _name(names, lr)
            if m.vnet is not lv:
                lv = m.vnet
                iv = _name(names, lv)
            if m.zone is not lz:
                lz = m.zone
                iz = _name(names, lz)
            if st.zones is not lzs:
                lzs = st.zones
                izs = _name(names, lzs)
            if ir < 0 or iv < 0 or iz < 0 or izs < 0:
                return None
            try:
                rv[o] = m.off
                rv[o + 1] = m.len
                rv[o + 2] = m.flags
                rv[o + 3] = m.flowid
                rv[o + 4] = m.hashtype
                rv[o + 5] = m.fib
                rv[o + 6] = m.vlan
                rv[o + 7] = m.csum_flags
                rv[o + 8] = m.arrival_ns
                rv[o + 9] = m.stamp_ns
                rv[o + 10] = m.pkt_id
                rv[o + 11] = m.line_cpu
                rv[o + 12] = m.line_at
                rv[o + 13] = m.line_pat
                rv[o + 14] = m.l3hlen
            except OverflowError:       # out of int64
                return None
            rv[o + 15] = ir
            rv[o + 16] = iv
            rv[o + 17] = iz
            rv[o + 18] = izs
            o += _NCOL
            data.append(st.data)
            if m.tags:
                tags.append((len(data) - 1, m.tags))
    finally:
        for i in range(k):
            m = mbufs[i]
            m.st.refcnt = 1
    if not _LITTLE:
        rows.byteswap()
    return [CODEC_PACKED, [list(names), data], tags, rows.tobytes()]


def _decode_packed(tables, tags, rows) -> list:
    try:
        names, data = tables
        n = len(data)
        if len(rows) != n * _ROW_SIZE:
            raise ValueError
        arr = array("q")
        arr.frombytes(rows)
        if not _LITTLE:
            arr.byteswap()
        rv = arr
        out = []
        o = 0
        for k in range(n):
            m = Mbuf.__new__(Mbuf)
            m.off = rv[o]
            m.len = rv[o + 1]
            m.flags = rv[o + 2]
            m.flowid = rv[o + 3]
            m.hashtype = rv[o + 4]
            m.fib = rv[o + 5]
            m.vlan = rv[o + 6]
            m.csum_flags = rv[o + 7]
            m.arrival_ns = rv[o + 8]
            m.stamp_ns = rv[o + 9]
            m.pkt_id = rv[o + 10]
            m.line_cpu = rv[o + 11]
            m.line_at = rv[o + 12]
            m.line_pat = rv[o + 13]
            m.l3hlen = rv[o + 14]
            m.rcvif = names[rv[o + 15]]
            m.vnet = names[rv[o + 16]]
            m.zone = names[rv[o + 17]]
            m.tags = []
            m.st = _storage(data[k], names[rv[o + 18]], 1)
            m.freed = False
            out.append(m)
            o += _NCOL
        for k, t in tags:
            out[k].tags = [list(x) for x in t]
    except (ValueError, TypeError, IndexError, OverflowError):
        raise ValueError("not an mbuf batch of this codec version") from None
    return out
