"""The Ray actors' direct exchange (cluster/exchange.py), without Ray: three
meshes in threads of this process, linked over real TCP connections."""

import threading
import time
from contextlib import contextmanager

import pytest

from cluster.exchange import MAX_FRAME, Mesh, PeerLost


@contextmanager
def _meshes(n: int, timeout: float = 30.0):
    """n meshes linked to each other; closed afterwards."""
    names = [f"pack{i}" for i in range(n)]
    ms = [Mesh(i, names, "127.0.0.1", timeout) for i in range(n)]
    try:
        addrs = [("127.0.0.1", m.port()) for m in ms]
        _all(lambda m: m.link(addrs), ms)
        yield ms
    finally:
        for m in ms:
            m.close()


def _all(fn, ms) -> list:
    """fn(mesh) for every mesh at once, each in its own thread (as the Ray
    actors run at once); returns the results or raises the first error."""
    out = [None] * len(ms)
    errs = [None] * len(ms)

    def go(i):
        try:
            out[i] = fn(ms[i])
        except BaseException as e:  # noqa: BLE001 - handed back to the test
            errs[i] = e
    ts = [threading.Thread(target=go, args=(i,)) for i in range(len(ms))]
    for t in ts:
        t.start()
    for t in ts:
        t.join(60)
    for e in errs:
        if e is not None:
            raise e
    return out


def test_link_connects_every_pair_once():
    with _meshes(4) as ms:
        for m in ms:
            assert [k for k, _ in m.peers] == [k for k in range(4) if k != m.index]


def test_each_peer_gets_its_own_frame():
    with _meshes(3) as ms:
        def send(m):
            out = [f"{m.index}->{k}".encode() if k != m.index else None for k in range(3)]
            return m.exchange(7, False, out)
        res = _all(send, ms)
        for i, (stop, got) in enumerate(res):
            assert stop is False
            assert got == [(k, f"{k}->{i}".encode()) for k in range(3) if k != i]


def test_empty_frames_are_not_handed_on():
    with _meshes(2) as ms:
        res = _all(lambda m: m.exchange(0, False, [None, None]), ms)
        assert res == [(False, []), (False, [])]


def test_one_stop_stops_everyone_and_sends_nothing():
    """When one stops, every one learns it in the same window; the one that
    stops sends no messages (they go with the call's result)."""
    with _meshes(3) as ms:
        def send(m):
            out = [b"x" * 10 if k != m.index else None for k in range(3)]
            return m.exchange(3, m.index == 1, out)
        res = _all(send, ms)
        assert all(stop for stop, _ in res)
        for i, (_, got) in enumerate(res):
            assert 1 not in [k for k, _ in got]             # pack1 sent nothing
            if i != 1:
                assert [k for k, _ in got] == [k for k in (0, 2) if k != i]


def test_many_windows_in_order():
    with _meshes(2) as ms:
        def run(m):
            seen = []
            for w in range(200):
                out = [None, None]
                out[1 - m.index] = w.to_bytes(4, "big") * (1 + w % 5)
                _, got = m.exchange(w, False, out)
                seen.append(got[0][1])
            return seen
        a, b = _all(run, ms)
        assert a == b == [w.to_bytes(4, "big") * (1 + w % 5) for w in range(200)]


def test_closed_peer_is_named_with_the_window():
    """A peer that goes away (its process dies, or its call failed and it
    closed its end) is reported at once by every other, with the window
    they waited in."""
    with _meshes(3) as ms:
        ms[2].close()
        t0 = time.monotonic()
        errs = []

        def go(m):
            try:
                m.exchange(12, False, [b"a", b"b", b"c"])
            except PeerLost as e:
                errs.append((m.index, e.peer, e.window, str(e)))
        _all(go, ms[:2])
        assert sorted(e[:3] for e in errs) == [(0, "pack2", 12), (1, "pack2", 12)]
        assert all(e[3].startswith("peer pack2 lost in window 12") for e in errs)
        assert time.monotonic() - t0 < 5


def test_silent_peer_times_out():
    """A peer neither dead nor answering (a lost node) fails the wait after
    the timeout: never a hang."""
    with _meshes(2, timeout=0.5) as ms:
        t0 = time.monotonic()
        with pytest.raises(PeerLost) as e:
            ms[0].exchange(4, False, [None, b"hello"])
        assert e.value.window == 4 and "no frame for 0.5 s" in str(e.value)
        assert time.monotonic() - t0 < 5


def test_frames_of_max_size_cross_both_ways_at_once():
    """Every Ray actor sends all its frames before it reads any, so a frame
    of MAX_FRAME must fit the connection's buffers: the receive buffers
    hold it, and two peers sending each other one at once both get through
    (a hang here fails the test after _all's wait)."""
    import socket
    from cluster.exchange import HDR
    with _meshes(2) as ms:
        for m in ms:
            for _, s in m.peers:
                assert s.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF) >= MAX_FRAME + HDR.size
        big = bytes(range(256)) * (MAX_FRAME // 256)
        res = _all(lambda m: m.exchange(0, False, [big, big]), ms)
        assert res[0][1] == [(1, big)] and res[1][1] == [(0, big)]


def test_lagged_send_to_a_dead_peer_is_named_where_its_frames_end():
    """--lookahead's send and receive: a peer that closes after its frame
    of window 1 is named with window 2, the first frame of its we cannot
    read, however our sends to it fared."""
    with _meshes(2) as (a, b):
        for w in (0, 1):
            b.send(w, [None, None])
        b.close()
        time.sleep(0.1)                 # the close reaches a: its sends then fail
        for w in range(6):              # sends to the closed peer: no error here
            a.send(w, [None, b"x" * 100])
        assert a.receive(0) == [] and a.receive(1) == []
        with pytest.raises(PeerLost) as e:
            a.receive(2)
        assert e.value.window == 2 and e.value.peer == "pack1"
