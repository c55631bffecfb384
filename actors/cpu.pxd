# Cython declarations for actors/cpu.py, read only when the model is
# compiled (actors/_core.py): Cpu becomes an extension type (its fields in
# a C struct), its step and context-switch sweep called in C.  Values stay
# Python objects: no arithmetic changes.
cimport cython
from actors.base cimport Actor

cdef class Cpu(Actor):
    cdef public object name, index, package, Q, ghz, busy_ns, wanted, touched
    cdef public object mem_ns, csw_vol, csw_invol, bursts, published, _unsorted
    cdef public object subscribers, mem_lines
    cdef public dict cap, granted, future, events
    cdef public list spans, judged

    @cython.locals(reports=list, spans=list, debts=dict, demand=dict, cap=dict, granted=dict,
                   events=dict, future=dict, ml=list, i=Py_ssize_t, r=tuple, stale=list)
    cpdef list step(self, start, end, list inbox)
    @cython.locals(pend=list, ready=list, cover=list, active=list, k=Py_ssize_t, n=Py_ssize_t,
                   nc=Py_ssize_t, j=Py_ssize_t)
    cpdef _switches(self, start)
