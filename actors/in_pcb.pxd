# Cython declarations for actors/in_pcb.py, read only when the model is
# compiled (actors/_core.py): Pcb and PcbInfo become extension types (their
# fields in a C struct), their locks typed as Lock, and the lookup and the
# reference counting called directly by compiled callers.  Values stay
# Python objects: no arithmetic changes.
from actors.lock cimport Lock

cdef class Pcb:
    cdef public object id, proto, fam, laddr, lport, faddr, fport, refs, freed, gone
    cdef public object sock, busy_until, busy_thread, tcb
    cdef public Lock lock

cdef class PcbInfo:
    cdef public object name, allocated, released, nspec
    cdef public dict exact, bound
    cdef public Lock lock

    cpdef lookup(self, fam, faddr, fport, laddr, lport)

cpdef in_pcbref(Pcb pcb)
cpdef in_pcbrele(PcbInfo info, Pcb pcb)
cpdef use(Pcb pcb)
