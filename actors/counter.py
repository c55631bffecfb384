"""counter: a thread's protocol statistics, kept as FreeBSD keeps them.

What this models (counter(9), sys/sys/counter.h; VNET_PCPUSTAT in
sys/net/vnet.h; IPSTAT_INC and friends in sys/netinet/ip_var.h): FreeBSD
keeps ipstat, ip6stat, udpstat and tcpstat as arrays of 64-bit counters, one
per statistic (the struct's field offset divided by eight), per CPU, and
sums the CPUs' copies when netstat reads them.  A `Stat` here is one
thread's copy: the statistics the input path bumps for every packet sit in
an int64 array at fixed indexes (`IPS_TOTAL`, ..., and the 256 entries of
ip6s_nxthist), which the compiled hot paths add to in C; every other name
(the drops, the rare paths) is kept by name.  Runs sum the threads' copies.

`Stat` reads and writes by name as the plain dict it replaces did
(`cnt["udps_nosum"] += 1`, `items()`), so cold paths and tests need not know
the indexes.  Left out: the per-CPU copies of one thread (a thread's counts
are one CPU's at a time here) and the counters' zeroing by `netstat -z`.
"""

from __future__ import annotations

from .cache import zeros

# The statistics every packet of the common paths bumps (and every
# fragment: reassembly), in array order.
HOT = ("ips_total", "ips_delivered", "ip6s_total", "ip6s_delivered", "udps_ipackets",
       "tcps_rcvtotal", "ips_fragments", "ips_reassembled", "ip6s_fragments",
       "ip6s_reassembled")
IPS_TOTAL = 0
IPS_DELIVERED = 1
IP6S_TOTAL = 2
IP6S_DELIVERED = 3
UDPS_IPACKETS = 4
TCPS_RCVTOTAL = 5
IPS_FRAGMENTS = 6
IPS_REASSEMBLED = 7
IP6S_FRAGMENTS = 8
IP6S_REASSEMBLED = 9
NXTHIST = len(HOT)          # ip6s_nxthist.<n> for n in 0..255 follow
NAMES = HOT + tuple(f"ip6s_nxthist.{n}" for n in range(256))
INDEX = {name: i for i, name in enumerate(NAMES)}


class Stat:
    """One thread's counters: `v` (int64, NAMES order) and `more` (by name)."""

    __slots__ = ("v", "more")

    def __init__(self):
        self.v = zeros(len(NAMES))
        self.more = {}

    def __getitem__(self, name: str) -> int:
        i = INDEX.get(name)
        if i is None:
            return self.more.get(name, 0)
        return self.v[i]

    def __setitem__(self, name: str, value: int) -> None:
        i = INDEX.get(name)
        if i is None:
            self.more[name] = value
        else:
            self.v[i] = value

    def items(self) -> list:
        """(name, count) for every statistic counted (none at zero from the
        array; by-name entries as they were set), in no particular order."""
        out = [(NAMES[i], self.v[i]) for i in range(len(NAMES)) if self.v[i]]
        out.extend(self.more.items())
        return out
