# Cython declarations for actors/vnet.py, read only when the model is
# compiled (actors/_core.py): Vnet and Socket become extension types (their
# fields in a C struct).  Values stay Python objects: no arithmetic changes.
from actors.base cimport Actor

cdef class Socket:
    cdef public object buf, bytes, cc, delivered, fullsock, group, hiwat, name
    cdef public object next_read, pcb_rec, read, read_ns, reader, sb_rec

cdef class Vnet(Actor):
    cdef public object name, Q, c_lookup, c_tcp, c_udp, control, counters, delivered
    cdef public object dispatch, drops, end, last_id, lat_hist, lat_max, lat_sum, later
    cdef public object listeners, lo_index, loads, locking, mem, npcb, pcb_inputs
    cdef public object pcb_overlaps, pending, pub_c, reordered, rlat_hist, senders, seq
    cdef public object sink, sink_pcb, sockets, tap, tcbinfo, tcp_conns, tcp_queued
    cdef public object threads, udbinfo, uma, vname, ws_info
