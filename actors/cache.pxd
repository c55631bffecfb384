# Cython declarations for actors/cache.py, read only when the model is
# compiled (actors/_core.py): MemView becomes an extension type, and the
# pricing methods take core numbers and line counts as C integers (core
# numbers and line counts are small; a value out of range raises).
cimport cython

cdef class MemView:
    cdef public object t, l2, llc, actor
    cdef public list pkg, now_c, now_p, cur_c, cur_p, prev_c, cnt, nsl, price

    @cython.locals(p=Py_ssize_t, rc=Py_ssize_t, rp=Py_ssize_t, lv=Py_ssize_t)
    cpdef object touch(self, Py_ssize_t c, object rec, Py_ssize_t lines)
    cpdef object touch_m(self, Py_ssize_t c, object m, Py_ssize_t lines)
    @cython.locals(p=Py_ssize_t, lv=Py_ssize_t, dl=Py_ssize_t)
    cpdef object rx_touch(self, Py_ssize_t c, object m, Py_ssize_t hdr_lines, Py_ssize_t data_lines)
    @cython.locals(p=Py_ssize_t)
    cpdef object charge(self, Py_ssize_t c, Py_ssize_t lv, Py_ssize_t lines)
    @cython.locals(p=Py_ssize_t, lv=Py_ssize_t)
    cpdef object touch_shared(self, Py_ssize_t c, dict rec, Py_ssize_t lines)
