# Cython declarations for actors/lock.py, read only when the model is
# compiled (actors/_core.py): Lock becomes an extension type (its fields in
# a C struct) whose acquire other compiled modules call directly.  Its
# times and counters are C int64: nanoseconds of virtual time and sums of
# them, far below 2**63 in any run (a value beyond it would raise
# OverflowError, never wrap); an acquire's times are integer nanoseconds
# as everywhere in the model (a float raises TypeError).
cimport cython

cdef class Lock:
    cdef public object name, kind
    cdef public long long free_w, free_r, acq, contended
    cdef public long long wait_total, wait_max, hold_total, hold_max

    @cython.locals(start=cython.longlong, end=cython.longlong, w=cython.longlong)
    cpdef long long acquire(self, long long t, long long hold, bint shared=*) except? -1
