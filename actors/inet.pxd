# Cython declarations for actors/inet.py, read only when the model is
# compiled (actors/_core.py): the word-sum loop runs over the bytes in C
# (a 64-bit sum: a frame's words cannot overflow it), bslice copies a
# slice out of the bytes in place, frozen copies a bytearray into bytes, and
# toeplitz_at reads hash-table entries for bytes of a frame in place.
cimport cython

cpdef long long word_sum(object data, Py_ssize_t start, Py_ssize_t end) except? -1
@cython.locals(s=cython.ulonglong, i=Py_ssize_t, p=cython.p_uchar)
cpdef long long _word_sum_c(bytes data, Py_ssize_t start, Py_ssize_t end) except? -1
@cython.locals(n=Py_ssize_t, p=cython.p_uchar)
cpdef bytes bslice(bytes data, Py_ssize_t start, Py_ssize_t end)
@cython.locals(p=cython.p_uchar)
cpdef bytes frozen(bytearray buf)
@cython.locals(p=cython.p_uchar, h=cython.longlong, i=Py_ssize_t)
cpdef long long toeplitz_at(long long[::1] tab, bytes data, Py_ssize_t start, Py_ssize_t n,
                            Py_ssize_t pos) except? -1
