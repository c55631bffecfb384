# Cython declarations for actors/ip_input.py, read only when the model is
# compiled (actors/_core.py): the header checks read the packet's bytes as
# C bytes (shifts of at most 8 bits: no overflow) and the mbuf's fields
# directly; callers that cimport them call them in C.
cimport cython
from actors.inet cimport cksum_ok
from actors.mbuf cimport Mbuf
from actors.counter cimport Stat

cdef Py_ssize_t _IP_CHECKED, _IP_VALID

@cython.locals(d=bytes, o=Py_ssize_t, n=Py_ssize_t, b0=Py_ssize_t, hl=Py_ssize_t,
               fl=Py_ssize_t, iplen=Py_ssize_t, v=dict, dst=Py_ssize_t)
cpdef ip_input(Mbuf m, dict vnets, Stat cnt)
@cython.locals(proto=Py_ssize_t)
cpdef ip_deliver(Mbuf m, hl, Stat cnt)
