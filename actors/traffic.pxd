# Cython declarations for actors/traffic.py, read only when the model is
# compiled (actors/_core.py): TrafficSource becomes an extension type (its
# fields in a C struct; TcpSource stays a Python subclass) whose frame
# builder its own loop calls directly.  Values stay Python objects: no
# arithmetic changes.

cdef class TrafficSource:
    cdef public object index, next_id, rate, start_ns, stop_ns, poisson, rng, flow_cdf
    cdef public object sizes, size_cdf, bad_ip, bad_udp, frag, tag, flows, dst_mac
    cdef public object next_t, sent, blk, pos
    cdef public dict templates

    cpdef _template(self, f, size)
    cpdef bytes frame(self, f, size, pkt_id, corrupt)
