"""The calibration table: cycles charged by each code path.

Every path charges a fixed number of CPU cycles from this table (a scenario's
`[costs]` table overrides any entry), converted to nanoseconds at the core's
clock rate.  Memory is not yet priced separately (design §4; the cache model
is a later work item), so these figures include typical cache behaviour.

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
    # one hardware interrupt: vector entry, ithread schedule and switch
    "interrupt": 2000,
    # waking the netisr software-interrupt thread (swi_sched) from a sleeper
    "netisr_wakeup": 1000,
}


def merged(overrides: dict | None) -> dict:
    costs = dict(DEFAULT_COSTS)
    if overrides:
        costs.update(overrides)
    return costs


def to_ns(cycles: int, ghz: float) -> int:
    """Cycles to integer nanoseconds at `ghz` (rounded to nearest)."""
    return int(cycles / ghz + 0.5)
