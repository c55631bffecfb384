"""The calibration table: cycles charged by each code path.

Every path charges a fixed number of CPU cycles from this table (a scenario's
`[costs]` table overrides any entry), converted to nanoseconds at the core's
clock rate.  The path figures are compute with the path's own code and
data warm in L1; the objects a path names (mbuf header and packet lines,
queue heads, pcbs, socket buffers, address tables, a thread's working state)
are priced on top, per 64-byte line, by where the line is (actors/cache.py):
the `mem_*` entries below.

Where the numbers come from.  They are order-of-magnitude calibrations, not
measurements of any one machine:

- L. Rizzo, "netmap: a novel framework for fast packet I/O", USENIX ATC
  2012, §2.2-2.3 (FreeBSD HEAD on a 2.93 GHz Core i7): the FreeBSD UDP send
  path costs about 950 ns per packet, of which mbuf allocation ~60-140 ns,
  udp_output ~60 ns, ip_output ~80-100 ns, ether_output ~100 ns, driver
  ~200 ns; the receive path is of the same order.  We scale those to cycles
  at ~3 GHz for the input-side counterparts.
- Interrupt entry plus ithread wakeup and switch: a few microseconds on 2006
  hardware; we take 2,000 cycles (netisr-rss-interrupts facts §6 notes no
  figure is recorded in the sources; treat it as a parameter).
- Memory latencies per line, for a Nehalem-class Xeon 5500 (2 packages, 4
  cores each, 256 KB private L2, 8 MB shared L3) at ~3 GHz, from D.
  Levinthal, "Performance Analysis Guide for Intel Core i7 Processor and
  Intel Xeon 5500 processors" (Intel, 2009), table 2: L2 hit ~10 cycles, L3
  hit ~40, a line modified in another core of the package ~75, a line in
  the other package's cache 100-300 (we take 200), local DRAM ~60 ns (180
  cycles at 3 GHz), remote DRAM ~100 ns (300 cycles).  The sizes are the
  host's defaults (cache.Topology).
- Context switch: C. Li, C. Ding, K. Shen, "Quantifying the cost of context
  switch" (ExpCS 2007) measured a direct cost of about 3.8 µs on a 2 GHz
  Xeon under Linux; FreeBSD's cpu_switch + sched_switch path is of the same
  kind.  We take 4,000 cycles for the switch itself; the cache it disturbs
  is priced by the cache model, not here.  A migration (sched_add on another
  CPU's run queue, the IPI to wake it, tdq locks) adds 2,000 cycles.
- Per-byte costs are 0: receive checksums are offloaded (CSUM_DATA_VALID from
  the NIC, as ix/em/igb do by default); the data is not copied on input.

All values are in cycles per packet unless the name says otherwise.
"""

from __future__ import annotations

DEFAULT_COSTS = {
    # driver: descriptor read, mbuf refill (m_getcl), hash and flags
    "driver_rx": 400,
    # ether_input + ether_demux: header checks, strip, ethertype switch
    "ether_input": 150,
    # one 802.1Q/802.1ad tag: strip into the mbuf, find the VLAN ifnet, re-enter
    "vlan_input": 120,
    # netisr_queue_src: select workstream, lock, enqueue
    "netisr_queue": 150,
    # ip_input: header checks, checksum (trusting offload), ours/forward lookup
    "ip_input": 300,
    "ip6_input": 350,
    # ip_reass / frag6_input: queue lookup, insert, and the copy on completion
    "ip_reass": 400,
    # udp_input: header, checksum (offloaded), in_pcblookup, sbappendaddr, sorwakeup
    "udp_input": 500,
    # tcp_input for a data segment of an established connection (header
    # prediction's fast path, sbappendstream, the ACK decision); the same
    # order as udp_input plus the sequence checks
    "tcp_input": 1200,
    # in_pcblookup's share of udp_input and tcp_input: the hash walk under the pcbinfo lock
    "in_pcblookup": 150,
    # a UDP datagram sent over loopback: the sendto syscall, sosend_dgram,
    # udp_output, ip_output, looutput, if_simloop and netisr_queue (Rizzo's
    # ~950 ns send path less the driver and ether_output, ~650 ns)
    "udp_send": 2000,
    # recvfrom: the syscall, soreceive_dgram, copyout of a small datagram
    "soreceive": 1500,
    # one hardware interrupt: vector entry, filter, mask, schedule the ithread
    "interrupt": 1000,
    # waking the netisr software-interrupt thread (swi_sched) from a sleeper
    "netisr_wakeup": 1000,
    # a switch from one thread to another on a core (the woken thread pays it)
    "context_switch": 4000,
    # a thread placed on another CPU than it last ran on
    "migration": 2000,
    # memory, per 64-byte line, by where it is found (actors/cache.py)
    "mem_local": 10,
    "mem_llc": 40,
    "mem_xcore": 75,
    "mem_xpkg": 200,
    "mem_dram": 180,
    "mem_dram_remote": 300,
}


def merged(overrides: dict | None) -> dict:
    costs = dict(DEFAULT_COSTS)
    if overrides:
        costs.update(overrides)
    return costs


def to_ns(cycles: int, ghz: float) -> int:
    """Cycles to integer nanoseconds at `ghz` (rounded to nearest)."""
    return int(cycles / ghz + 0.5)
