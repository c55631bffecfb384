# Cython declarations for actors/cpu.py, read only when the model is
# compiled (actors/_core.py): Cpu becomes an extension type (its fields in
# a C struct), its step and context-switch sweep called in C.  Its clock
# values, totals and counters are C int64 (integer ns, bytes and counts,
# far below 2**63), and so is the table of bursts it judges (int64 rows:
# times in ns, flags, priorities, thread numbers); the reports and the
# per-window and per-class tables stay Python objects (tuples, dicts), so
# no arithmetic changes.
cimport cython
from actors.base cimport Actor

cdef Py_ssize_t _NB

@cython.locals(i=Py_ssize_t, r=Py_ssize_t, j=Py_ssize_t, c=Py_ssize_t, t=cython.longlong,
               t1=cython.longlong, c2=cython.longlong, c3=cython.longlong,
               c4=cython.longlong, c5=cython.longlong)
cpdef _sort_rows(long long[::1] rows, Py_ssize_t lo, Py_ssize_t hi)

@cython.locals(nv=cython.longlong[::1], i=Py_ssize_t)
cdef object _grown(long long[::1] rows, Py_ssize_t lo, Py_ssize_t hi, Py_ssize_t n)

cdef long long _P_INTR, _P_ITHD, _P_SWI, _P_USER, _RING, _RMASK

cdef Py_ssize_t _class_index(long long pri) noexcept

@cython.locals(last=tuple, r=tuple, i=Py_ssize_t, w0=cython.longlong, w1=cython.longlong,
               p0=cython.longlong, p1=cython.longlong)
cdef bint _in_order(list reports) except -1

@cython.locals(last=list, d=list, i=Py_ssize_t)
cdef bint _strictly_ordered(list demand)

cdef class Cpu(Actor):
    cdef public object name, index, package, ghz, published
    cdef public long long Q, last_start, judge, cap_lo, busy_ns, wanted, touched, mem_ns
    cdef public long long csw_vol, csw_invol, bursts
    cdef public object subscribers
    cdef public long long[::1] mem_lines
    cdef public dict cap, g_other, future, events
    cdef public long long[::1] g_ns, g_seen, ring_w, ring_c
    cdef public long long[::1] spans, act
    cdef public Py_ssize_t splo, nsp
    cdef public dict tids

    @cython.locals(reports=list, debts=dict, demand=list, load=list, dm=list,
                   last=list, cap=dict, g_ns=cython.longlong[::1], g_seen=cython.longlong[::1],
                   ci=Py_ssize_t, ring_w=cython.longlong[::1], ring_c=cython.longlong[::1],
                   slot=Py_ssize_t,
                   events=dict, future=dict, classes=dict,
                   r=tuple, body=list, f=dict,
                   Q=cython.longlong, e=cython.longlong, now_w=cython.longlong, w=cython.longlong,
                   used=cython.longlong, avail=cython.longlong, got=cython.longlong,
                   wanted=cython.longlong, busy=cython.longlong,
                   lo=cython.longlong, old=cython.longlong, tot=cython.longlong,
                   s0=cython.longlong)
    cpdef list step(self, start, end, list inbox)
    @cython.locals(ci=Py_ssize_t)
    cdef _grant(self, str cls, long long ns)
    @cython.locals(ml=cython.longlong[::1], i=Py_ssize_t)
    cdef _mem(self, long long nbytes, list counts, long long ns)
    @cython.locals(n=Py_ssize_t, r=Py_ssize_t, lo=Py_ssize_t, sp=cython.longlong[::1], b=list,
                   tv=object)
    cdef _add_bursts(self, list bursts, pri, thread)
    @cython.locals(sp=cython.longlong[::1], act=cython.longlong[::1],
                   lo=Py_ssize_t, n=Py_ssize_t, h=Py_ssize_t, o=Py_ssize_t, r=Py_ssize_t,
                   j=Py_ssize_t, na=Py_ssize_t, m=Py_ssize_t, i=Py_ssize_t, x=Py_ssize_t,
                   Q=cython.longlong, horizon=cython.longlong, old=cython.longlong,
                   t0=cython.longlong, starts=cython.longlong, pri=cython.longlong,
                   th=cython.longlong, worse=bint, better=bint)
    cpdef _switches(self, start)
