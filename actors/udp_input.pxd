# Cython declarations for actors/udp_input.py, read only when the model is
# compiled (actors/_core.py): the header checks read the packet's bytes as
# C bytes (shifts of at most 8 bits: no overflow) and the mbuf's fields
# directly; callers that cimport them call them in C.
cimport cython
from actors.mbuf cimport Mbuf
from actors.counter cimport Stat
from actors.inet cimport cksum_ok

cdef Py_ssize_t _VALID

@cython.locals(d=bytes, o=Py_ssize_t, u=Py_ssize_t, avail=Py_ssize_t, ulen=Py_ssize_t,
               fl=Py_ssize_t)
cpdef udp_input_hdr(Mbuf m, Py_ssize_t off, v6, Stat cnt)
