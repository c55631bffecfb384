# Cython declarations for actors/base.py, read only when the model is
# compiled (actors/_core.py): KThread and the capture tap become extension
# types (their fields in a C struct) whose methods other compiled modules
# call directly (cpdef: a C call where the caller's variable is declared a
# KThread or a Tap, a Python call otherwise).  `charge` and `add` take
# their times as C int64 (integer ns, far below 2**63), so the hot loops
# that call them in C box nothing; the thread's clock, quantum and totals
# are C int64 too; the other values stay Python objects.

cimport cython
from actors.mbuf cimport Mbuf
from actors.cache cimport cpu_name

cdef class Tap:
    cdef public long long cap, lost
    cdef public list frames

    cpdef add(self, Mbuf m, dropped, what)

cdef class KThread:
    cdef public object name, actor, cpu, pri, burst_t0
    cdef public long long Q, clock, busy_total, debt_total, migrations
    cdef public long long[::1] state
    cdef public dict use, moved, bursts, events
    cdef public long long pw, pns, nintr

    @cython.locals(Q=cython.longlong, w=cython.longlong, e=cython.longlong, seg=cython.longlong)
    cpdef charge(self, long long t0, long long t1)
    cpdef add(self, long long start, long long ns)
    cdef _use(self, long long w, long long ns)
    cdef _flush(self)
    cpdef wake(self, t, preempting=*)
    cpdef sleep(self, t)
    cpdef intr(self)
    cdef _flush_intr(self)
    cpdef count(self, what, n=*)
    cpdef move(self, cpu, migrate=*)
    cpdef pay_debt(self, start, debt)
    cpdef pay_stall(self, start, ns)
    @cython.locals(ev=dict, bursts=dict, n=cython.longlong, e=dict, evs=list, pw=cython.longlong,
                   pns=cython.longlong, w0=cython.longlong, v0=cython.longlong)
    cpdef report(self, list out, end)

# The base of the actor classes (Cpu, Nic, Netisr, Vnet declare their fields
# in their own .pxd); Python subclasses (tests' actors) keep a __dict__.
cdef class Actor:
    pass
