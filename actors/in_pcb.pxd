# Cython declarations for actors/in_pcb.py, read only when the model is
# compiled (actors/_core.py): Pcb and PcbInfo become extension types (their
# fields in a C struct).  Values stay Python objects: no arithmetic changes.

cdef class Pcb:
    cdef public object id, proto, fam, laddr, lport, faddr, fport, refs, freed, gone
    cdef public object sock, lock, busy_until, busy_thread, tcb

cdef class PcbInfo:
    cdef public object name, lock, allocated, released
    cdef public dict exact, bound
