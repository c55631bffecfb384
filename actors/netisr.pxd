# Cython declarations for actors/netisr.py, read only when the model is
# compiled (actors/_core.py): Netisr and NetisrConfig become extension types
# (their fields in a C struct; the NIC calls select in C); the netisr's
# thread, cache view, protocol handlers and the mbufs of its hot loop are
# declared as their extension types, so that their fields are read and
# their methods called directly.  The worker loop's clock, costs and
# counters are C int64 (integer ns, far below 2**63); the other values stay
# Python objects.
cimport cython
from actors.base cimport Actor, KThread, Tap
from actors.cache cimport MemView
from actors.mbuf cimport Mbuf, Uma, m_freem
from actors.proto_input cimport ProtoInput
from actors.sched cimport Loads, pick_thread_cpu, steal

cdef Py_ssize_t _P_FLOW, _P_CPU, _P_SPREAD, _M_DEBT, _M_CSTATE, _M_MDEBT

cdef class NetisrConfig:
    cdef public object ncpus, rr, hybrid
    cdef public Py_ssize_t nws
    cdef public list names
    cdef public dict policy, pin

    @cython.locals(pol=Py_ssize_t, n=Py_ssize_t, fid=cython.longlong)
    cpdef select(self, proto, Mbuf m, if_index, source=*, cur_cpu=*, queue=*)

cdef class Netisr(Actor):
    cdef public object name, wsid, cpu, ws_cpu, Q, bound, hybrid, loopback
    cdef public object c_migr, c_wake, moved, nics, points, pub_c
    cdef public object running, sleep_at, svc
    cdef public long long svc_n, svc_sum, wait_ns, waited, wake_n, wake_sum, wakeups
    cdef public list snap
    cdef public Py_ssize_t snap_i, snap_proto
    cdef public dict queues
    cdef public long long[::1] queued, handled, qdrops, wmark, qlim
    cdef public object vnet_actors, wake
    cdef public Tap tap
    cdef public Loads loads
    cdef public Uma uma
    cdef public MemView mem
    cdef public ProtoInput pi
    cdef public KThread thread

    @cython.locals(th=KThread, mem=MemView, m=Mbuf, nx=Mbuf, hd=Mbuf, pi=ProtoInput,
                   n=Py_ssize_t, i=Py_ssize_t, a=tuple, snap=list, si=Py_ssize_t, q=list,
                   queues=dict, qlim=cython.longlong[::1], queued=cython.longlong[::1],
                   handled=cython.longlong[::1], wmark=cython.longlong[::1],
                   proto=Py_ssize_t, p=Py_ssize_t,
                   clock=cython.longlong, busy=cython.longlong, busy_prev=cython.longlong,
                   prev=cython.longlong, wait=cython.longlong, until=cython.longlong,
                   t=cython.longlong, w0=cython.longlong, c=cython.longlong,
                   cost=cython.longlong, svc=cython.longlong, served=Py_ssize_t,
                   c_wake=cython.longlong, c_migr=cython.longlong)
    cpdef _run(self, list arrivals, long long start, long long end, dict out)
    cpdef _slept(self, t)
    @cython.locals(th=KThread, m=Mbuf, arrivals=list, code=Py_ssize_t, code_of=dict)
    cpdef step(self, start, end, list inbox)
