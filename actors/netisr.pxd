# Cython declarations for actors/netisr.py, read only when the model is
# compiled (actors/_core.py): Netisr becomes an extension type (its fields
# in a C struct).  Values stay Python objects: no arithmetic changes.
from actors.base cimport Actor

cdef class Netisr(Actor):
    cdef public object name, wsid, cpu, ws_cpu, Q, bound, hybrid, loopback, mem, loads
    cdef public object c_migr, c_wake, moved, nics, pi, points, pub_c, qlimit, queues
    cdef public object running, sleep_at, snap, snap_proto, stats, svc, svc_n, svc_sum
    cdef public object tap, thread, uma, vnet_actors, wait_ns, waited, wake, wake_n
    cdef public object wake_sum, wakeups
