# Cython declarations for actors/ip6_input.py, read only when the model is
# compiled (actors/_core.py): the header checks read the packet's bytes as
# C bytes (shifts of at most 8 bits: no overflow) and the mbuf's fields
# directly; callers that cimport them call them in C.
cimport cython
from actors.inet cimport bslice
from actors.mbuf cimport Mbuf
from actors.counter cimport Stat

cdef Py_ssize_t _NXTHIST, _UDP, _TCP, _ICMPV6

@cython.locals(i=Py_ssize_t)
cdef bint _zeros(bytes d, Py_ssize_t p, Py_ssize_t n)
cdef bint _v4mapped(bytes d, Py_ssize_t p)
cdef bint _loopback(bytes d, Py_ssize_t p)

@cython.locals(d=bytes, o=Py_ssize_t, n=Py_ssize_t, nxt=Py_ssize_t, plen=Py_ssize_t, v=dict,
               s=Py_ssize_t, t=Py_ssize_t)
cpdef ip6_input(Mbuf m, dict vnets, Stat cnt)
@cython.locals(d=bytes, o=Py_ssize_t, end=Py_ssize_t, nxt=Py_ssize_t, nxt_pos=Py_ssize_t,
               p=Py_ssize_t, nhdr=Py_ssize_t, hlen=Py_ssize_t)
cpdef ip6_nexthdr(Mbuf m, Stat cnt, first=*)
