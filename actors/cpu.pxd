# Cython declarations for actors/cpu.py, read only when the model is
# compiled (actors/_core.py): Cpu becomes an extension type (its fields in
# a C struct).  Values stay Python objects: no arithmetic changes.
from actors.base cimport Actor

cdef class Cpu(Actor):
    cdef public object name, index, package, Q, ghz, busy_ns, wanted, touched
    cdef public object mem_ns, csw_vol, csw_invol, bursts, published, _unsorted
    cdef public object subscribers, cap, granted, future, events, mem_lines
    cdef public list spans, judged
