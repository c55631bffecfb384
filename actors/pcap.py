# Reads classic pcap and pcapng capture files as a stream of frames, and
# writes pcapng.  Our own code rather than dpkt / python-pcapng, because
# netcabal replays captures of any size and any state of repair: every frame
# is counted, a damaged file never raises mid-stream, memory stays bounded.
#
# What it handles:
#   - pcap: magic a1b2c3d4 / d4c3b2a1 (microsecond time stamps) and
#     a1b23c4d / 4d3cb2a1 (nanosecond), either byte order; the 24-byte file
#     header (version, thiszone, sigfigs, snaplen, network) and 16-byte record
#     headers (ts_sec, ts_usec|ts_nsec, incl_len, orig_len).  The link type is
#     network & 0x0FFFFFFF (the upper bits carry the FCS length).
#   - pcapng: Section Header Blocks in either byte order (a new SHB starts a
#     new section and forgets the interfaces of the previous one), Interface
#     Description Blocks (link type, snaplen, if_tsresol - a power of 10, or
#     of 2 when the high bit is set, default 10^-6 - and if_tsoffset),
#     Enhanced Packet Blocks, Simple Packet Blocks (interface 0, no time
#     stamp: ts 0; data trimmed to min(origlen, snaplen) so the padding does
#     not leak into the frame), the obsolete Packet Block, and the packet
#     comment option (opt_comment, code 1) of EPB / PB.  Every other block
#     type is skipped by its length.
#   - Link types 12 and 14 (DLT_RAW on some BSDs / OpenBSD) are reported as
#     LINKTYPE_RAW (101).
#   - Streaming: a record / block header is read, then its body, through a
#     buffered file; at most one block is held in memory, and block sizes are
#     capped (MAX_CAPLEN for packet data, MAX_BLOCK for a parsed block;
#     unknown blocks are skipped by seeking), so a file of any length replays
#     in bounded memory.
#   - Damage: a file that ends inside a header / record / block, a record
#     whose caplen exceeds MAX_CAPLEN, a block whose total length is < 12,
#     not a multiple of 4, larger than MAX_BLOCK or different from its
#     trailing copy, a packet block whose caplen exceeds the block, a missing
#     SHB, or an I/O error: iteration stops cleanly after the last whole frame
#     with .truncated (the file ended early) and / or .problem (one line) set.
#     A packet block naming an interface that does not exist is skipped and
#     counted in .bad_frames; iteration goes on.
#   - CaptureError (one-line message) only from open_capture(): the file
#     cannot be opened, is shorter than a magic number, or is not pcap/pcapng.
#   - PcapngWriter: little-endian SHB (shb_hardware / shb_os / shb_userappl),
#     one IDB with if_tsresol 9 (nanoseconds) and an EPB per frame, with an
#     optional opt_comment.
#
# What it leaves out: gzip / zstd compressed captures (reported as
# CaptureError), the "modified" (Kuznetzov, a1b2cd34) and other pcap
# variants, pcap's thiszone (not applied, as libpcap), the pcapng section
# length field (sections are found by their SHBs, never by seeking), options
# other than opt_comment / if_tsresol / if_tsoffset (hash, flags, drop count,
# verdicts...), Name Resolution, Interface Statistics, Decryption Secrets and
# custom blocks (skipped), per-interface snaplen checks on EPB / PB, and
# writing classic pcap or several interfaces.
#
# This module must stay plain Python; it must never import ray.

from __future__ import annotations

import io
import os
import struct
from collections import namedtuple

__all__ = [
    "CaptureError", "Frame", "Capture", "open_capture", "PcapngWriter",
    "LINKTYPE_ETHERNET", "LINKTYPE_RAW", "LINKTYPE_IPV4", "LINKTYPE_IPV6",
    "LINKTYPE_LINUX_SLL", "LINKTYPE_LINUX_SLL2", "LINKTYPE_NAMES",
    "DLT_RAW_ALIASES", "MAX_CAPLEN", "MAX_BLOCK", "linktype_name",
]

LINKTYPE_NULL = 0
LINKTYPE_ETHERNET = 1
LINKTYPE_RAW = 101
LINKTYPE_LINUX_SLL = 113
LINKTYPE_IPV4 = 228
LINKTYPE_IPV6 = 229
LINKTYPE_LINUX_SLL2 = 276

# DLT_RAW as some platforms numbered it, written to files unmapped: 12 on most
# BSDs (DLT_LOOP on OpenBSD), 14 on OpenBSD and BSD/OS.  Read as LINKTYPE_RAW.
DLT_RAW_ALIASES = {12: LINKTYPE_RAW, 14: LINKTYPE_RAW}

LINKTYPE_NAMES = {
    LINKTYPE_NULL: "NULL",
    LINKTYPE_ETHERNET: "ETHERNET",
    LINKTYPE_RAW: "RAW",
    LINKTYPE_LINUX_SLL: "LINUX_SLL",
    LINKTYPE_IPV4: "IPV4",
    LINKTYPE_IPV6: "IPV6",
    LINKTYPE_LINUX_SLL2: "LINUX_SLL2",
    0x6C: "LOOP",
    9: "PPP",
    50: "PPP_HDLC",
    104: "C_HDLC",
    105: "IEEE802_11",
    127: "IEEE802_11_RADIOTAP",
    195: "IEEE802_15_4_WITHFCS",
    230: "IEEE802_15_4_NOFCS",
}


def linktype_name(lt: int | None) -> str:
    """A short name for messages: 'ETHERNET', or 'LINKTYPE_147' when unknown."""
    if lt is None:
        return "none"
    return LINKTYPE_NAMES.get(lt, f"LINKTYPE_{lt}")


def _norm_linktype(network: int) -> int:
    lt = network & 0x0FFFFFFF
    return DLT_RAW_ALIASES.get(lt, lt)


# libpcap's MAXIMUM_SNAPLEN: no sane capture has a bigger packet record.
MAX_CAPLEN = 262144
# The biggest pcapng block we parse (libpcap and Wireshark cap blocks at 16 MiB).
MAX_BLOCK = 16 * 1024 * 1024

PCAPNG_SHB = 0x0A0D0D0A
PCAPNG_IDB = 1
PCAPNG_PB = 2
PCAPNG_SPB = 3
PCAPNG_EPB = 6
BYTE_ORDER_MAGIC = 0x1A2B3C4D

OPT_ENDOFOPT = 0
OPT_COMMENT = 1
SHB_HARDWARE = 2
SHB_OS = 3
SHB_USERAPPL = 4
IF_TSRESOL = 9
IF_TSOFFSET = 14

_PCAP_MAGICS = {
    b"\xd4\xc3\xb2\xa1": ("<", 1000),
    b"\xa1\xb2\xc3\xd4": (">", 1000),
    b"\x4d\x3c\xb2\xa1": ("<", 1),
    b"\xa1\xb2\x3c\x4d": (">", 1),
}
_OTHER_MAGICS = {
    b"\x1f\x8b": "gzip-compressed file",
    b"\x28\xb5\x2f\xfd": "zstd-compressed file",
    b"\x34\xcd\xb2\xa1": "modified (Kuznetzov) pcap, not supported",
    b"\xa1\xb2\xcd\x34": "modified (Kuznetzov) pcap, not supported",
}

Frame = namedtuple("Frame", "index ts_ns linktype data orig_len iface comment",
                   defaults=(None,))
Frame.__doc__ = """One captured frame.

index     0-based position among the frames the Capture yielded
ts_ns     time stamp in nanoseconds since the epoch (0 for a Simple Packet Block)
linktype  LINKTYPE_* of the frame's interface (12 / 14 read as LINKTYPE_RAW)
data      the captured bytes (caplen = len(data))
orig_len  the frame's length on the wire
iface     pcapng interface id within its section (0 for pcap)
comment   pcapng opt_comment text (several joined by newlines), else None
"""


class CaptureError(Exception):
    """The file is not a capture we can read; str() is one line."""


def _one_line(s: str) -> str:
    return " ".join(str(s).split())


class _Stop(Exception):
    """Internal: the stream ends here (.truncated / .problem already set)."""


class _Interface:
    __slots__ = ("linktype", "snaplen", "scale_num", "scale_shift", "scale_den", "offset_ns")

    def __init__(self, linktype: int, snaplen: int):
        self.linktype = linktype
        self.snaplen = snaplen
        # ts_ns = units * scale_num // scale_den >> scale_shift (+ offset)
        self.scale_num, self.scale_den, self.scale_shift = 1000, 1, 0
        self.offset_ns = 0

    def set_tsresol(self, v: int) -> None:
        n = v & 0x7F
        if v & 0x80:                       # 2^-n seconds
            self.scale_num, self.scale_den, self.scale_shift = 10 ** 9, 1, n
        elif n <= 9:                       # 10^-n seconds
            self.scale_num, self.scale_den, self.scale_shift = 10 ** (9 - n), 1, 0
        else:
            self.scale_num, self.scale_den, self.scale_shift = 1, 10 ** (n - 9), 0

    def ts_ns(self, units: int) -> int:
        t = units * self.scale_num
        if self.scale_den != 1:
            t //= self.scale_den
        if self.scale_shift:
            t >>= self.scale_shift
        return t + self.offset_ns


class Capture:
    """An iterator of Frame over a pcap or pcapng file (see open_capture).

    .format      "pcap" or "pcapng"
    .linktype    link type of the first interface (None: no IDB before the first packet)
    .snaplen     snaplen of the file header / first interface
    .frames      frames yielded so far
    .bad_frames  pcapng packet blocks skipped for naming a missing interface
    .sections    pcapng sections seen (1 for pcap)
    .truncated   the file ended inside a header, record or block
    .problem     one-line reason iteration stopped early, or None
    .done        iteration has ended (cleanly or not)
    """

    def __init__(self, f, name: str):
        self._f = f
        self.name = name
        self.format: str | None = None
        self.linktype: int | None = None
        self.snaplen: int | None = None
        self.frames = 0
        self.bad_frames = 0
        self.sections = 0
        self.truncated = False
        self.problem: str | None = None
        self.done = False
        self._pending = None            # pcapng: one read-ahead packet block
        self._ifaces: list[_Interface] = []
        magic = self._read_exact_or_err(4)
        if magic in _PCAP_MAGICS:
            self._open_pcap(magic)
        elif magic == b"\x0a\x0d\x0d\x0a":
            self._open_pcapng(magic)
        else:
            why = _OTHER_MAGICS.get(magic) or _OTHER_MAGICS.get(magic[:2])
            raise CaptureError(_one_line(
                f"{name}: not a pcap or pcapng file"
                f" ({why or f'magic 0x{magic.hex()}'})"))

    # ----------------------------------------------------------- plumbing

    def _read_exact_or_err(self, n: int) -> bytes:
        try:
            b = self._f.read(n)
        except OSError as e:
            raise CaptureError(_one_line(f"{self.name}: cannot read: {e.strerror or e}")) from None
        if len(b) < n:
            raise CaptureError(_one_line(
                f"{self.name}: too short to be a capture ({len(b)} bytes)"))
        return b

    def _stop(self, problem: str | None, truncated: bool = False) -> None:
        if truncated:
            self.truncated = True
        if problem is not None and self.problem is None:
            self.problem = _one_line(problem)
        raise _Stop

    def _read(self, n: int, what: str, eof_ok: bool = False) -> bytes:
        """n bytes, or stop: b'' at a clean end of file when eof_ok."""
        try:
            b = self._f.read(n)
        except (OSError, ValueError) as e:
            self._stop(f"read error in {what}: {getattr(e, 'strerror', None) or e}")
        if len(b) == n:
            return b
        if not b and eof_ok:
            self._stop(None)
        self._stop(f"file ends inside {what} ({len(b)} of {n} bytes)", truncated=True)

    # ----------------------------------------------------------- pcap

    def _open_pcap(self, magic: bytes) -> None:
        self.format = "pcap"
        self.sections = 1
        bo, self._tsmul = _PCAP_MAGICS[magic]
        self._rec = struct.Struct(bo + "IIII")
        try:
            rest = self._read(20, "the pcap file header")
        except _Stop:
            self.done = True
            return
        _vmaj, _vmin, _zone, _sig, snaplen, network = struct.unpack(bo + "HHiIII", rest)
        self.snaplen = snaplen
        self.linktype = _norm_linktype(network)
        self._ifaces = [_Interface(self.linktype, snaplen)]
        self._next_frame = self._next_pcap

    def _next_pcap(self) -> Frame:
        hdr = self._read(16, f"the record header of frame {self.frames + 1}", eof_ok=True)
        sec, frac, incl, orig = self._rec.unpack(hdr)
        if incl > MAX_CAPLEN:
            self._stop(f"frame {self.frames + 1}: caplen {incl} > maximum {MAX_CAPLEN}")
        data = self._read(incl, f"the data of frame {self.frames + 1}")
        fr = Frame(self.frames, sec * 1_000_000_000 + frac * self._tsmul,
                   self.linktype, data, orig, 0)
        return fr

    # ----------------------------------------------------------- pcapng

    def _open_pcapng(self, magic: bytes) -> None:
        self.format = "pcapng"
        self._next_frame = self._next_pcapng
        self._magic_read = magic
        # Handle the leading non-packet blocks now so .linktype is known; the
        # first packet block is kept in _pending.
        try:
            self._pending = self._next_packet_block()
        except _Stop:
            self.done = True
            if self.sections == 0 and not self.truncated:
                # the first SHB is unusable: this is no capture we can read
                raise CaptureError(_one_line(f"{self.name}: {self.problem}")) from None

    def _block(self):
        """(type, body, bo) of the next block; body excludes type/len/trailer.

        Unknown block types are skipped here (body None is never returned).
        """
        while True:
            if self._magic_read is not None:      # first SHB: magic already read
                btype_raw, self._magic_read = self._magic_read, None
                first = True
            else:
                btype_raw = self._read(4, "a block header", eof_ok=True)
                first = False
            if btype_raw == b"\x0a\x0d\x0d\x0a":
                return self._shb_block(first)
            if self.sections == 0:
                self._stop("no Section Header Block at the start")
            bo = self._bo
            btype = struct.unpack(bo + "I", btype_raw)[0]
            (blen,) = struct.unpack(bo + "I", self._read(4, f"the header of a block of type {btype}"))
            self._check_len(btype, blen)
            if btype in (PCAPNG_IDB, PCAPNG_EPB, PCAPNG_SPB, PCAPNG_PB):
                if blen > MAX_BLOCK:
                    self._stop(f"block of type {btype} is {blen} bytes, more than {MAX_BLOCK}")
                rest = self._read(blen - 8, f"a block of type {btype} ({blen} bytes)")
                self._check_trailer(btype, blen, rest[-4:])
                return btype, rest[:-4], bo
            self._skip(btype, blen)

    def _check_len(self, btype: int, blen: int) -> None:
        if blen < 12 or blen % 4:
            self._stop(f"block of type 0x{btype:x} has a bad total length {blen}")

    def _check_trailer(self, btype: int, blen: int, tail: bytes) -> None:
        (t,) = struct.unpack(self._bo + "I", tail)
        if t != blen:
            self._stop(f"block of type 0x{btype:x}: total length {blen} but trailing copy {t}")

    def _skip(self, btype: int, blen: int) -> None:
        what = f"a block of type 0x{btype:x} ({blen} bytes)"
        f = self._f
        try:
            pos = f.tell()
            end = f.seek(0, io.SEEK_END)
            if pos + blen - 8 > end:
                f.seek(end)
                self._stop(f"file ends inside {what} ({end - pos + 8} of {blen} bytes)",
                           truncated=True)
            f.seek(pos + blen - 12)
        except (OSError, ValueError) as e:
            self._stop(f"read error in {what}: {getattr(e, 'strerror', None) or e}")
        self._check_trailer(btype, blen, self._read(4, what))

    def _shb_block(self, first: bool):
        hdr = self._read(8, "a Section Header Block header")
        blen_raw, bom = hdr[:4], hdr[4:]
        if bom == b"\x4d\x3c\x2b\x1a":
            bo = "<"
        elif bom == b"\x1a\x2b\x3c\x4d":
            bo = ">"
        else:
            self._stop(f"Section Header Block has a bad byte-order magic 0x{bom.hex()}")
        (blen,) = struct.unpack(bo + "I", blen_raw)
        if blen < 28 or blen % 4:
            self._stop(f"Section Header Block has a bad total length {blen}")
        if blen > MAX_BLOCK:
            self._stop(f"Section Header Block is {blen} bytes, more than {MAX_BLOCK}")
        rest = self._read(blen - 12, f"a Section Header Block ({blen} bytes)")
        self._bo = bo
        self._check_trailer(PCAPNG_SHB, blen, rest[-4:])
        (major,) = struct.unpack(bo + "H", rest[:2])
        if major != 1:
            self._stop(f"pcapng section version {major} is not supported")
        self.sections += 1
        self._ifaces = []
        return PCAPNG_SHB, None, bo

    def _options(self, buf: bytes, off: int, bo: str):
        """Yield (code, value) of an options list; stops quietly when malformed."""
        n = len(buf)
        while off + 4 <= n:
            code, ln = struct.unpack_from(bo + "HH", buf, off)
            if code == OPT_ENDOFOPT:
                return
            off += 4
            if off + ln > n:
                return
            yield code, buf[off:off + ln]
            off += (ln + 3) & ~3

    def _comment(self, body: bytes, off: int, bo: str):
        if off + 4 > len(body):
            return None
        cs = [v.decode("utf-8", "replace") for c, v in self._options(body, off, bo)
              if c == OPT_COMMENT]
        return "\n".join(cs) if cs else None

    def _next_packet_block(self):
        """Process blocks until a packet block; return (type, body, bo)."""
        while True:
            btype, body, bo = self._block()
            if btype == PCAPNG_SHB:
                continue
            if btype == PCAPNG_IDB:
                if len(body) < 8:
                    self._stop(f"Interface Description Block too short ({len(body) + 12} bytes)")
                lt, _res, snaplen = struct.unpack_from(bo + "HHI", body)
                ifc = _Interface(_norm_linktype(lt), snaplen)
                for code, v in self._options(body, 8, bo):
                    if code == IF_TSRESOL and len(v) >= 1:
                        ifc.set_tsresol(v[0])
                    elif code == IF_TSOFFSET and len(v) == 8:
                        ifc.offset_ns = struct.unpack(bo + "q", v)[0] * 1_000_000_000
                self._ifaces.append(ifc)
                if self.linktype is None:
                    self.linktype, self.snaplen = ifc.linktype, snaplen
                continue
            return btype, body, bo

    def _next_pcapng(self) -> Frame:
        while True:
            if self._pending is not None:
                btype, body, bo = self._pending
                self._pending = None
            else:
                btype, body, bo = self._next_packet_block()
            n = self.frames + 1
            if btype == PCAPNG_EPB or btype == PCAPNG_PB:
                if len(body) < 20:
                    self._stop(f"packet block {n} too short ({len(body) + 12} bytes)")
                if btype == PCAPNG_EPB:
                    ifid, hi, lo, caplen, orig = struct.unpack_from(bo + "IIIII", body)
                else:
                    ifid, _drops, hi, lo, caplen, orig = struct.unpack_from(bo + "HHIIII", body)
                if caplen > MAX_CAPLEN:
                    self._stop(f"frame {n}: caplen {caplen} > maximum {MAX_CAPLEN}")
                if caplen > len(body) - 20:
                    self._stop(f"frame {n}: caplen {caplen} exceeds its block"
                               f" ({len(body) - 20} bytes of data)")
                if ifid >= len(self._ifaces):
                    self.bad_frames += 1
                    continue
                ifc = self._ifaces[ifid]
                data = body[20:20 + caplen]
                comment = self._comment(body, 20 + ((caplen + 3) & ~3), bo)
                return Frame(self.frames, ifc.ts_ns((hi << 32) | lo), ifc.linktype,
                             data, orig, ifid, comment)
            # Simple Packet Block
            if len(body) < 4:
                self._stop(f"Simple Packet Block {n} too short ({len(body) + 12} bytes)")
            if not self._ifaces:
                self.bad_frames += 1
                continue
            ifc = self._ifaces[0]
            (orig,) = struct.unpack_from(bo + "I", body)
            caplen = min(orig, len(body) - 4)
            if ifc.snaplen:
                caplen = min(caplen, ifc.snaplen)
            if caplen > MAX_CAPLEN:
                self._stop(f"frame {n}: caplen {caplen} > maximum {MAX_CAPLEN}")
            return Frame(self.frames, 0, ifc.linktype, body[4:4 + caplen], orig, 0)

    # ----------------------------------------------------------- iteration

    def __iter__(self):
        return self

    def __next__(self) -> Frame:
        if self.done:
            raise StopIteration
        try:
            fr = self._next_frame()
        except _Stop:
            self.done = True
            raise StopIteration from None
        except (struct.error, ValueError, OSError, MemoryError) as e:   # belt and braces
            self.done = True
            if self.problem is None:
                self.problem = _one_line(f"frame {self.frames + 1}: {type(e).__name__}: {e}")
            raise StopIteration from None
        self.frames += 1
        return fr

    def close(self) -> None:
        self.done = True
        self._pending = None
        f, self._f = self._f, None
        if f is not None:
            f.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def __repr__(self) -> str:
        return (f"<Capture {self.name!r} {self.format} {linktype_name(self.linktype)}"
                f" frames={self.frames} truncated={self.truncated} problem={self.problem!r}>")


def open_capture(path, bufsize: int = 1 << 16) -> Capture:
    """Open a pcap / pcapng file for streaming; raises CaptureError (one line)."""
    name = os.fspath(path)
    try:
        f = open(name, "rb", buffering=bufsize)
    except OSError as e:
        raise CaptureError(_one_line(f"{name}: cannot open: {e.strerror or e}")) from None
    try:
        return Capture(f, str(name))
    except CaptureError:
        f.close()
        raise
    except Exception as e:                         # never anything but CaptureError
        f.close()
        raise CaptureError(_one_line(f"{name}: {type(e).__name__}: {e}")) from None


# =============================================================== writer

def _opt(code: int, value: bytes) -> bytes:
    return struct.pack("<HH", code, len(value)) + value + b"\0" * (-len(value) % 4)


_END = struct.pack("<HH", OPT_ENDOFOPT, 0)


def _block(btype: int, body: bytes) -> bytes:
    blen = 12 + len(body)
    return struct.pack("<II", btype, blen) + body + struct.pack("<I", blen)


class PcapngWriter:
    """Write a little-endian pcapng file: SHB, one IDB (ns time stamps), EPBs.

    `dst` is a path or a binary file object (left open by close()).  Data
    longer than snaplen is cut to snaplen, orig_len keeping the full length.
    """

    def __init__(self, dst, linktype: int = LINKTYPE_ETHERNET, snaplen: int = MAX_CAPLEN,
                 hardware: str | None = None, os: str | None = None,
                 application: str | None = "netcabal"):
        if hasattr(dst, "write"):
            self._f, self._own = dst, False
        else:
            self._f, self._own = open(dst, "wb"), True
        self.linktype = linktype
        self.snaplen = snaplen
        self.frames = 0
        opts = b""
        for code, s in ((SHB_HARDWARE, hardware), (SHB_OS, os), (SHB_USERAPPL, application)):
            if s:
                opts += _opt(code, s.encode("utf-8"))
        if opts:
            opts += _END
        shb = struct.pack("<IHHq", BYTE_ORDER_MAGIC, 1, 0, -1) + opts
        idb = (struct.pack("<HHI", linktype, 0, snaplen)
               + _opt(IF_TSRESOL, bytes([9])) + _END)
        self._f.write(_block(PCAPNG_SHB, shb) + _block(PCAPNG_IDB, idb))

    def write(self, ts_ns: int, data: bytes, comment: str | None = None,
              orig_len: int | None = None) -> None:
        if self._f is None:
            raise ValueError("write to a closed PcapngWriter")
        ts_ns = int(ts_ns)
        if not 0 <= ts_ns < 1 << 64:
            raise ValueError(f"time stamp {ts_ns} ns out of range")
        data = bytes(data)
        if orig_len is None:
            orig_len = len(data)
        if self.snaplen and len(data) > self.snaplen:
            data = data[:self.snaplen]
        body = [struct.pack("<IIIII", 0, ts_ns >> 32, ts_ns & 0xFFFFFFFF, len(data), orig_len),
                data, b"\0" * (-len(data) % 4)]
        if comment is not None:
            body += [_opt(OPT_COMMENT, comment.encode("utf-8")), _END]
        self._f.write(_block(PCAPNG_EPB, b"".join(body)))
        self.frames += 1

    def close(self) -> None:
        f, self._f = self._f, None
        if f is None:
            return
        if self._own:
            f.close()
        else:
            f.flush()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False
