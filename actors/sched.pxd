# Cython declarations for actors/sched.py, read only when the model is
# compiled (actors/_core.py): Loads becomes an extension type (its fields
# in a C struct) whose `set` the actors call directly when a CPU publishes
# its load; its sums and the placement rules run as C loops over the
# published entries (integer ns, far below 2**63), comparing the same keys
# in the same order as the rules' tuples would.
cimport cython

cdef double _IDLE, _BUSY

cdef class Loads:
    cdef public list by_cpu, pkg
    cdef public long long Q

    cpdef set(self, cpu, demand)
    @cython.locals(s=cython.longlong, ns=cython.longlong)
    cpdef long long total(self, Py_ssize_t c, str me=*) except? -1
    @cython.locals(s=cython.longlong, ns=cython.longlong, p=cython.longlong)
    cpdef long long at_or_above(self, Py_ssize_t c, long long pri, str me=*) except? -1
    cpdef bint can_run(self, Py_ssize_t c, long long pri, str me=*) except -1
    cpdef bint idle(self, Py_ssize_t c, str me=*) except -1

cdef bint _before(long long a0, long long a1, long long a2, long long a3,
                  long long b0, long long b1, long long b2, long long b3) noexcept

@cython.locals(pkg=list, p=cython.longlong, pc=cython.longlong, best=Py_ssize_t, c=Py_ssize_t,
               b0=cython.longlong, b1=cython.longlong, b2=cython.longlong, b3=cython.longlong,
               k0=cython.longlong, k1=cython.longlong, k2=cython.longlong, k3=cython.longlong)
cpdef Py_ssize_t pick_ithread_cpu(Loads loads, long long pri, Py_ssize_t vec_cpu, Py_ssize_t last,
                                  str me=*) except? -1

@cython.locals(pkg=list, lp=cython.longlong, pc=cython.longlong, best=Py_ssize_t, c=Py_ssize_t,
               b0=cython.longlong, b1=cython.longlong, b2=cython.longlong, b3=cython.longlong,
               k0=cython.longlong, k1=cython.longlong, k2=cython.longlong, k3=cython.longlong)
cpdef Py_ssize_t pick_thread_cpu(Loads loads, long long pri, Py_ssize_t last, waker,
                                 str me=*) except? -1

@cython.locals(pkg=list, p=cython.longlong, pc=cython.longlong, other=Py_ssize_t, c=Py_ssize_t)
cpdef Py_ssize_t steal(Loads loads, long long pri, Py_ssize_t cur, str me=*) except? -1
