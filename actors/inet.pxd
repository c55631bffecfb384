# Cython declarations for actors/inet.py, read only when the model is
# compiled (actors/_core.py): the word-sum loop runs over the bytes in C,
# 8 bytes a load on a little-endian machine (64-bit sums: a frame's words
# cannot overflow them), bslice copies a slice out of the bytes in place,
# frozen copies a bytearray into bytes, and toeplitz_at reads hash-table
# entries for bytes of a frame in place.
cimport cython
from libc.string cimport memcpy

cdef bint _LITTLE, _FAST8, _SOURCE
cdef unsigned long long _LO32

cdef inline unsigned long long _le8(const unsigned char *p) noexcept nogil:
    # 8 bytes from p, in the machine's order (memcpy: any alignment)
    cdef unsigned long long x
    memcpy(&x, p, 8)
    return x

cpdef long long word_sum(object data, Py_ssize_t start, Py_ssize_t end) except? -1
@cython.locals(s=cython.ulonglong, t=cython.ulonglong, x=cython.ulonglong, i=Py_ssize_t,
               p=cython.p_uchar)
cpdef long long _word_sum_c(bytes data, Py_ssize_t start, Py_ssize_t end) except? -1
@cython.locals(s=cython.longlong)
cpdef long long hdr_cksum(bytes d, Py_ssize_t start, Py_ssize_t end) except? -1
cpdef bint cksum_ok(bytes d, Py_ssize_t start, Py_ssize_t end, initial=*) except -1
@cython.locals(n=Py_ssize_t, p=cython.p_uchar)
cpdef bytes bslice(bytes data, Py_ssize_t start, Py_ssize_t end)
@cython.locals(p=cython.p_uchar)
cpdef bytes frozen(bytearray buf)
@cython.locals(p=cython.p_uchar, h=cython.longlong, i=Py_ssize_t)
cpdef long long toeplitz_at(long long[::1] tab, bytes data, Py_ssize_t start, Py_ssize_t n,
                            Py_ssize_t pos) except? -1
