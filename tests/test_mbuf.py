"""Tests for actors.mbuf: reference counts, zone accounting and the wire codec.

The expected zone accounting is computed here from the rules in the module
docstring (and /work/shared/facts/mbuf-link-ip.md section 1), not from
`zones_for`:

  * a packet of <= MHLEN (168) bytes sits inline in one `mbuf` item;
  * <= MCLBYTES (2048): one `mbuf_packet` item (mbuf + 2k cluster);
  * <= MJUMPAGESIZE (4096): an `mbuf` plus a `mbuf_jumbo_page` cluster;
  * <= MJUM9BYTES (9216): an `mbuf` plus a `mbuf_jumbo_9k` cluster;
  * larger: an `mbuf` plus a `mbuf_jumbo_16k` cluster (chains not modelled);
  * m_copypacket of a cluster takes one `mbuf` item (returned at once when the
    copy is freed) and bumps the storage count; the storage and its owner's
    zone(s) go back when the last reference goes (FreeBSD 11+ EXT_FLAG_EMBREF);
  * m_copypacket of inline data, and m_dup, allocate fresh storage.
"""

from __future__ import annotations

import random

import msgpack
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
)

from actors import mbuf as mb
from actors.mbuf import (
    CODEC_PACKED,
    CODEC_VERSION,
    HDR_FIELDS,
    INT64_FIELDS,
    M_BCAST,
    M_EXT,
    M_NC_COPY,
    M_PKTHDR,
    M_RDONLY,
    M_VLANTAG,
    MHLEN,
    ZONES,
    DoubleFree,
    Uma,
    UseAfterFree,
    decode_batch,
    encode_batch,
    m_adj,
    m_alloc,
    m_copypacket,
    m_dup,
    m_freem,
    zones_for,
)

Z_MBUF, Z_PACKET, Z_JUMBOP, Z_JUMBO9, Z_JUMBO16 = (
    "mbuf", "mbuf_packet", "mbuf_jumbo_page", "mbuf_jumbo_9k", "mbuf_jumbo_16k")


def expected_zones(size: int) -> tuple:
    """Independent statement of the allocation rule (see module docstring)."""
    if size <= 168:
        return (Z_MBUF,)
    if size <= 2048:
        return (Z_PACKET,)
    if size <= 4096:
        return (Z_MBUF, Z_JUMBOP)
    if size <= 9216:
        return (Z_MBUF, Z_JUMBO9)
    return (Z_MBUF, Z_JUMBO16)


def payload(size: int, seed: int) -> bytes:
    return random.Random(seed).randbytes(size)


BOUNDS = [0, 1, 167, 168, 169, 2047, 2048, 2049, 4095, 4096, 4097,
          9215, 9216, 9217, 16383, 16384, 16385, 20000]
sizes = st.one_of(st.sampled_from(BOUNDS), st.integers(0, 20000))
seeds = st.integers(0, 2**32 - 1)

I64 = st.integers(-(2**63), 2**64 - 1)  # everything msgpack's ints hold
INT64 = st.integers(-(2**63), 2**63 - 1)    # what the packed wire form holds
tag_values = st.one_of(st.binary(max_size=24), st.text(max_size=12), I64)
tags_st = st.lists(st.tuples(I64, tag_values).map(list), max_size=4)
# Bits that describe the storage, kept as allocation/copy set them.
STRUCT_BITS = M_EXT | M_NC_COPY


# ---------------------------------------------------------------------------
# 1. codec round trip
# ---------------------------------------------------------------------------

def _randomize(data, m, wide: bool = True) -> None:
    """Set every header field of `m` to arbitrary valid values (off/len by
    m_adj); integers from msgpack's whole range, or (wide=False) int64's -
    but the times, the cache record and the fixed-width pkthdr fields always
    within int64, the range they have when the model is compiled
    (INT64_FIELDS)."""
    ints = I64 if wide else INT64
    m.flags = (m.flags & STRUCT_BITS) | (
        data.draw(st.integers(0, 2**64 - 1 if wide else 2**63 - 1)) & ~STRUCT_BITS)
    for f in ("rcvif", "vnet"):
        setattr(m, f, data.draw(st.text(max_size=16)))
    m.pkt_id = data.draw(ints)
    for f in ("arrival_ns", "stamp_ns", "line_cpu", "line_at", "line_pat",
              "flowid", "hashtype", "fib", "vlan", "csum_flags"):
        assert f in INT64_FIELDS    # C int64 when compiled, whatever `wide` says
        setattr(m, f, data.draw(INT64))
    m.tags = data.draw(tags_st)
    head = data.draw(st.integers(0, m.len + 2))
    tail = data.draw(st.integers(0, m.len + 2))
    if head:
        m_adj(m, head)
    if tail:
        m_adj(m, -tail)


def _partition(mbufs) -> list:
    """Canonical labels of the storage-sharing partition of a batch."""
    labels = {}
    return [labels.setdefault(id(m.st), len(labels)) for m in mbufs]


def test_hdr_fields_cover_every_slot():
    # The round trip below sets "every header field"; make sure that is all.
    assert set(HDR_FIELDS) | {"st", "zone", "freed"} == set(mb.Mbuf.__slots__)


def test_int64_fields_are_the_compiled_c_fields():
    """INT64_FIELDS names exactly the Mbuf fields mbuf.pxd declares C int64,
    and, compiled, such a field refuses a value beyond int64 (OverflowError)
    rather than wrapping it."""
    import pathlib
    import re
    pxd = (pathlib.Path(mb.__file__).parent / "mbuf.pxd").read_text()
    body = pxd.split("cdef class Mbuf:")[1].split("\n\n")[0]
    c64 = [f.strip() for line in re.findall(r"cdef public long long (.*)", body)
           for f in line.split(",")]
    assert sorted(c64) == sorted(INT64_FIELDS)
    assert set(INT64_FIELDS) <= set(HDR_FIELDS)
    m = m_alloc(Uma(), b"x" * 60)
    for f in INT64_FIELDS:
        setattr(m, f, 2**63 - 1)
        assert getattr(m, f) == 2**63 - 1
        setattr(m, f, -(2**63))
        assert getattr(m, f) == -(2**63)
    if mb.__file__.endswith(".so"):         # compiled
        with pytest.raises(OverflowError):
            m.stamp_ns = 2**63


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.data())
def test_codec_roundtrip(data):
    uma = Uma()
    wide = data.draw(st.booleans(), label="integers beyond int64")
    batch = []
    for _ in range(data.draw(st.integers(1, 5), label="originals")):
        size = data.draw(sizes, label="size")
        m = m_alloc(uma, payload(size, data.draw(seeds)))
        event(f"zone {m.zone}/{m.st.zones[-1]}")
        family = [m]
        if data.draw(st.booleans()):
            _randomize(data, m, wide)
        for _ in range(data.draw(st.integers(0, 3), label="copies")):
            src = data.draw(st.sampled_from(family))
            how = data.draw(st.sampled_from(["copy", "copy", "dup"]))
            c = m_copypacket(uma, src) if how == "copy" else m_dup(uma, src)
            if data.draw(st.booleans()):
                _randomize(data, c, wide)
            family.append(c)
        batch.extend(family)
    batch = data.draw(st.permutations(batch), label="order")

    # Every sharer is in the batch, so each count equals the sharers in it.
    labels = _partition(batch)
    for m in batch:
        assert m.st.refcnt == sum(x.st is m.st for x in batch)

    blob = encode_batch(batch)
    out = decode_batch(blob)

    assert len(out) == len(batch)
    for a, b in zip(batch, out):
        assert b is not a and b.st is not a.st
        assert b.header() == a.header()
        assert b.data == a.data
        assert type(b.data) is bytes
        assert b.st.zones == a.st.zones
        assert b.writable == a.writable
        assert not b.freed
    assert _partition(out) == labels
    for b in out:
        assert b.st.refcnt == sum(x.st is b.st for x in out)
    assert encode_batch(out) == blob
    # The packed form exactly when the batch fits it: no storage shared,
    # every integer field within int64.
    fits = all(m.st.refcnt == 1 for m in batch) and all(
        -(2**63) <= getattr(m, f) < 2**63 for m in batch for f in HDR_FIELDS
        if f not in ("rcvif", "vnet", "tags"))
    wire = msgpack.unpackb(blob, raw=False)
    assert wire[0] == (CODEC_PACKED if fits else CODEC_VERSION)
    event("packed form" if fits else "rows form")
    if fits:
        assert len(wire[1][1]) == len(batch)
        # ... and it decodes to what the general form decodes to
        general = mb.batch_from_parts(mb._encode_rows(batch))
        assert [b.header() for b in general] == [b.header() for b in out]
        assert [b.data for b in general] == [b.data for b in out]
        assert [b.st.zones for b in general] == [b.st.zones for b in out]
    else:
        # Storage shared in the batch is sent once.
        assert len(wire[1]) == len(set(labels))


# ---------------------------------------------------------------------------
# 2. codec refusals
# ---------------------------------------------------------------------------

def test_encode_refuses_storage_shared_outside_batch():
    uma = Uma()
    m = m_alloc(uma, bytes(1500))
    c = m_copypacket(uma, m)
    with pytest.raises(ValueError):
        encode_batch([m])
    with pytest.raises(ValueError):
        encode_batch([c])
    # Together they may move; so may the copy once the owner is gone.
    decode_batch(encode_batch([c, m]))
    m_freem(uma, m)
    assert len(decode_batch(encode_batch([c]))) == 1
    # Inline data is copied, so an inline packet is never shared.
    s = m_alloc(uma, b"x" * MHLEN)
    s2 = m_copypacket(uma, s)
    assert len(decode_batch(encode_batch([s]))) == 1
    assert len(decode_batch(encode_batch([s2]))) == 1


def test_encode_refuses_same_mbuf_twice():
    # [m, m] with one outside copy would pass a pure count check and leave the
    # copy outside with a dangling reference.
    uma = Uma()
    m = m_alloc(uma, bytes(3000))
    c = m_copypacket(uma, m)
    with pytest.raises(ValueError):
        encode_batch([m, m])
    with pytest.raises(ValueError):
        encode_batch([m, c, c])
    solo = m_alloc(uma, b"abc")
    with pytest.raises(ValueError):
        encode_batch([solo, solo])


@settings(max_examples=100, deadline=None)
@given(st.lists(st.sampled_from(["keep", "twice", "freed", "copy"]), min_size=1, max_size=12),
       st.integers(0, 11))
def test_encode_leaves_every_count_as_it_was(kinds, at):
    """The packed encoder marks each storage it has seen (its count set to 2)
    to find an mbuf sent twice; whatever the batch - refused for a repeat,
    a freed mbuf or storage shared outside, or encoded - every count is
    as it was afterwards."""
    uma = Uma()
    batch, keep = [], []
    for i, k in enumerate(kinds):
        m = m_alloc(uma, bytes([i]) * (200 + 300 * i))    # clusters: copies share them
        keep.append(m)
        if k == "freed":
            m_freem(uma, m)
        elif k == "copy":
            keep.append(m_copypacket(uma, m))   # a sharer outside the batch
        batch.append(m)
        if k == "twice":
            batch.insert(min(at, len(batch)), m)
    before = [(m.st.refcnt, m.freed) for m in keep]
    try:
        out = decode_batch(encode_batch(batch))
    except (ValueError, UseAfterFree):
        assert set(kinds) != {"keep"}
    else:
        assert set(kinds) == {"keep"} and len(out) == len(batch)
    assert [(m.st.refcnt, m.freed) for m in keep] == before


def test_messages_carry_batches_packed_once():
    """encode_msgs packs a message's mbuf batch in the codec's wire form
    inside the messages (one msgpack pass): decode_msgs gives the same
    messages, the mbufs' headers and bytes whole, control payloads as they
    were."""
    from cluster.engine import decode_msgs, encode_msgs
    uma = Uma()
    a = [m_alloc(uma, bytes(range(i, i + 60 + i))) for i in range(5)]
    a[2].tags = [[7, 9]]
    b = [m_alloc(uma, b"z" * 3000)]
    b.append(m_copypacket(uma, b[0]))          # shared storage: the rows form
    msgs = [(10, "ix0", 0, "netisr0", "pkts.ip", a), (10, "cpu0", 3, "netisr0", "cstate", [0, 5, [[40, "t", 9]]]),
            (20, "ix0", 1, "netisr1", "pkts.ip6", b)]
    got = decode_msgs(encode_msgs(msgs))
    assert [m[:5] for m in got] == [m[:5] for m in msgs]
    assert got[1][5] == msgs[1][5]
    for sent, back in ((a, got[0][5]), (b, got[2][5])):
        assert [x.header() for x in back] == [x.header() for x in sent]
        assert [x.data for x in back] == [x.data for x in sent]
    assert back[0].st is back[1].st and back[0].st.refcnt == 2
    assert all(x.st.refcnt == 1 for x in a)


def test_encode_refuses_freed_mbuf():
    uma = Uma()
    m = m_alloc(uma, b"abc")
    m_freem(uma, m)
    with pytest.raises(UseAfterFree):
        encode_batch([m])


def test_decode_bad_version():
    uma = Uma()
    ver, sts, idx, rows = mb._encode_rows([m_alloc(uma, b"hello")])
    assert ver == CODEC_VERSION
    for bad in (CODEC_PACKED + 1, 0, -1, "1"):
        with pytest.raises(ValueError):
            decode_batch(msgpack.packb([bad, sts, idx, rows], use_bin_type=True))
    with pytest.raises(ValueError):          # an older wire form is refused, not misread
        decode_batch(msgpack.packb([CODEC_VERSION, sts, rows], use_bin_type=True))
    assert decode_batch(encode_batch([])) == []


def test_names_that_are_not_strings_go_in_the_rows_form():
    uma = Uma()
    for odd in (7, b"ix0", None):
        m = m_alloc(uma, b"hello")
        m.rcvif = odd
        blob = encode_batch([m])
        assert msgpack.unpackb(blob, raw=False)[0] == (CODEC_PACKED if odd is None
                                                        else CODEC_VERSION)
        assert decode_batch(blob)[0].rcvif == odd
    m = m_alloc(uma, b"hello")
    m.rcvif = ["ix0"]                        # unhashable
    assert msgpack.unpackb(encode_batch([m]), raw=False)[0] == CODEC_VERSION
    m = m_alloc(uma, b"hello")
    m.st.zones = ("mbuf", ["x"])            # unhashable inside a tuple
    assert msgpack.unpackb(encode_batch([m]), raw=False)[0] == CODEC_VERSION


def test_decode_bad_packed_batch():
    uma = Uma()
    ms = [m_alloc(uma, b"hello"), m_alloc(uma, bytes(1500))]
    ver, tables, tags, rows = msgpack.unpackb(encode_batch(ms), raw=False)
    assert ver == CODEC_PACKED
    names, data = tables
    assert [b.header() for b in decode_batch(encode_batch(ms))] == [m.header() for m in ms]
    for bad in ([ver, [names, data[:1]], tags, rows],              # rows without data
                [ver, [names, data], tags, rows[:-8]],             # a row cut short
                [ver, [names[:1], data], tags, rows],              # a name index out of the table
                [ver, [names, data], [[5, [[1, 2]]]], rows],       # tags of a row not there
                [ver, [names, data], [[2**64 - 1, [[1, 2]]]], rows],   # ... far out of range
                [ver, names, tags, rows]):
        with pytest.raises(ValueError):
            decode_batch(msgpack.packb(bad, use_bin_type=True))



def test_packed_rows_are_little_endian_int64_on_the_wire():
    """The packed form's rows are 19 little-endian int64s an mbuf, in the
    documented column order (the wire is the same whatever the host's byte
    order or how the encoder writes them)."""
    import struct
    uma = Uma()
    ms = [m_alloc(uma, bytes(60)), m_alloc(uma, bytes(1500))]
    for i, m in enumerate(ms):
        m.rcvif, m.vnet, m.flowid, m.arrival_ns, m.pkt_id = "ix1", "v0", 0xDEADBEEF, 10**15 + i, -5
        m.line_cpu, m.line_at, m.line_pat, m.vlan, m.l3hlen = 3, 2**40, 2**41 + 1, 7, 20
    ver, (names, data), tags, rows = msgpack.unpackb(encode_batch(ms), raw=False)
    assert ver == CODEC_PACKED and len(rows) == 19 * 8 * len(ms)
    for m, r in zip(ms, struct.iter_unpack("<19q", rows)):
        assert r[:15] == (m.off, m.len, m.flags, m.flowid, m.hashtype, m.fib, m.vlan,
                          m.csum_flags, m.arrival_ns, m.stamp_ns, m.pkt_id, m.line_cpu,
                          m.line_at, m.line_pat, m.l3hlen)
        assert [names[k] for k in r[15:18]] == [m.rcvif, m.vnet, m.zone]
        assert tuple(names[r[18]]) == m.st.zones


# ---------------------------------------------------------------------------
# 3. stateful model of reference counts and zone accounting
# ---------------------------------------------------------------------------

class Group:
    """One storage in the model: its zones, live references, cluster or inline."""

    __slots__ = ("zones", "refs", "ext")

    def __init__(self, size):
        self.zones = expected_zones(size)
        self.refs = 1
        self.ext = size > 168


class Rec:
    __slots__ = ("m", "expect", "group", "is_copy")

    def __init__(self, m, expect, group, is_copy):
        self.m, self.expect, self.group, self.is_copy = m, expect, group, is_copy


class MbufMachine(RuleBasedStateMachine):
    def __init__(self):
        super().__init__()
        self.uma = Uma()
        self.used = dict.fromkeys(ZONES, 0)
        self.live: list[Rec] = []
        self.dead = []    # freed mbuf objects
        self.moved = []   # objects replaced by their decoded versions

    # -- helpers -----------------------------------------------------------
    def _new_group(self, size):
        g = Group(size)
        for z in g.zones:
            self.used[z] += 1
        return g

    def _pick(self, i) -> Rec:
        return self.live[i % len(self.live)]

    # -- rules -------------------------------------------------------------
    @rule(size=sizes, seed=seeds)
    def allocate(self, size, seed):
        d = payload(size, seed)
        m = m_alloc(self.uma, d)
        self.live.append(Rec(m, d, self._new_group(size), False))

    @precondition(lambda self: self.live)
    @rule(i=st.integers(0, 2**16))
    def copy(self, i):
        r = self._pick(i)
        c = m_copypacket(self.uma, r.m)
        if r.group.ext:
            self.used[Z_MBUF] += 1
            r.group.refs += 1
            self.live.append(Rec(c, r.expect, r.group, True))
        else:
            self.live.append(Rec(c, r.expect, self._new_group(len(r.expect)), False))

    @precondition(lambda self: self.live)
    @rule(i=st.integers(0, 2**16))
    def dup(self, i):
        r = self._pick(i)
        c = m_dup(self.uma, r.m)
        self.live.append(Rec(c, r.expect, self._new_group(len(r.expect)), False))

    @precondition(lambda self: self.live)
    @rule(i=st.integers(0, 2**16), n=st.integers(-3000, 3000))
    def adj(self, i, n):
        r = self._pick(i)
        m_adj(r.m, n)
        e = r.expect
        r.expect = e[min(n, len(e)):] if n >= 0 else e[:max(0, len(e) + n)]

    @precondition(lambda self: self.live)
    @rule(i=st.integers(0, 2**16))
    def free(self, i):
        r = self.live.pop(i % len(self.live))
        m_freem(self.uma, r.m)
        if r.is_copy:
            self.used[Z_MBUF] -= 1
        r.group.refs -= 1
        if r.group.refs == 0:
            for z in r.group.zones:
                self.used[z] -= 1
        self.dead.append(r.m)

    @precondition(lambda self: self.live)
    @rule(i=st.integers(0, 2**16))
    def read(self, i):
        r = self._pick(i)
        assert r.m.data == r.expect

    @precondition(lambda self: self.live)
    @rule(data=st.data())
    def move(self, data):
        """Encode a closed set of live mbufs, decode, replace the originals."""
        picks = data.draw(st.lists(st.integers(0, len(self.live) - 1),
                                   min_size=1, max_size=4), label="picks")
        groups = {id(self.live[i].group) for i in picks}
        recs = [r for r in self.live if id(r.group) in groups]
        recs = data.draw(st.permutations(recs), label="order")
        blob = encode_batch([r.m for r in recs])
        out = decode_batch(blob)
        for r, n in zip(recs, out, strict=True):
            assert not r.m.freed  # moved, not freed
            self.moved.append(r.m)
            r.m = n

    @precondition(lambda self: any(r.group.refs > 1 for r in self.live))
    @rule(data=st.data())
    def move_partial_refused(self, data):
        shared = [r for r in self.live if r.group.refs > 1]
        r = data.draw(st.sampled_from(shared), label="shared")
        others = [x for x in self.live if x.group is r.group and x is not r]
        leave = data.draw(st.sampled_from(others), label="left out")
        batch = [x.m for x in self.live if x.group is r.group and x is not leave]
        with pytest.raises(ValueError):
            encode_batch(batch)

    @precondition(lambda self: self.dead)
    @rule(i=st.integers(0, 2**16),
          op=st.sampled_from(["free", "read", "copy", "dup", "adj", "encode"]))
    def touch_freed(self, i, op):
        m = self.dead[i % len(self.dead)]
        if op == "free":
            with pytest.raises(DoubleFree):
                m_freem(self.uma, m)
            return
        with pytest.raises(UseAfterFree):
            if op == "read":
                m.data
            elif op == "copy":
                m_copypacket(self.uma, m)
            elif op == "dup":
                m_dup(self.uma, m)
            elif op == "adj":
                m_adj(m, 1)
            else:
                encode_batch([m])
        assert not m.writable

    # -- invariants --------------------------------------------------------
    @invariant()
    def zone_accounting(self):
        assert {z: self.uma.used(z) for z in ZONES} == self.used

    @invariant()
    def live_data(self):
        for r in self.live:
            assert not r.m.freed
            assert r.m.data == r.expect
            assert r.m.len == len(r.expect)

    @invariant()
    def refcounts_and_sharing(self):
        by_st = {}
        by_group = {}
        for r in self.live:
            by_st.setdefault(id(r.m.st), []).append(r)
            by_group.setdefault(id(r.group), set()).add(id(r.m.st))
        for g_sts in by_group.values():
            assert len(g_sts) == 1  # one model group <-> one storage
        for recs in by_st.values():
            st_ = recs[0].m.st
            assert st_.refcnt == len(recs) == recs[0].group.refs
            assert len({id(r.group) for r in recs}) == 1
            g = recs[0].group
            assert st_.zones == g.zones
            for r in recs:
                assert bool(r.m.flags & M_EXT) == g.ext
                assert bool(r.m.flags & M_NC_COPY) == r.is_copy
                # M_WRITABLE: no M_RDONLY and (no M_EXT or count == 1)
                assert r.m.writable == (not g.ext or g.refs == 1)

    def teardown(self):
        for r in self.live:
            m_freem(self.uma, r.m)
        self.live.clear()
        for z in ZONES:
            assert self.uma.used(z) == 0, (z, self.uma.to_dict())


TestMbufMachine = MbufMachine.TestCase
TestMbufMachine.settings = settings(
    max_examples=150, stateful_step_count=40, deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])


# ---------------------------------------------------------------------------
# 4. unit tests
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("size,zones", [
    (0, (Z_MBUF,)), (1, (Z_MBUF,)), (MHLEN, (Z_MBUF,)),
    (MHLEN + 1, (Z_PACKET,)), (2048, (Z_PACKET,)),
    (2049, (Z_MBUF, Z_JUMBOP)), (4096, (Z_MBUF, Z_JUMBOP)),
    (4097, (Z_MBUF, Z_JUMBO9)), (9216, (Z_MBUF, Z_JUMBO9)),
    (9217, (Z_MBUF, Z_JUMBO16)), (16384, (Z_MBUF, Z_JUMBO16)),
])
def test_zones_for_boundaries(size, zones):
    assert MHLEN == 168
    assert zones_for(size) == zones == expected_zones(size)
    uma = Uma()
    m = m_alloc(uma, bytes(size))
    assert m.zone == zones[0]
    assert m.st.zones == zones
    assert {z: uma.used(z) for z in ZONES} == {z: int(z in zones) for z in ZONES}
    assert bool(m.flags & M_EXT) == (size > MHLEN)
    assert m.flags & M_PKTHDR
    assert m.writable
    m_freem(uma, m)
    assert all(uma.used(z) == 0 for z in ZONES)


def test_shared_cluster_not_writable_until_unshared():
    uma = Uma()
    m = m_alloc(uma, bytes(range(256)) * 4)
    assert m.flags & M_EXT and m.writable
    c = m_copypacket(uma, m)
    assert c.st is m.st and m.st.refcnt == 2
    assert c.flags & M_EXT and c.flags & M_NC_COPY
    assert not m.writable and not c.writable
    assert c.data == m.data
    m_freem(uma, c)
    # M_WRITABLE follows the count: once unshared, the owner is writable again.
    assert m.st.refcnt == 1 and m.writable
    c2 = m_copypacket(uma, m)
    m_freem(uma, m)
    assert c2.st.refcnt == 1 and c2.writable
    m_freem(uma, c2)
    assert all(uma.used(z) == 0 for z in ZONES)


def test_rdonly_flag_is_honoured_and_inherited():
    uma = Uma()
    m = m_alloc(uma, bytes(500))
    m.flags |= M_RDONLY
    assert not m.writable
    c = m_copypacket(uma, m)
    assert c.flags & M_RDONLY
    m_freem(uma, m)
    assert not c.writable


def test_inline_copy_gets_own_storage():
    uma = Uma()
    m = m_alloc(uma, b"q" * MHLEN)
    m.flags |= M_BCAST | M_VLANTAG
    m.vlan, m.rcvif, m.tags = 42, "em0", [[1, b"t"]]
    c = m_copypacket(uma, m)
    assert not m.flags & M_EXT and not c.flags & M_EXT
    assert not c.flags & M_NC_COPY
    assert c.st is not m.st and c.st.refcnt == m.st.refcnt == 1
    assert c.data == m.data
    assert m.writable and c.writable
    assert c.zone == Z_MBUF
    assert uma.used(Z_MBUF) == 2
    # The packet header is copied, flags included (m_dup_pkthdr).
    assert c.header()[2:] == m.header()[2:]
    assert c.tags is not m.tags and c.tags[0] is not m.tags[0]
    m_freem(uma, m)
    assert uma.used(Z_MBUF) == 1
    assert c.data == b"q" * MHLEN
    m_freem(uma, c)
    assert uma.used(Z_MBUF) == 0


def test_trimmed_cluster_copy_still_shares():
    uma = Uma()
    m = m_alloc(uma, bytes(range(200)))
    m_adj(m, 100)
    c = m_copypacket(uma, m)
    assert c.st is m.st and c.off == 100 and c.len == 100
    assert c.data == bytes(range(100, 200))


def test_owner_stays_used_until_last_reference():
    for first in ("owner", "copy"):
        uma = Uma()
        m = m_alloc(uma, bytes(1000))
        c = m_copypacket(uma, m)
        assert (uma.used(Z_PACKET), uma.used(Z_MBUF)) == (1, 1)
        a, b = (m, c) if first == "owner" else (c, m)
        m_freem(uma, a)
        # Owner first: the copy's mbuf stays, and so does the owner's packet
        # item (it embeds the count).  Copy first: its mbuf goes at once.
        assert (uma.used(Z_PACKET), uma.used(Z_MBUF)) == (1, 1 if first == "owner" else 0)
        assert b.data == bytes(1000)
        m_freem(uma, b)
        assert (uma.used(Z_PACKET), uma.used(Z_MBUF)) == (0, 0)


def test_jumbo_copy_accounting():
    uma = Uma()
    m = m_alloc(uma, bytes(9000))
    c = m_copypacket(uma, m)
    c2 = m_copypacket(uma, c)
    assert m.st.refcnt == 3
    assert (uma.used(Z_MBUF), uma.used(Z_JUMBO9)) == (3, 1)
    m_freem(uma, m)
    assert (uma.used(Z_MBUF), uma.used(Z_JUMBO9)) == (3, 1)
    m_freem(uma, c2)
    assert (uma.used(Z_MBUF), uma.used(Z_JUMBO9)) == (2, 1)
    m_freem(uma, c)
    assert (uma.used(Z_MBUF), uma.used(Z_JUMBO9)) == (0, 0)


def test_dup_is_writable_deep_copy():
    uma = Uma()
    m = m_alloc(uma, bytes(range(256)) * 12)  # 3072 bytes: jumbo page
    m.flags |= M_BCAST
    c = m_copypacket(uma, m)
    m_adj(c, 1000)
    d = m_dup(uma, c)  # 2072 bytes: a jumbo page again
    assert d.st is not m.st and d.st.refcnt == 1 and d.writable
    assert d.data == c.data and d.st.zones == (Z_MBUF, Z_JUMBOP)
    assert d.flags & M_BCAST and d.flags & M_EXT
    assert not d.flags & (M_RDONLY | M_NC_COPY)
    e = m_dup(uma, d)
    m_adj(e, -2000)
    f = m_dup(uma, e)  # 72 bytes: inline
    assert not f.flags & M_EXT and f.zone == Z_MBUF and f.st.zones == (Z_MBUF,)
    for x in (m, c, d, e, f):
        m_freem(uma, x)
    assert all(uma.used(z) == 0 for z in ZONES)


def test_adj_clamps():
    uma = Uma()
    m = m_alloc(uma, b"0123456789")
    m_adj(m, 3)
    assert m.data == b"3456789"
    m_adj(m, -2)
    assert m.data == b"34567"
    m_adj(m, -100)
    assert m.data == b"" and m.len == 0
    m2 = m_alloc(uma, b"abc")
    m_adj(m2, 100)
    assert m2.data == b"" and m2.off == 3


def test_errors():
    uma = Uma()
    m = m_alloc(uma, bytes(3000))
    m_freem(uma, m)
    with pytest.raises(DoubleFree):
        m_freem(uma, m)
    with pytest.raises(UseAfterFree):
        m.data
    with pytest.raises(UseAfterFree):
        m_copypacket(uma, m)
    with pytest.raises(UseAfterFree):
        m_dup(uma, m)
    assert all(uma.used(z) == 0 for z in ZONES)
    with pytest.raises(TypeError):
        mb.Mbuf()


def test_uma_state_and_merge():
    a, b = Uma(), Uma()
    m_alloc(a, bytes(100))
    x = m_alloc(b, bytes(5000))
    m_alloc(b, bytes(6000))
    m_freem(b, x)
    a.merge(b)
    assert Uma.from_state(a.state()).to_dict() == a.to_dict()
    assert a.to_dict()[Z_JUMBO9] == {"req": 2, "used": 1, "frees": 1}
    assert a.to_dict()[Z_MBUF] == {"req": 3, "used": 2, "frees": 1}
    assert a.to_dict()[Z_PACKET] == {"req": 0, "used": 0, "frees": 0}
