"""in_pcb: protocol control blocks, their hash tables, references and locks
(sys/netinet/in_pcb.c, in_pcb.h).

What this models.  A `PcbInfo` is one protocol's table of pcbs in one vnet
(udbinfo, tcbinfo), or one group's table under pcbgroups: connected pcbs
hashed on the full 4-tuple, listeners and bound sockets on (local address,
local port) and (any, local port).  `in_pcblookup` tries the exact match,
then the bound address, then the wildcard, as in_pcblookup_hash does.

References follow in_pcbref / in_pcbrele: a pcb starts with the one
reference its table holds; a thread that must keep a pcb after dropping the
table's lock takes a reference; `in_pcbfree` (a close) takes the pcb out of
its table, marks it freed and drops the table's reference; the pcb's memory
goes when the last reference goes, never before.  A freed pcb that is used
raises `PcbUseAfterFree`; one released too often raises `PcbRefUnderflow`.

Locks (actors/lock.py): every table has its pcbinfo lock, every pcb its own
(named like FreeBSD's lock classes: "udp", "tcp" for the tables, "udpinp",
"tcpinp" for the pcbs).

What it leaves out: the port-reservation tables (inp_portlist), the
lbgroup (SO_REUSEPORT_LB) tables, multicast membership, jail address
checks, SMR-based lockless lookup (FreeBSD 13+), and pcb memory zones.
"""

from __future__ import annotations

from .lock import Lock


class PcbUseAfterFree(AssertionError):
    pass


class PcbRefUnderflow(AssertionError):
    pass


class Pcb:
    __slots__ = ("id", "proto", "fam", "laddr", "lport", "faddr", "fport", "refs", "freed", "gone",
                 "sock", "lock", "busy_until", "busy_thread", "tcb")

    def __init__(self, pid: int, proto: str, fam: int, laddr: bytes, lport: int,
                 faddr: bytes = b"", fport: int = 0, sock=None):
        self.id = pid
        self.proto = proto
        self.fam = fam
        self.laddr, self.lport, self.faddr, self.fport = laddr, lport, faddr, fport
        self.refs = 1               # the table's reference
        self.freed = False          # in_pcbfree has run (INP_FREED)
        self.gone = False           # the memory is released
        self.sock = sock
        self.lock = Lock(proto + "inp")
        self.busy_until = 0         # end of the last input run under this pcb
        self.busy_thread = None
        self.tcb = None


class PcbInfo:
    def __init__(self, name: str, kind: str = "mtx"):
        self.name = name
        self.lock = Lock(name, kind)
        self.exact = {}             # (fam, faddr, fport, laddr, lport) -> Pcb
        self.bound = {}             # (fam, laddr, lport) -> Pcb; laddr b"" = any
        self.nspec = 0              # entries of `bound` with a specific laddr
        self.wild = {}              # fam -> lport -> Pcb: the entries of `bound` with
                                    # laddr any, for the lookup (no key tuple made)
        self.allocated = 0
        self.released = 0

    def insert(self, pcb: Pcb) -> Pcb:
        if pcb.fport:
            self.exact[(pcb.fam, pcb.faddr, pcb.fport, pcb.laddr, pcb.lport)] = pcb
        else:
            key = (pcb.fam, pcb.laddr, pcb.lport)
            if pcb.laddr and key not in self.bound:
                self.nspec += 1
            self.bound[key] = pcb
            if not pcb.laddr:
                self.wild.setdefault(pcb.fam, {})[pcb.lport] = pcb
        self.allocated += 1
        return pcb

    def lookup(self, fam: int, faddr: bytes, fport: int, laddr: bytes, lport: int):
        """in_pcblookup: exact 4-tuple, then the bound address, then any.
        A table with no connected pcbs, or none bound to a specific address,
        is not searched for them (the answer is the same: no key made)."""
        p = None
        if self.exact:
            p = self.exact.get((fam, faddr, fport, laddr, lport))
        if p is None:
            if self.nspec:
                p = self.bound.get((fam, laddr, lport))
            if p is None:
                w = self.wild.get(fam)
                if w is not None:
                    p = w.get(lport)
        return p

    def live(self) -> int:
        return self.allocated - self.released


def in_pcbref(pcb: Pcb) -> None:
    if pcb.gone:
        raise PcbUseAfterFree(f"pcb {pcb.id} referenced after its memory was released")
    pcb.refs += 1


def in_pcbrele(info: PcbInfo, pcb: Pcb) -> bool:
    """Drop a reference; True if that was the last one of a freed pcb (its
    memory goes now)."""
    if pcb.gone:
        raise PcbUseAfterFree(f"pcb {pcb.id} released after its memory was released")
    if pcb.refs <= 0:
        raise PcbRefUnderflow(f"pcb {pcb.id}: more releases than references")
    if pcb.refs == 1 and not pcb.freed:
        raise PcbRefUnderflow(f"pcb {pcb.id}: last reference dropped while still in its table")
    pcb.refs -= 1
    if pcb.refs == 0:
        pcb.gone = True
        info.released += 1
        return True
    return False


def in_pcbfree(info: PcbInfo, pcb: Pcb) -> bool:
    """Close: out of the table, INP_FREED, the table's reference dropped."""
    if pcb.freed or pcb.gone:
        raise PcbUseAfterFree(f"pcb {pcb.id} freed twice")
    if pcb.fport:
        info.exact.pop((pcb.fam, pcb.faddr, pcb.fport, pcb.laddr, pcb.lport), None)
    elif info.bound.pop((pcb.fam, pcb.laddr, pcb.lport), None) is not None:
        if pcb.laddr:
            info.nspec -= 1
        else:
            del info.wild[pcb.fam][pcb.lport]
    pcb.freed = True
    return in_pcbrele(info, pcb)


def use(pcb: Pcb) -> Pcb:
    """A thread touches the pcb's fields: only legal while it is not gone."""
    if pcb.gone:
        raise PcbUseAfterFree(f"pcb {pcb.id} used after its memory was released")
    return pcb
