# Cython declarations for actors/sched.py, read only when the model is
# compiled (actors/_core.py): Loads becomes an extension type (its fields
# in a C struct) whose `set` the actors call directly when a CPU publishes
# its load.  Values stay Python objects: no arithmetic changes.

cdef class Loads:
    cdef public list by_cpu
    cdef public object Q, pkg

    cpdef set(self, cpu, demand)
