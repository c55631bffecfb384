# Cython declarations for actors/proto_input.py, read only when the model
# is compiled (actors/_core.py): ProtoInput becomes an extension type (its
# fields in a C struct) whose input path the NIC's and netisr's hot loops
# call directly.  Its costs, quantum and the input path's clock are C int64
# (integer ns, far below 2**63); the other values stay Python objects.
cimport cython
from actors.base cimport Tap
from actors.cache cimport MemView
from actors.mbuf cimport Mbuf, Uma, m_freem
from actors.counter cimport Stat
from actors.ip_input cimport ip_input, ip_deliver
from actors.ip6_input cimport ip6_input, ip6_nexthdr
from actors.udp_input cimport udp_input_hdr
from actors.inet cimport bslice, frozen
from actors.ip_reass cimport Reass, rebuild_v4, rebuild_v6

cdef Py_ssize_t _IP, _IP6, _TCP, _UDP

cdef class ProtoInput:
    cdef public long long c_ip, c_ip6, c_udp, c_tcp, c_reass, Q, l_w
    cdef public object l_out, l_vnet, l_kind
    cdef public list l_batch
    cdef public object cpu
    cdef public object absorbed, consumed
    cdef public Reass reass4, reass6
    cdef public Stat counters
    cdef public long long[::1] ifaddr_rec, ifaddr6_rec
    cdef public dict vnets, vnet_actor, drops
    cdef public Tap tap
    cdef public Uma uma
    cdef public MemView mem

    cpdef _end(self, m, reason, consumer)
    @cython.locals(tap=Tap, uma=Uma, f=list, fm=Mbuf)
    cdef _absorb(self, list frags, Mbuf datagram)
    cdef _adopt(self, Mbuf m2, Mbuf first)
    @cython.locals(d=bytes, o=Py_ssize_t, offw=Py_ssize_t, mf=bint, off=Py_ssize_t, data=bytes,
                   res=tuple, first=tuple, fhl=Py_ssize_t, payload=bytes, frags=list, m2=Mbuf)
    cdef Mbuf _reass4(self, Mbuf m, Py_ssize_t hl, long long now, Stat cnt)
    @cython.locals(d=bytes, o=Py_ssize_t, f=Py_ssize_t, nxt=Py_ssize_t, offw=Py_ssize_t, mf=bint,
                   off=Py_ssize_t, data=bytes, first=bytearray, res=tuple, hdr=tuple,
                   unfrag=Py_ssize_t, payload=bytes, frags=list, m2=Mbuf)
    cdef Mbuf _reass6(self, Mbuf m, Py_ssize_t foff, Py_ssize_t nxt_off, long long now, Stat cnt)
    @cython.locals(cost=cython.longlong, cnt=Stat, ulp=Py_ssize_t, off=Py_ssize_t)
    cpdef long long input(self, Mbuf m, Py_ssize_t proto, dict out, long long now) except? -1
    @cython.locals(w=cython.longlong, b=list)
    cpdef _to_vnet(self, Mbuf m, dict out, long long done, kind)
