# Cython declarations for cluster/engine.py, read only when the engine is
# compiled (actors/_core.py): Host becomes an extension type (its fields in
# a C struct) whose window loop reads its mailbox, sequence numbers and
# message tuples as the dicts, lists and tuples they are.  Values stay
# Python objects: no arithmetic changes.
cimport cython

cpdef list canonical(list msgs)
@cython.locals(mx=set)
cdef _mark(dict mixed, object w, object dest)

cdef class Host:
    cdef public list actors, behind, leading
    cdef public dict by_name, seq, mail, mixed
    cdef public object Q, codec_check, window, messages, ahead, stop_at, ahead_window

    @cython.locals(mail=dict, box=dict, lst=list, m=tuple, mixed=dict)
    cpdef deliver(self, msgs)
    cpdef list step(self, known=*)
    @cython.locals(box=dict, mail=dict, mine=dict, seqs=dict,
                   dbox=dict, nbox=dict, lst=list, inbox=list, msg=tuple,
                   mixed=dict, mx=set, ordered=cython.bint, whole=cython.bint,
                   Qc=cython.longlong, endc=cython.longlong, t=cython.longlong,
                   dw=cython.longlong, nxt=cython.longlong)
    cdef _run(self, list actors, object w, object known, bint whole, list rest, bint ordered)
