# Cython declarations for actors/ether_input.py, read only when the model
# is compiled (actors/_core.py): the link-layer demux reads the frame's
# bytes as C bytes (shifts of at most 8 bits: no overflow) and the mbuf's
# fields directly; callers that cimport it call it in C.
cimport cython
from actors.inet cimport bslice
from actors.mbuf cimport Mbuf

cdef Py_ssize_t _ET_IP, _ET_IP6, _ET_VLAN, _ET_QINQ, _EHL, _MAX_TAGS

@cython.locals(i=Py_ssize_t)
cdef bint _is_at(bytes d, Py_ssize_t p, bytes a)

@cython.locals(d=bytes, off=Py_ssize_t, n=Py_ssize_t, et=Py_ssize_t, p=Py_ssize_t,
               end=Py_ssize_t, tags=Py_ssize_t, vid=Py_ssize_t, llc=Py_ssize_t,
               length=Py_ssize_t, hdr=Py_ssize_t, isrs=dict, vt=dict, tab=list)
cpdef ether_input(Mbuf m, mac, promisc=*, vlans=*, accept_any=*)
