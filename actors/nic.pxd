# Cython declarations for actors/nic.py, read only when the model is
# compiled (actors/_core.py): Nic and RxQueue become extension types (their
# fields in a C struct); the threads, cache view and mbufs of the hot loops
# are declared as their extension types, so that their fields are read and
# their methods called directly.  The ithread loop's clock, costs and
# counters are C int64 (integer ns, far below 2**63); the other values stay
# Python objects.
cimport cython
from actors.base cimport Actor, KThread, Tap
from actors.cache cimport MemView
from actors.mbuf cimport Mbuf, Uma, m_freem, m_alloc
from actors.ether_input cimport ether_input
from actors.inet cimport toeplitz_at, word_sum
from actors.netisr cimport NetisrConfig
from actors.proto_input cimport ProtoInput
from actors.sched cimport Loads, pick_ithread_cpu

cdef long long _CSUM_IP_OK, _CSUM_IP_BAD, _CSUM_L4_OK
cdef Py_ssize_t _V4, _V6, _VLAN, _QINQ, _TCP, _UDP
cdef Py_ssize_t _M_DEBT, _M_WS_STATE, _M_CSTATE, _M_MDEBT

cdef class RxQueue:
    cdef public object direct, floating, hybrid, index
    cdef public object pk, running, vec_cpu, vector
    cdef public long long drops, interrupts, last_intr, packets
    cdef public list ring
    cdef public Py_ssize_t ring_h
    cdef public KThread thread, irq

cdef class Nic(Actor):
    cdef public object name, Q, accept_any, c_csw, c_drop, c_intr, c_migr
    cdef public long long arrived
    cdef public object c_pkt, c_pkt_direct, c_vlan, direct, drops
    cdef public object hybrid, if_index, if_vnet, indir, irq_balance, itr_ns
    cdef public object last_q, link_input, linktype, mac, ncpu, pis, points
    cdef public object promisc, pub_c, ring_size, rss, rxcsum, rxq, sources
    cdef public object tcp_peers, threads, vlans, vnet, vnet_actors, vout, window
    cdef public object ws_cpu, ws_state
    cdef public long long[::1] rss_tab
    cdef public long long rx_h, rx_htype, rx_csum
    cdef public Tap tap
    cdef public Loads loads
    cdef public Uma uma
    cdef public NetisrConfig dispatch
    cdef public MemView mem

    cpdef hw_rx(self, bytes f)
    cdef _rx_set(self, long long h, long long htype, long long csum)
    @cython.locals(b=Py_ssize_t, n=Py_ssize_t, hl=Py_ssize_t, u=Py_ssize_t,
                   iplen=Py_ssize_t, plen=Py_ssize_t, et=Py_ssize_t, ulp=Py_ssize_t,
                   hs=cython.longlong, h=cython.longlong, csum=cython.longlong,
                   htype=cython.longlong, v4=cython.bint)
    cdef _rx(self, bytes f)
    @cython.locals(th=KThread, iq=KThread, m=Mbuf, nx=Mbuf, hd=Mbuf, mem=MemView, pi=ProtoInput,
                   disp=NetisrConfig, n=Py_ssize_t, i=Py_ssize_t,
                   clock=cython.longlong, busy=cython.longlong, until=cython.longlong,
                   t_int=cython.longlong, last_intr=cython.longlong, itr=cython.longlong,
                   w0=cython.longlong, c=cython.longlong, ta=cython.longlong,
                   c_intr=cython.longlong, c_pkt=cython.longlong, c_vlan=cython.longlong,
                   c_csw=cython.longlong, c_migr=cython.longlong, c_pkt_direct=cython.longlong,
                   Q=cython.longlong, handled=Py_ssize_t, ring_size=Py_ssize_t,
                   ring=list, rh=Py_ssize_t, empty=cython.bint, w=cython.longlong,
                   last_w=cython.longlong, last_b=list, b=list, if_vnet=dict, ws_cpu=dict)
    cpdef _run_queue(self, RxQueue rx, list arr, long long start, long long end, dict out)
    @cython.locals(m=Mbuf, rx=RxQueue, mem=MemView, h=cython.longlong, htype=cython.longlong,
                   mask=cython.longlong, code=Py_ssize_t, code_of=dict)
    cpdef step(self, start, end, list inbox)
