# Cython declarations for actors/base.py, read only when the model is
# compiled (actors/_core.py): KThread becomes an extension type (its fields
# in a C struct).  Values stay Python objects: no arithmetic changes.

cdef class KThread:
    cdef public object name, actor, cpu, pri, Q, clock, busy_total, debt_total
    cdef public object burst_t0, state, migrations
    cdef public dict use, moved, bursts, events

# The base of the actor classes (Cpu, Nic, Netisr, Vnet declare their fields
# in their own .pxd); Python subclasses (tests' actors) keep a __dict__.
cdef class Actor:
    pass
