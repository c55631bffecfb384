# Cython declarations for actors/vnet.py, read only when the model is
# compiled (actors/_core.py): Vnet and Socket become extension types (their
# fields in a C struct); the pcbs, pcb tables, sockets, cache view and mbufs
# of the delivery path are declared as their extension types, so that their
# fields are read and their methods called directly.  Values stay Python
# objects: no arithmetic changes.
cimport cython
from actors.base cimport Actor, Tap
from actors.cache cimport MemView
from actors.in_pcb cimport Pcb, PcbInfo, in_pcbref, in_pcbrele, use
from actors.sched cimport Loads
from actors.inet cimport bslice
from actors.mbuf cimport Mbuf, Uma, m_freem, Storage

cdef Py_ssize_t _LAT_TOP
cdef Py_ssize_t _M_PKTS_UDP, _M_PKTS_TCP, _M_CSTATE, _M_DEBT, _M_ISR_STATE, _M_SCHED_POINT
cdef Py_ssize_t _LK_GLOBAL, _LK_PCBREF, _LK_GROUP

@cython.locals(n=Py_ssize_t)
cpdef Py_ssize_t _bit_length(long long x)

cdef class _Pend:
    cdef public object thread
    cdef public long long owed, last, debt

cpdef tuple _owes(_Pend p)

cdef class Socket:
    cdef public object group, name, next_read, read_ns, reader, tap_label
    cdef public long long bytes, cc, delivered, fullsock, hiwat, read
    cdef public list buf
    cdef public long long[::1] pcb_rec, sb_rec

cdef class Vnet(Actor):
    cdef public object name, Q, c_lookup, c_tcp, c_udp, control, counters
    cdef public long long delivered, lat_max, lat_sum, reordered
    cdef public long long[::1] lat_hist
    cdef public object dispatch, drops, later
    cdef public long long end
    cdef public Py_ssize_t lock_mode
    cdef public object listeners, lo_index, locking, npcb, pcb_inputs
    cdef public object pcb_overlaps, pub_c, rlat_hist, senders, seq
    cdef public object sink, sink_pcb, sockets, tcbinfo, tcp_conns, tcp_queued
    cdef public object threads, udbinfo, vname, ws_info
    cdef public dict pending, last_id
    cdef public object p_sender
    cdef public long long p_cpu
    cdef public _Pend p_pend
    cdef public list owing
    cdef public long long t_now
    cdef public _Pend t_pend
    cdef public Tap tap
    cdef public Loads loads
    cdef public Uma uma
    cdef public MemView mem

    @cython.locals(info=PcbInfo, pcb=Pcb, c_lookup=cython.longlong, t_req=cython.longlong,
                   start=cython.longlong, run0=cython.longlong, done=cython.longlong,
                   mode=Py_ssize_t)
    cpdef _locked_input(self, Mbuf m, fam, faddr, fport, laddr, lport, long long t_end, thread,
                        infos, long long c_udp, sink=*)
    @cython.locals(buf=list, k=Py_ssize_t, m=Mbuf)
    cpdef _read(self, Socket s, now)
    cpdef _drop(self, m, reason)
    @cython.locals(s=Socket, pcb=Pcb, mem=MemView, mb=Mbuf, st=Storage, d=bytes, o=Py_ssize_t,
                   l4=Py_ssize_t, arrivals=list, pend=_Pend, info=PcbInfo, addrs=bint,
                   key=cython.longlong, what=cython.longlong, ln=cython.longlong,
                   code=Py_ssize_t, code_of=dict)
    cpdef step(self, start, end, list inbox)
    @cython.locals(pcb=Pcb, stamp=cython.longlong, owed=cython.longlong,
                   gap=cython.longlong, t_end=cython.longlong, wait=cython.longlong)
    cpdef _stall(self, Mbuf m, _Pend pend, fam, faddr, fport, laddr, lport, infos,
                 long long cost, sink=*)
    @cython.locals(thread=tuple, pend=_Pend)
    cpdef _Pend _pend_of(self, sender, long long c, long long stamp)
    @cython.locals(mem=MemView, ns=cython.longlong)
    cpdef _touch_pcb(self, Mbuf m, Socket s, _Pend pend)
    @cython.locals(lat=cython.longlong, last=list, b=Py_ssize_t)
    cpdef _deliver(self, Socket s, Mbuf m, long long now, fkey, sender, long long nbytes)
