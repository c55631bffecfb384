# Cython declarations for actors/mbuf.py, read only when the model is
# compiled (actors/_core.py): Storage and Mbuf become extension types (their
# fields in a C struct), and the functions that make, free and decode mbufs
# see them as such.  The fields of INT64_FIELDS (the view, the times, the
# cache record, and the pkthdr's fixed-width fields) are C int64, so the hot loops read and write them with no
# Python int made; a value beyond int64 raises OverflowError on assignment
# (the model makes none).  The other values stay Python objects.
# The packed codec reads and writes its rows through a C int64 view of an
# array: a field outside int64 raises OverflowError there, as storing it in
# the array would from source, and the batch goes in the rows form.
# Typed arguments and locals are checked for None when used (nonecheck,
# setup.py): an AttributeError, as in the plain code, never a crash.
cimport cython

cdef class Uma:
    cdef public long long[::1] a, f

cdef class Storage:
    cdef public object data, zones, refcnt

cdef class Mbuf:
    cdef public long long off, len, arrival_ns, stamp_ns, line_cpu, line_at, line_pat, l3hlen
    cdef public long long flowid, hashtype, fib, vlan, csum_flags
    cdef public object flags, rcvif, vnet, pkt_id, tags
    cdef public object zone, freed
    cdef public Storage st

@cython.locals(st=Storage)
cdef Storage _storage(object data, object zones, object refcnt)

@cython.locals(m=Mbuf, mz=cython.bint)
cpdef Mbuf _blank(Storage st, object zone, object length)

cdef Py_ssize_t _MHLEN, _MCLBYTES

@cython.locals(n=Py_ssize_t)
cpdef Mbuf m_alloc(Uma uma, object data)

@cython.locals(st=Storage)
cpdef m_freem(Uma uma, Mbuf m)

cpdef list decode_batch(object blob)

@cython.locals(m=Mbuf, st=Storage)
cpdef list batch_from_parts(object parts)

cpdef bytes encode_batch(object mbufs)

cpdef list batch_parts(object mbufs)

@cython.locals(m=Mbuf, st=Storage)
cpdef list _encode_rows(object mbufs)

@cython.locals(i=object)
cpdef Py_ssize_t _name(dict names, object v) except? -2

@cython.locals(m=Mbuf, st=Storage, n=Py_ssize_t, o=Py_ssize_t, ir=Py_ssize_t, iv=Py_ssize_t,
               iz=Py_ssize_t, izs=Py_ssize_t, data=list, tags=list, names=dict,
               rv=cython.longlong[::1], k=Py_ssize_t, i=Py_ssize_t)
cpdef object _encode_packed(object mbufs)

@cython.locals(m=Mbuf, n=Py_ssize_t, k=Py_ssize_t, o=Py_ssize_t, out=list,
               rv=cython.longlong[::1])
cpdef list _decode_packed(object tables, object tags, object rows)
