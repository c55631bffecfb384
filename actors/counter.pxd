# Cython declarations for actors/counter.py, read only when the model is
# compiled (actors/_core.py): Stat becomes an extension type whose array of
# hot counters the compiled input paths (which declare their `cnt` a Stat)
# add to in C, through a typed int64 memoryview.
cdef class Stat:
    cdef public long long[::1] v
    cdef public dict more
