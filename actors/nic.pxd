# Cython declarations for actors/nic.py, read only when the model is
# compiled (actors/_core.py): Nic and RxQueue become extension types (their
# fields in a C struct).  Values stay Python objects: no arithmetic changes.
from actors.base cimport Actor

cdef class RxQueue:
    cdef public object direct, drops, floating, hybrid, index, interrupts, irq
    cdef public object last_intr, packets, pk, ring, running, thread, vec_cpu, vector

cdef class Nic(Actor):
    cdef public object name, Q, accept_any, arrived, c_csw, c_drop, c_intr, c_migr
    cdef public object c_pkt, c_pkt_direct, c_vlan, direct, dispatch, drops, hash_memo
    cdef public object hybrid, if_index, if_vnet, indir, iphdr_memo, irq_balance, itr_ns
    cdef public object last_q, link_input, linktype, loads, mac, mem, ncpu, pis, points
    cdef public object promisc, pub_c, ring_size, rss, rxcsum, rxq, sources, tap
    cdef public object tcp_peers, threads, uma, vlans, vnet, vnet_actors, vout, window
    cdef public object ws_cpu, ws_state
