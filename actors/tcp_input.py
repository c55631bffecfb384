"""tcp_input: the TCP receive path once a segment has its pcb
(sys/netinet/tcp_input.c, tcp_reass.c, tcp_syncache.c in spirit).

What this models.  A listener answers a SYN with a SYN-ACK (counted, not
sent: the transmit side is not modelled) and a new connection in
SYN_RECEIVED; the ACK of the SYN-ACK (ack = our ISS + 1) makes it
ESTABLISHED and accepts it (a new socket; tcps_accepts), a bad one draws a
RST (tcps_badsyn).  In ESTABLISHED, a data segment is

  * in order (seq = rcv_nxt): appended to the socket buffer, rcv_nxt moves
    on, and whatever the reassembly queue now holds in order follows it
    (tcps_rcvpack/rcvbyte; tcps_rcvreassfull is not reached: the queue is
    bounded by the window);
  * a duplicate (wholly below rcv_nxt): dropped, answered with an ACK
    (tcps_rcvduppack/rcvdupbyte); partly below: trimmed
    (tcps_rcvpartduppack/rcvpartdupbyte);
  * past the window (rcv_nxt + the socket buffer's space): dropped
    (tcps_rcvpackafterwin) or trimmed to it (tcps_rcvbyteafterwin);
  * out of order (seq > rcv_nxt, in the window): queued for reassembly
    (tcps_rcvoopack/rcvoobyte), answered with a duplicate ACK at once.

ACKs: every second in-order segment is acknowledged at once, the other's ACK
is delayed (tcps_delack); out-of-order and duplicate segments are ACKed at
once; every ACK counts in tcps_sndacks.  A segment for no pcb draws a RST
(tcps_noport, tcps_sndctrl).

What it leaves out: the transmit side (our ACKs and SYN-ACKs are counted,
never sent), timers (delayed-ACK timer, keepalive, 2MSL), FIN and the close
states, urgent data, options (MSS, window scale, SACK, timestamps and PAWS),
the syncache's cookies and limits, congestion control, and ISN secrecy (our
ISS is a function of the 4-tuple the open-loop generator also computes).
"""

from __future__ import annotations

from .traffic import TH_ACK, TH_RST, TH_SYN, server_iss

TCPS_LISTEN, TCPS_SYN_RECEIVED, TCPS_ESTABLISHED = 1, 3, 4
STATE_NAMES = {TCPS_LISTEN: "LISTEN", TCPS_SYN_RECEIVED: "SYN_RCVD", TCPS_ESTABLISHED: "ESTABLISHED"}
SEQ_MOD = 1 << 32


def seq_lt(a: int, b: int) -> bool:
    return ((a - b) & 0xFFFFFFFF) > 0x7FFFFFFF


def seq_diff(a: int, b: int) -> int:
    """a - b in sequence space (signed)."""
    d = (a - b) & 0xFFFFFFFF
    return d - SEQ_MOD if d > 0x7FFFFFFF else d


class TcpCb:
    __slots__ = ("state", "iss", "irs", "rcv_nxt", "reass", "delack", "accepted")

    def __init__(self, state: int, iss: int = 0, irs: int = 0):
        self.state = state
        self.iss = iss
        self.irs = irs
        self.rcv_nxt = (irs + 1) & 0xFFFFFFFF
        self.reass = []            # [(seq, len, mbuf)] sorted by seq from rcv_nxt
        self.delack = 0
        self.accepted = False


def parse(d: bytes, l4: int) -> tuple:
    """(sport, dport, seq, ack, header length, flags) of the TCP header at l4."""
    return ((d[l4] << 8) | d[l4 + 1], (d[l4 + 2] << 8) | d[l4 + 3],
            int.from_bytes(d[l4 + 4:l4 + 8], "big"), int.from_bytes(d[l4 + 8:l4 + 12], "big"),
            (d[l4 + 12] >> 4) << 2, d[l4 + 13])


def tcp_input(tp: TcpCb, seq: int, ack: int, flags: int, plen: int, m, space: int, cnt):
    """One segment for connection `tp` (not a listener).  `space` is the
    socket buffer's room.  Returns (what, payload): what is "deliver" (with
    the in-order [(mbuf, length)] list to append), "queued" (held for
    reassembly), "consumed" (a control segment), or a drop reason."""
    if flags & TH_RST:
        cnt["tcps_drops"] += 1
        return "tcps_rcvrst", None
    if tp.state == TCPS_SYN_RECEIVED:
        if flags & TH_SYN or not flags & TH_ACK or ack != (tp.iss + 1) & 0xFFFFFFFF:
            cnt["tcps_badsyn"] += 1
            cnt["tcps_sndctrl"] += 1            # the RST
            return "tcps_badsyn", None
        tp.state = TCPS_ESTABLISHED
        cnt["tcps_accepts"] += 1
        cnt["tcps_connects"] += 1
        if plen == 0:
            return "consumed", None
    if flags & TH_SYN:                          # a SYN on an established connection
        cnt["tcps_sndacks"] += 1
        return "tcps_rcvbadsyn", None
    if plen == 0:
        cnt["tcps_rcvackpack"] += 1
        return "consumed", None
    nxt = tp.rcv_nxt
    off = seq_diff(seq, nxt)
    if off + plen <= 0:                         # all of it seen already
        cnt["tcps_rcvduppack"] += 1
        cnt["tcps_rcvdupbyte"] += plen
        cnt["tcps_sndacks"] += 1
        return "tcps_rcvduppack", None
    if off >= space:                            # wholly past the window
        cnt["tcps_rcvpackafterwin"] += 1
        cnt["tcps_rcvbyteafterwin"] += plen
        cnt["tcps_sndacks"] += 1
        return "tcps_rcvpackafterwin", None
    trim_front = -off if off < 0 else 0
    if trim_front:
        cnt["tcps_rcvpartduppack"] += 1
        cnt["tcps_rcvpartdupbyte"] += trim_front
    take = plen - trim_front
    if off + plen > space:                      # the tail is past the window
        cnt["tcps_rcvbyteafterwin"] += off + plen - space
        take -= off + plen - space
    if off > 0:                                 # out of order: to the reassembly queue
        for s, ln, _ in tp.reass:
            if s == seq:
                cnt["tcps_rcvduppack"] += 1
                cnt["tcps_rcvdupbyte"] += plen
                cnt["tcps_sndacks"] += 1
                return "tcps_rcvduppack", None
        tp.reass.append((seq, take, m))
        tp.reass.sort(key=lambda r: seq_diff(r[0], nxt))
        cnt["tcps_rcvoopack"] += 1
        cnt["tcps_rcvoobyte"] += take
        cnt["tcps_sndacks"] += 1                # a duplicate ACK at once
        return "queued", None
    out = [(m, take)]
    cnt["tcps_rcvpack"] += 1
    cnt["tcps_rcvbyte"] += take
    nxt = (nxt + take) & 0xFFFFFFFF
    # what the queue now holds in order follows
    while tp.reass:
        s, ln, qm = tp.reass[0]
        d = seq_diff(s, nxt)
        if d > 0:
            break
        tp.reass.pop(0)
        if d + ln <= 0:                         # covered by what came before it
            out.append((qm, 0))
            continue
        out.append((qm, ln + d))
        cnt["tcps_rcvpack"] += 1
        cnt["tcps_rcvbyte"] += ln + d
        nxt = (nxt + ln + d) & 0xFFFFFFFF
    tp.rcv_nxt = nxt
    tp.delack += 1
    if tp.delack >= 2 or len(out) > 1:          # every second segment, or a filled hole
        cnt["tcps_sndacks"] += 1
        tp.delack = 0
    else:
        cnt["tcps_delack"] += 1
    return "deliver", out


def tcp_listen_input(faddr: bytes, fport: int, laddr: bytes, lport: int, seq: int, flags: int, cnt):
    """A segment for a listener: a SYN opens a connection in SYN_RECEIVED
    (returns its TcpCb); anything else draws a RST (returns a reason)."""
    if flags & TH_SYN and not flags & TH_ACK:
        cnt["tcps_sndctrl"] += 1                # the SYN-ACK
        return TcpCb(TCPS_SYN_RECEIVED, server_iss(faddr, fport, laddr, lport), seq)
    cnt["tcps_badsyn"] += 1
    cnt["tcps_sndctrl"] += 1                    # the RST
    return "tcps_badsyn"
