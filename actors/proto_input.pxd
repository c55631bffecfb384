# Cython declarations for actors/proto_input.py, read only when the model
# is compiled (actors/_core.py): ProtoInput becomes an extension type (its
# fields in a C struct).  Values stay Python objects: no arithmetic changes.

cdef class ProtoInput:
    cdef public object c_ip, c_ip6, c_udp, c_tcp, c_reass, Q, cpu, mem, uma, tap
    cdef public object absorbed, counters, consumed, reass4, reass6
    cdef public dict ifaddr_rec, ifaddr6_rec, vnets, vnet_actor, drops
