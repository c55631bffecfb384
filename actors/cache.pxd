# Cython declarations for actors/cache.py, read only when the model is
# compiled (actors/_core.py): MemView becomes an extension type whose
# counters are C int64 arrays (typed memoryviews over the array('q') the
# source makes), and the pricing methods take core numbers, line counts
# and counter values as C integers, and return their prices (ns) as C
# int64 (-1 is never a price: it flags an error).  Indexes are
# bounds-checked as in Python (an IndexError, never a stray write); the
# counters stay far below 2**63 (bytes touched in a run).
cimport cython
from actors.mbuf cimport Mbuf

# a line's size, a C constant in the pricing arithmetic (no module lookup)
cdef long long LINE
cdef Py_ssize_t _LOCAL, _LLC, _XCORE, _XPKG, _DRAM, _DRAM_REMOTE

@cython.locals(names=list)
cpdef str cpu_name(Py_ssize_t c)

cdef class MemView:
    cdef public object t, actor
    cdef public long long l2, llc
    cdef public long long[::1] pkg, now_c, now_p, cur_c, cur_p, prev_c, cnt, nsl, price

    cpdef tuple now(self, Py_ssize_t c)
    cpdef Py_ssize_t between(self, Py_ssize_t c, Py_ssize_t other) except -1
    @cython.locals(p=Py_ssize_t, rp=Py_ssize_t)
    cpdef Py_ssize_t level(self, Py_ssize_t c, Py_ssize_t rc, long long rat, long long rpat) except -1
    cdef long long _price(self, Py_ssize_t lv, Py_ssize_t lines) except? -1
    @cython.locals(b=cython.longlong)
    cdef int _add(self, Py_ssize_t c, Py_ssize_t p, Py_ssize_t lv, Py_ssize_t lines, long long ns) except -1
    @cython.locals(p=Py_ssize_t, lv=Py_ssize_t, ns=cython.longlong)
    cpdef object touch(self, Py_ssize_t c, object rec, Py_ssize_t lines)
    @cython.locals(p=Py_ssize_t, lv=Py_ssize_t, rc=Py_ssize_t, ns=cython.longlong)
    cpdef long long touch_rec(self, Py_ssize_t c, long long[::1] rec, Py_ssize_t lines) except? -1
    @cython.locals(p=Py_ssize_t, lv=Py_ssize_t, rc=Py_ssize_t, ns=cython.longlong)
    cpdef long long touch_m(self, Py_ssize_t c, Mbuf m, Py_ssize_t lines) except? -1
    @cython.locals(p=Py_ssize_t, lv=Py_ssize_t, dl=Py_ssize_t, ns=cython.longlong, b=cython.longlong)
    cpdef long long rx_touch(self, Py_ssize_t c, Mbuf m, Py_ssize_t hdr_lines,
                             Py_ssize_t data_lines) except? -1
    @cython.locals(ns=cython.longlong)
    cpdef long long charge(self, Py_ssize_t c, Py_ssize_t lv, Py_ssize_t lines) except? -1
    @cython.locals(p=Py_ssize_t, lv=Py_ssize_t, pnow=cython.longlong, mine=cython.longlong,
                   opat=cython.longlong, oc=Py_ssize_t)
    cpdef long long touch_shared(self, Py_ssize_t c, long long[::1] rec,
                                 Py_ssize_t lines) except? -1
    @cython.locals(c=Py_ssize_t, p=Py_ssize_t, v=cython.longlong, now_c=cython.longlong[::1],
                   prev_c=cython.longlong[::1], cur_c=cython.longlong[::1], now_p=cython.longlong[::1],
                   pkg=cython.longlong[::1])
    cpdef publish(self, list pub_c)
    @cython.locals(c=Py_ssize_t, k=Py_ssize_t, i=Py_ssize_t, b=cython.longlong,
                   cur=cython.longlong[::1], cnt=cython.longlong[::1], nsl=cython.longlong[::1],
                   prev=cython.longlong[::1], cur_p=cython.longlong[::1], uses=dict,
                   body=list, lines=list, o=tuple)
    cpdef report(self, list out, object end)
