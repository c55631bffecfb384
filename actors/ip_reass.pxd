# Cython declarations for actors/ip_reass.py, read only when the model is
# compiled (actors/_core.py): the queue and the reassembly state become
# extension types (their fields in a C struct) whose input the protocol
# input calls directly; offsets, lengths and times are C integers (at most
# 65535 bytes and integer ns, far below 2**63); the fragment entries stay
# lists of Python objects, and no arithmetic changes.
cimport cython
from actors.counter cimport Stat
from actors.inet cimport frozen, hdr_cksum
from actors.mbuf cimport Mbuf, Uma, m_alloc

cdef class FragQueue:
    cdef public list frags
    cdef public long long created, total
    cdef public object first

cdef class Reass:
    cdef public bint v6
    cdef public str p, dropped
    cdef public Py_ssize_t i_done, maxpackets, maxfrags
    cdef public long long ttl
    cdef public dict q

    cdef _fragdropped(self, m, Stat cnt, end_fn)
    @cython.locals(qs=dict, q=FragQueue, frags=list, f=list, n=Py_ssize_t, i=Py_ssize_t,
                   end=cython.longlong, fo=cython.longlong, fe=cython.longlong,
                   cut=cython.longlong)
    cpdef input(self, Mbuf m, key, long long off, bint mf, hdr, bytes data, long long now,
                Stat cnt, end_fn)

@cython.locals(f=list, at=cython.longlong, fo=cython.longlong, fe=cython.longlong)
cdef bint _complete(FragQueue q) except -1

@cython.locals(total=Py_ssize_t, buf=bytearray, c=Py_ssize_t, m=Mbuf)
cpdef Mbuf rebuild_v4(bytes first, Py_ssize_t l2, Py_ssize_t hl, bytes payload, Uma uma)

@cython.locals(plen=Py_ssize_t, buf=bytearray, m=Mbuf)
cpdef Mbuf rebuild_v6(bytes first, Py_ssize_t l2, Py_ssize_t unfrag, bytes payload, Uma uma)
