# Cython declarations for actors/in_pcb.py, read only when the model is
# compiled (actors/_core.py): Pcb and PcbInfo become extension types (their
# fields in a C struct), their locks typed as Lock, and the lookup and the
# reference counting called directly by compiled callers.  Reference
# counts, table counts and the busy-until time are C int64 (counts, and
# integer ns far below 2**63), the flags C booleans; the other values stay
# Python objects.
cimport cython
from actors.lock cimport Lock

cdef class Pcb:
    cdef public object id, proto, fam, laddr, lport, faddr, fport
    cdef public long long refs, busy_until
    cdef public bint freed, gone
    cdef public object sock, busy_thread, tcb
    cdef public Lock lock

cdef class PcbInfo:
    cdef public object name
    cdef public long long allocated, released, nspec
    cdef public dict exact, bound, wild
    cdef public Lock lock

    @cython.locals(w=dict)
    cpdef lookup(self, fam, faddr, fport, laddr, lport)

cpdef in_pcbref(Pcb pcb)
cpdef in_pcbrele(PcbInfo info, Pcb pcb)
cpdef use(Pcb pcb)
