# Cython declarations for actors/proto_input.py, read only when the model
# is compiled (actors/_core.py): ProtoInput becomes an extension type (its
# fields in a C struct) whose input path the NIC's and netisr's hot loops
# call directly.  Values stay Python objects: no arithmetic changes.
from actors.base cimport Tap
from actors.cache cimport MemView
from actors.mbuf cimport Mbuf, Uma, m_freem
from actors.ip_input cimport ip_input, ip_deliver
from actors.ip6_input cimport ip6_input, ip6_nexthdr
from actors.udp_input cimport udp_input_hdr

cdef class ProtoInput:
    cdef public object c_ip, c_ip6, c_udp, c_tcp, c_reass, Q, cpu
    cdef public object absorbed, counters, consumed, reass4, reass6
    cdef public dict ifaddr_rec, ifaddr6_rec, vnets, vnet_actor, drops
    cdef public Tap tap
    cdef public Uma uma
    cdef public MemView mem

    cpdef _end(self, m, reason, consumer)
    cpdef input(self, Mbuf m, proto, dict out, now)
    cpdef _to_vnet(self, Mbuf m, dict out, done, kind)
