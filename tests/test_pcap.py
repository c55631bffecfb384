"""Streaming pcap / pcapng reader and pcapng writer (actors/pcap.py).

Files are built by hand here (struct.pack, either byte order), so the reader
is checked against the format documents, not against itself; the writer is
checked by reading back and, when installed, by tshark.  The shared corpus
(../shared/corpus/pcap, read-only) is cross-checked against scapy's
RawPcapReader: same frame count, bytes, time stamps, lengths, link types.
"""

from __future__ import annotations

import gc
import io
import logging
import shutil
import struct
import subprocess
import tracemalloc
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from actors.pcap import (LINKTYPE_ETHERNET, LINKTYPE_IPV4, LINKTYPE_IPV6, LINKTYPE_LINUX_SLL,
                         LINKTYPE_RAW, MAX_CAPLEN, CaptureError, Frame, PcapngWriter,
                         linktype_name, open_capture)

from conftest import CORPUS  # noqa: E402  (../shared/corpus/pcap)
TSHARK = shutil.which("tshark")
EDITCAP = shutil.which("editcap")


# ------------------------------------------------------------ builders

def pcap_bytes(records, bo="<", nano=False, network=1, snaplen=65535):
    """records: (sec, frac, data[, orig_len]); returns (bytes, record end offsets)."""
    magic = 0xA1B23C4D if nano else 0xA1B2C3D4
    out = [struct.pack(bo + "IHHiIII", magic, 2, 4, 0, 0, snaplen, network)]
    ends, pos = [], 24
    for r in records:
        sec, frac, data = r[:3]
        orig = r[3] if len(r) > 3 else len(data)
        out.append(struct.pack(bo + "IIII", sec, frac, len(data), orig) + data)
        pos += 16 + len(data)
        ends.append(pos)
    return b"".join(out), ends


def opt(bo, code, value: bytes) -> bytes:
    return struct.pack(bo + "HH", code, len(value)) + value + b"\0" * (-len(value) % 4)


def opts(bo, *pairs) -> bytes:
    return b"".join(opt(bo, c, v) for c, v in pairs) + struct.pack(bo + "HH", 0, 0) if pairs else b""


def block(bo, btype, body, blen=None, trailer=None) -> bytes:
    n = 12 + len(body) if blen is None else blen
    return (struct.pack(bo + "II", btype, n) + body
            + struct.pack(bo + "I", n if trailer is None else trailer))


def shb(bo, *options) -> bytes:
    return block(bo, 0x0A0D0D0A, struct.pack(bo + "IHHq", 0x1A2B3C4D, 1, 0, -1) + opts(bo, *options))


def idb(bo, linktype=1, snaplen=0, tsresol=None, tsoffset=None) -> bytes:
    o = []
    if tsresol is not None:
        o.append((9, bytes([tsresol])))
    if tsoffset is not None:
        o.append((14, struct.pack(bo + "q", tsoffset)))
    return block(bo, 1, struct.pack(bo + "HHI", linktype, 0, snaplen) + opts(bo, *o))


def epb(bo, iface, units, data, orig=None, comments=(), caplen=None) -> bytes:
    body = (struct.pack(bo + "IIIII", iface, units >> 32, units & 0xFFFFFFFF,
                        len(data) if caplen is None else caplen,
                        len(data) if orig is None else orig)
            + data + b"\0" * (-len(data) % 4) + opts(bo, *[(1, c.encode()) for c in comments]))
    return block(bo, 6, body)


def spb(bo, data, orig=None) -> bytes:
    return block(bo, 3, struct.pack(bo + "I", len(data) if orig is None else orig)
                 + data + b"\0" * (-len(data) % 4))


def pb(bo, iface, units, data, orig=None) -> bytes:
    body = (struct.pack(bo + "HHIIII", iface, 0, units >> 32, units & 0xFFFFFFFF, len(data),
                        len(data) if orig is None else orig)
            + data + b"\0" * (-len(data) % 4))
    return block(bo, 2, body)


def write(tmp_path, content: bytes, name="f.cap") -> Path:
    p = tmp_path / name
    p.write_bytes(content)
    return p


def read_all(path):
    with open_capture(path) as c:
        frames = list(c)
    return c, frames


# ------------------------------------------------------------ writer

def test_writer_round_trip(tmp_path):
    frames = [(1_700_000_000_123_456_789, bytes(range(60)), "first: héllo", None),
              (1_700_000_000_123_456_790, b"\xaa" * 61, None, 1514),
              (5, b"\x01" * 3, "two\nlines", None),
              ((1 << 64) - 1, b"", None, 0)]
    p = tmp_path / "w.pcapng"
    with PcapngWriter(p, hardware="amd64", os="FreeBSD 15.0") as w:
        for ts, data, comment, orig in frames:
            w.write(ts, data, comment=comment, orig_len=orig)
    c, got = read_all(p)
    assert (c.format, c.linktype, c.frames, c.truncated, c.problem) == (
        "pcapng", LINKTYPE_ETHERNET, 4, False, None)
    for i, (fr, (ts, data, comment, orig)) in enumerate(zip(got, frames)):
        assert fr == Frame(i, ts, LINKTYPE_ETHERNET, data,
                           len(data) if orig is None else orig, 0, comment)
    raw = p.read_bytes()
    assert b"netcabal" in raw and b"FreeBSD 15.0" in raw and len(raw) % 4 == 0


def test_writer_fileobj_snaplen_and_linktype(tmp_path):
    buf = io.BytesIO()
    w = PcapngWriter(buf, linktype=LINKTYPE_RAW, snaplen=64, application=None)
    w.write(1, b"\x45" * 100)
    w.close()
    w.close()
    assert not buf.closed                           # not ours to close
    with pytest.raises(ValueError):
        w.write(2, b"")
    assert b"netcabal" not in buf.getvalue()
    c, got = read_all(write(tmp_path, buf.getvalue()))
    assert c.linktype == LINKTYPE_RAW and c.snaplen == 64
    assert got == [Frame(0, 1, LINKTYPE_RAW, b"\x45" * 64, 100, 0)]


# ------------------------------------------------------------ pcap

@pytest.mark.parametrize("bo", ["<", ">"])
@pytest.mark.parametrize("nano", [False, True])
def test_pcap_byte_orders_and_resolutions(tmp_path, bo, nano):
    recs = [(1_600_000_000, 999_999_999 if nano else 999_999, b"abc"),
            (1_600_000_001, 1, b"\x00" * 1500, 9000),
            (0, 0, b"")]
    content, _ = pcap_bytes(recs, bo=bo, nano=nano, network=0x30000000 | LINKTYPE_IPV6)
    c, got = read_all(write(tmp_path, content))
    assert (c.format, c.linktype, c.snaplen, c.frames, c.truncated, c.problem) == (
        "pcap", LINKTYPE_IPV6, 65535, 3, False, None)
    mul = 1 if nano else 1000
    assert got == [Frame(0, 1_600_000_000 * 10**9 + recs[0][1] * mul, LINKTYPE_IPV6, b"abc", 3, 0),
                   Frame(1, 1_600_000_001 * 10**9 + mul, LINKTYPE_IPV6, b"\x00" * 1500, 9000, 0),
                   Frame(2, 0, LINKTYPE_IPV6, b"", 0, 0)]


@pytest.mark.parametrize("network,expect", [(12, LINKTYPE_RAW), (14, LINKTYPE_RAW),
                                            (101, LINKTYPE_RAW), (228, LINKTYPE_IPV4),
                                            (113, LINKTYPE_LINUX_SLL), (147, 147)])
def test_linktypes(tmp_path, network, expect):
    c, got = read_all(write(tmp_path, pcap_bytes([(1, 2, b"x")], network=network)[0]))
    assert c.linktype == expect and got[0].linktype == expect
    assert linktype_name(expect) in ("RAW", "IPV4", "LINUX_SLL", "LINKTYPE_147")


def test_pcap_caplen_too_big_stops(tmp_path):
    content, ends = pcap_bytes([(1, 0, b"ok")])
    content += struct.pack("<IIII", 2, 0, MAX_CAPLEN + 1, MAX_CAPLEN + 1) + b"\0" * 100
    c, got = read_all(write(tmp_path, content))
    assert len(got) == c.frames == 1 and not c.truncated
    assert "caplen" in c.problem and "\n" not in c.problem


# ------------------------------------------------------------ pcapng

def test_pcapng_big_endian_section(tmp_path):
    bo = ">"
    content = (shb(bo, (4, b"someapp")) + idb(bo, LINKTYPE_ETHERNET, 65535)
               + epb(bo, 0, 1_500_000_000_000_001, b"\x11" * 17, 60, comments=["a", "b"]))
    c, got = read_all(write(tmp_path, content))
    assert (c.format, c.linktype, c.sections, c.truncated, c.problem) == (
        "pcapng", 1, 1, False, None)
    assert got == [Frame(0, 1_500_000_000_000_001_000, 1, b"\x11" * 17, 60, 0, "a\nb")]


def test_pcapng_sections_interfaces_resolutions(tmp_path):
    L, B = "<", ">"
    content = (
        shb(L)
        + idb(L, LINKTYPE_ETHERNET)                      # default 10^-6
        + idb(L, LINKTYPE_RAW, tsresol=3)                # ms
        + idb(L, 14, tsresol=0x80 | 10, tsoffset=100)    # 2^-10 s, +100 s
        + idb(L, LINKTYPE_IPV4, tsresol=12)              # ps
        + epb(L, 0, 7, b"e0")
        + epb(L, 1, 7, b"e1")
        + epb(L, 2, 1024 + 512, b"e2")
        + epb(L, 3, 1_234_567_891_234, b"e3")
        + epb(L, 4, 1, b"no such interface")
        + shb(B)                                         # new section: interfaces reset
        + epb(B, 1, 1, b"old interface numbering")
        + idb(B, LINKTYPE_IPV6, tsresol=9)
        + epb(B, 0, 42, b"b0"))
    c, got = read_all(write(tmp_path, content))
    assert [(f.index, f.ts_ns, f.linktype, f.data, f.iface) for f in got] == [
        (0, 7_000, LINKTYPE_ETHERNET, b"e0", 0),
        (1, 7_000_000, LINKTYPE_RAW, b"e1", 1),
        (2, 101_500_000_000, LINKTYPE_RAW, b"e2", 2),
        (3, 1_234_567_891, LINKTYPE_IPV4, b"e3", 3),
        (4, 42, LINKTYPE_IPV6, b"b0", 0)]
    assert (c.linktype, c.sections, c.bad_frames, c.frames, c.truncated, c.problem) == (
        LINKTYPE_ETHERNET, 2, 2, 5, False, None)


def test_pcapng_spb_pb_and_unknown_blocks(tmp_path):
    L = "<"
    content = (
        shb(L)
        + block(L, 0x00000BAD, b"custom stuff" * 3)      # unknown before the IDB
        + spb(L, b"no interface yet")                    # -> bad_frames
        + idb(L, LINKTYPE_ETHERNET, snaplen=8)
        + block(L, 4, b"\x00" * 8)                       # name resolution
        + spb(L, b"0123456789", orig=1500)               # cut to snaplen 8
        + spb(L, b"abcde")                               # padding not part of the frame
        + pb(L, 0, 3, b"obsolete", orig=99)
        + block(L, 5, b"\x00" * 16)                      # interface statistics
        + block(L, 0x40000BAD, b""))                     # empty custom block
    c, got = read_all(write(tmp_path, content))
    assert got == [Frame(0, 0, 1, b"01234567", 1500, 0),
                   Frame(1, 0, 1, b"abcde", 5, 0),
                   Frame(2, 3000, 1, b"obsolete", 99, 0)]
    assert (c.bad_frames, c.truncated, c.problem) == (1, False, None)


@pytest.mark.parametrize("bad", [
    lambda bo: block(bo, 6, b"\0" * 24, blen=38),                # not a multiple of 4
    lambda bo: block(bo, 6, b"", blen=8),                        # < 12
    lambda bo: block(bo, 6, b"\0" * 24, trailer=40),             # trailing copy differs
    lambda bo: block(bo, 99, b"\0" * 24, trailer=40),            # ... also for skipped blocks
    lambda bo: epb(bo, 0, 1, b"abcd", caplen=64),                # caplen > block
    lambda bo: block(bo, 6, b"\0" * 12),                         # EPB too short
    lambda bo: block(bo, 0x0A0D0D0A, b"\0" * 20),                # SHB with bad byte-order magic
])
def test_pcapng_malformed_block_stops(tmp_path, bad):
    bo = "<"
    content = (shb(bo) + idb(bo) + epb(bo, 0, 1, b"one") + epb(bo, 0, 2, b"two")
               + bad(bo) + epb(bo, 0, 3, b"never read"))
    c, got = read_all(write(tmp_path, content))
    assert [f.data for f in got] == [b"one", b"two"] and c.frames == 2
    assert c.problem and "\n" not in c.problem and not c.truncated


# ------------------------------------------------------------ truncation

def _small_pcapng():
    """A little pcapng; returns (bytes, [(block end offset, frames so far)])."""
    L, B = "<", ">"
    blocks = [(shb(L, (4, b"x")), 0), (idb(L, tsresol=9), 0),
              (epb(L, 0, 10, b"a" * 5, comments=["c"]), 1), (block(L, 5, b"\0" * 8), 0),
              (spb(L, b"bb"), 1), (pb(L, 0, 11, b"c" * 7), 1),
              (shb(B), 0), (idb(B, 101), 0), (epb(B, 0, 12, b"d" * 9), 1)]
    content, ends, n = b"", [], 0
    for b, k in blocks:
        content += b
        n += k
        ends.append((len(content), n))
    return content, ends


def _small_pcap():
    content, ends = pcap_bytes([(1, 1, b"a" * 5), (2, 2, b""), (3, 3, b"b" * 33)], bo=">")
    return content, [(24, 0)] + [(e, i + 1) for i, e in enumerate(ends)]


@pytest.mark.parametrize("make", [_small_pcap, _small_pcapng])
def test_truncated_at_every_cut(tmp_path, make):
    content, ends = make()
    boundaries = dict(ends)
    p = tmp_path / "cut"
    for cut in range(len(content) + 1):
        p.write_bytes(content[:cut])
        if cut < 4:
            with pytest.raises(CaptureError):
                open_capture(p)
            continue
        c, got = read_all(p)
        whole = max([n for e, n in ends if e <= cut], default=0)
        assert (len(got), c.frames) == (whole, whole), cut
        assert c.truncated == (cut not in boundaries), cut
        assert (c.problem is None) == (cut in boundaries), cut
        if c.problem:
            assert "\n" not in c.problem
        assert c.bad_frames == 0


# ------------------------------------------------------------ not a capture

@pytest.mark.parametrize("content", [
    b"", b"\xd4\xc3", b"GET / HTTP/1.1\r\nHost: example\r\n\r\n" * 3,
    b"\x1f\x8b\x08\x00" + b"\0" * 40,
    bytes(range(256)),
    shb("<")[:8] + b"\x00\x00\x00\x00" + shb("<")[12:],          # bad byte-order magic
    block("<", 0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 2, 0, -1)),  # version 2
])
def test_garbage_is_capture_error(tmp_path, content):
    p = write(tmp_path, content)
    with pytest.raises(CaptureError) as ei:
        open_capture(p)
    msg = str(ei.value)
    assert msg and "\n" not in msg and str(p) in msg


def test_unreadable_is_capture_error(tmp_path):
    for p in (tmp_path / "missing.pcap", tmp_path):
        with pytest.raises(CaptureError) as ei:
            open_capture(p)
        assert "\n" not in str(ei.value)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_mutated_files_never_raise(tmp_path, data):
    content = bytearray(data.draw(st.sampled_from([_small_pcap, _small_pcapng]))()[0])
    for _ in range(data.draw(st.integers(1, 6))):
        i = data.draw(st.integers(0, len(content) - 1))
        content[i] = data.draw(st.integers(0, 255))
    p = write(tmp_path, bytes(content), "fuzz")
    try:
        c = open_capture(p)
    except CaptureError as e:
        assert "\n" not in str(e)
        return
    with c:
        n = sum(1 for _ in c)
    assert n == c.frames and (c.problem is None or "\n" not in c.problem)


def test_close_mid_stream_and_iter_after_end(tmp_path):
    p = write(tmp_path, pcap_bytes([(1, 0, b"a"), (2, 0, b"b")])[0])
    c = open_capture(p)
    assert next(c).data == b"a"
    c.close()
    assert list(c) == [] and c.frames == 1
    c, got = read_all(p)
    assert list(c) == [] and len(got) == 2


# ------------------------------------------------------------ bounded memory

def test_streams_300k_frames_in_bounded_memory(tmp_path):
    n = 300_000
    p = tmp_path / "big.pcap"
    rec = struct.Struct("<IIII")
    payload = bytes(range(64))
    with open(p, "wb", buffering=1 << 20) as f:
        f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
        f.writelines(rec.pack(i // 1000, i % 1000, 64, 64) + payload for i in range(n))
    gc.collect()
    tracemalloc.start()
    try:
        with open_capture(p) as c:
            count = 0
            last = None
            for fr in c:
                count += 1
                last = fr
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert count == c.frames == n and not c.truncated and c.problem is None
    assert last.ts_ns == (n - 1) // 1000 * 10**9 + (n - 1) % 1000 * 1000
    assert peak < 5 * 1024 * 1024, peak


# ------------------------------------------------------------ the corpus

def corpus_files():
    if not CORPUS.is_dir():
        pytest.skip(f"{CORPUS} not present")
    return sorted(CORPUS.iterdir())


def scapy_frames(path):
    """(data, ts_ns, orig_len, linktype|None) by scapy; None when scapy fails."""
    from scapy.utils import RawPcapReader
    logging.getLogger("scapy").setLevel(logging.CRITICAL)
    out = []
    try:
        r = RawPcapReader(str(path))       # dispatches to RawPcapNgReader
        with r:
            while True:
                try:
                    # scapy's default size (MTU, 65535) cuts bigger frames: ask for all
                    d, m = r._read_packet(size=MAX_CAPLEN)
                except EOFError:
                    break
                if hasattr(m, "tshigh"):
                    ts = (0 if m.tshigh is None
                          else ((m.tshigh << 32) | m.tslow) * 10**9 // int(m.tsresol))
                    out.append((d, ts, m.wirelen, m.linktype))
                else:
                    ts = m.sec * 10**9 + m.usec * (1 if r.nano else 1000)
                    out.append((d, ts, m.wirelen, None))
    except Exception:                      # noqa: BLE001 - scapy could not read it
        return None
    return out


def test_corpus_opens_or_capture_error_and_matches_scapy():
    files = corpus_files()
    linktypes, formats, damaged, mismatches, scapy_failed = Counter(), Counter(), [], [], []
    for p in files:
        try:
            c = open_capture(p)
        except CaptureError as e:
            assert "\n" not in str(e)
            damaged.append((p.name, str(e)))
            continue
        with c:
            ours = list(c)                 # must never raise
        formats[c.format] += 1
        linktypes[linktype_name(c.linktype)] += 1
        if c.truncated or c.problem or c.bad_frames:
            damaged.append((p.name, c.problem, c.bad_frames))
        theirs = scapy_frames(p)
        if theirs is None:
            scapy_failed.append(p.name)
            continue
        if len(theirs) != len(ours):
            mismatches.append((p.name, "count", len(ours), len(theirs)))
            continue
        for fr, (d, ts, wl, lt) in zip(ours, theirs):
            if (fr.data, fr.ts_ns, fr.orig_len) != (d, ts, wl) or lt not in (None, fr.linktype):
                mismatches.append((p.name, fr.index))
                break
    print(f"\ncorpus: {len(files)} files {dict(formats)}; link types {dict(linktypes)};"
          f" damaged {damaged}; scapy failed on {scapy_failed}")
    assert sum(formats.values()) + len([d for d in damaged if len(d) == 2]) == len(files)
    assert mismatches == []


@pytest.mark.skipif(EDITCAP is None, reason="editcap (wireshark-common) not installed")
def test_corpus_via_editcap_pcapng(tmp_path):
    """editcap rewrites a corpus pcap as pcapng (with comments): same frames."""
    src = next((p for p in corpus_files() if p.suffix == ".pcap"), None)
    dst = tmp_path / "x.pcapng"
    subprocess.run([EDITCAP, "-F", "pcapng", "-a", "1:hello editcap", str(src), str(dst)],
                   check=True, capture_output=True)
    _, a = read_all(src)
    c, b = read_all(dst)
    assert c.format == "pcapng" and c.problem is None
    assert [(f.ts_ns, f.data, f.orig_len, f.linktype) for f in a] == \
           [(f.ts_ns, f.data, f.orig_len, f.linktype) for f in b]
    assert b[0].comment == "hello editcap" and all(f.comment is None for f in b[1:])


# ------------------------------------------------------------ tshark

def tshark_fields(path, *fields):
    out = subprocess.run([TSHARK, "-r", str(path), "-T", "fields", "-E", "separator=|",
                          *[a for f in fields for a in ("-e", f)]],
                         check=True, capture_output=True, text=True).stdout
    return [line.split("|") for line in out.splitlines()]


@pytest.mark.skipif(TSHARK is None, reason="tshark not installed")
def test_tshark_reads_writer_output(tmp_path):
    p = tmp_path / "t.pcapng"
    with PcapngWriter(p) as w:
        w.write(1_700_000_000_123_456_789, b"\xff" * 6 + b"\x02" * 6 + b"\x08\x00" + b"\0" * 46,
                comment="netcabal: drop at ip_input")
        w.write(1_700_000_000_999_999_999, b"\x00" * 60, orig_len=1514)
        w.write(2_000_000_000_000_000_001, b"\x00" * 61, comment="ünïcode")
    # Wireshark 3.6+ calls the field frame.comment (older: pkt_comment).
    rows = tshark_fields(p, "frame.time_epoch", "frame.len", "frame.cap_len", "frame.comment")
    assert rows == [["1700000000.123456789", "60", "60", "netcabal: drop at ip_input"],
                    ["1700000000.999999999", "1514", "60", ""],
                    ["2000000000.000000001", "61", "61", "ünïcode"]]
