# Cython declarations for actors/lock.py, read only when the model is
# compiled (actors/_core.py): Lock becomes an extension type (its fields in
# a C struct) whose acquire other compiled modules call directly.  Values
# stay Python objects: no arithmetic changes.

cdef class Lock:
    cdef public object name, kind, free_w, free_r, acq, contended
    cdef public object wait_total, wait_max, hold_total, hold_max

    cpdef acquire(self, t, hold, shared=*)
