# Cython declarations for actors/traffic.py, read only when the model is
# compiled (actors/_core.py): TrafficSource becomes an extension type (its
# fields in a C struct; TcpSource stays a Python subclass) whose frame
# builder its own loop calls directly.  The frame builder's checksum
# arithmetic is C (64-bit ids) and it writes the checksum and
# the id into its template bytearray in C; its loop reads the block of
# arrivals through C int64 views (vt, vf, vs, vc: times, flows, sizes,
# corruptions), so no Python int is made for a value it only passes on;
# the other values stay Python objects.
cimport cython
from actors.inet cimport frozen, hdr_cksum

cdef class TrafficSource:
    cdef public object index, next_id, rate, start_ns, stop_ns, poisson, rng, flow_cdf
    cdef public object sizes, size_cdf, bad_ip, bad_udp, frag, tag, flows, dst_mac
    cdef public object next_t, sent, blk, pos
    cdef public dict templates
    cdef public long long[::1] vt, vf, vs, vc

    cpdef tuple _template(self, long long f, long long size)
    @cython.locals(good=bytearray, bad=bytearray, b=bytearray, at=Py_ssize_t, i=Py_ssize_t,
                   base=cython.ulonglong, s=cython.ulonglong, ck=cython.ulonglong)
    cpdef bytes frame(self, long long f, long long size, unsigned long long pkt_id, long long corrupt)
    @cython.locals(pid=cython.ulonglong, l2=Py_ssize_t, out=list, times=cython.longlong[::1],
                   flows=cython.longlong[::1], sizes=cython.longlong[::1],
                   corrupt=cython.longlong[::1], p=Py_ssize_t, k=Py_ssize_t, i=Py_ssize_t,
                   o=Py_ssize_t, t=cython.longlong, c=cython.longlong, fr=bytes, a=bytes, b=bytes)
    cpdef list frames(self, start, end)

@cython.locals(hi=Py_ssize_t, mid=Py_ssize_t)
cdef Py_ssize_t _first_at(long long[::1] times, long long end, Py_ssize_t lo) except? -1
cdef Py_ssize_t _payload_end(bytes frame, Py_ssize_t h, Py_ssize_t e) except? -1
cdef Py_ssize_t _cut(Py_ssize_t n) noexcept

@cython.locals(hl=Py_ssize_t, h=Py_ssize_t, e=Py_ssize_t, cut=Py_ssize_t, mid=Py_ssize_t,
               n=Py_ssize_t, off=Py_ssize_t, m=Py_ssize_t, c=Py_ssize_t, nxt=Py_ssize_t,
               a=bytearray, b=bytearray, x=bytearray, first=bint)
cpdef tuple fragment2(bytes frame, unsigned long long ident, Py_ssize_t l2=*)
