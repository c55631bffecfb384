"""The Ray actors' direct exchange, for the windows in which no packet crosses.

Why.  The Ray executor's unit of work is a call on every Ray actor.  A Ray
actor call costs about a millisecond of round trip here (the driver resolves
each call's arguments, the worker receives, runs and replies), while a
window of bench-4nic-jails costs each of two workers under 3 ms of model:
one call a window spends a third of the run in Ray.  But in most windows of
a host cut along its islands nothing crosses between the Ray actors except
the CPUs' per-window reports and published state - a few hundred bytes.

What.  So one call runs up to `windows_per_call` windows, and after each
window the Ray actors swap those few bytes directly, over one TCP
connection between every pair of them (a full mesh, set up once when the
executor starts).  Every window, every Ray actor sends every other one a
frame: the window, a stop flag, and (unless it stops) the messages for
that peer.  A Ray actor stops - ends the call, returning that window's
messages as the call's result, which the driver hands to the next call as
it always has - when its messages for some peer hold packets (mbuf batches
travel between Ray actors only as Ray object references, put by the sender
and fetched by the receiver; the driver never sees a packet), when they
are too big for a frame, or at the call's last window.  Whenever one stops,
every one stops at that window (each has every peer's flag), and the
messages that came directly in that window are dropped: they come again
with the call's result.  So every window's messages are delivered exactly
once, in the window after, and the model cannot tell which way they came;
`metrics.json` stays byte-identical to the local executor's.

The rule it bends.  Design §2 asks that outputs travel between the Ray
actors as Ray object references, with the driver off the data path.  The
packets still do, and the driver is further off the path than before; but
the control messages of the windows inside a call go over these
connections instead.  So it is opt-in (`--windows-per-call N`, N > 1), and
the default runs a call a window with every output an object reference.

Failure.  A Ray actor that dies closes its connections (the kernel does it),
so its peers, waiting for its frame of window w, raise `PeerLost` naming it
and w at once - the driver names the window from that.  A Ray actor whose
call fails for any other reason closes its connections before the error
leaves it, for the same reason.  A peer that is neither dead nor answering
(a lost node, whose connections are never closed) fails the wait after
`timeout` seconds: never a hang.

Left out.  Frames are not encrypted or authenticated: the connections are
between the cluster's own nodes, which Ray already trusts the same way.
Each Ray actor listens on one ephemeral port of its node's address, so the
nodes must reach each other on those ports (Ray's own workers need the
same).
"""

from __future__ import annotations

import socket
import struct

HDR = struct.Struct("!Iq?")     # length of the messages, window, stop
MAX_FRAME = 1 << 13             # bigger messages go with the call's result

# Every Ray actor sends all its frames of a window before it reads any, so a
# frame must fit the connection's buffers whole or two Ray actors sending to
# each other could both block.  (With --lookahead a Ray actor may run a
# window ahead of a peer: three frames at most wait in a connection.)  Linux gives a TCP socket 128 KiB of receive
# buffer to begin with (net.ipv4.tcp_rmem); a frame of 8 KiB fits it many
# times.  The CPUs' reports and published state of a window are a few
# hundred bytes.


class PeerLost(RuntimeError):
    """A peer's connection closed or timed out while we waited for its frame."""

    def __init__(self, peer: str, window: int, why: str):
        super().__init__(f"peer {peer} lost in window {window} ({why})")
        self.peer = peer
        self.window = window


class Mesh:
    """One Ray actor's end of the full mesh of connections between them."""

    def __init__(self, index: int, names: list, host: str = "", timeout: float = 600.0):
        self.index = index
        self.names = names
        self.timeout = timeout
        self.listener = socket.create_server((host, 0), backlog=max(128, len(names)))
        self.listener.settimeout(timeout)
        self.peers = []         # [(index, socket)], in index order
        self.closed = False

    def port(self) -> int:
        return self.listener.getsockname()[1]

    def link(self, addrs: list) -> None:
        """Connect to every peer of a lower index and accept every peer of a
        higher one (each connection opens with the connector's index).
        Connecting never waits for the other side to accept, so every Ray
        actor can link at once."""
        socks = {}
        for j in range(self.index):
            s = socket.create_connection(tuple(addrs[j]), timeout=self.timeout)
            s.sendall(struct.pack("!I", self.index))
            socks[j] = s
        for _ in range(self.index + 1, len(addrs)):
            s, _ = self.listener.accept()
            s.settimeout(self.timeout)
            j = struct.unpack("!I", self._read(s, 4, "?", -1))[0]
            socks[j] = s
        self.listener.close()
        for s in socks.values():
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            s.settimeout(self.timeout)
        self.peers = sorted(socks.items())

    def _read(self, s, n: int, peer: str, w: int) -> bytes:
        buf = bytearray(n)
        view = memoryview(buf)
        got = 0
        while got < n:
            try:
                k = s.recv_into(view[got:])
            except TimeoutError:
                raise PeerLost(peer, w, f"no frame for {self.timeout:g} s") from None
            except OSError as e:
                raise PeerLost(peer, w, type(e).__name__) from None
            if k == 0:
                raise PeerLost(peer, w, "connection closed")
            got += k
        return bytes(buf)

    def exchange(self, w: int, stop: bool, out: list) -> tuple:
        """Send every peer its frame of window w (out[k]: bytes or None;
        nothing is sent when we stop) and read every peer's.  Returns
        (stop, [(peer index, bytes)]) - stop true when any of us stops."""
        self._send(w, stop, out)
        st, got = self._recv(w)
        return stop or st, got

    def send(self, w: int, out: list) -> None:
        """Send every peer its frame of window w and go on: the lagged
        exchange of `--lookahead`, in which a Ray actor reads its peers'
        frames of a window only after its own next one (`receive`).

        A peer whose connection fails here is not named yet: it may be a
        window ahead of us or behind, and the window it died in is the
        first of its frames we cannot read, which `receive` names (a
        broken connection still yields what the peer sent before it)."""
        for k, s in self.peers:
            d = b"" if out[k] is None else out[k]
            try:
                s.sendall(HDR.pack(len(d), w, False) + d)
            except OSError:
                pass

    def receive(self, w: int) -> list:
        """Read every peer's frame of window w (sent with `send`):
        [(peer index, bytes)] for the frames that hold messages."""
        return self._recv(w)[1]

    def _send(self, w: int, stop: bool, out: list) -> None:
        names = self.names
        for k, s in self.peers:
            d = b"" if stop or out[k] is None else out[k]
            try:
                s.sendall(HDR.pack(len(d), w, stop) + d)
            except OSError as e:
                raise PeerLost(names[k], w, type(e).__name__) from None

    def _recv(self, w: int) -> tuple:
        names = self.names
        stop = False
        got = []
        for k, s in self.peers:
            n, ww, st = HDR.unpack(self._read(s, HDR.size, names[k], w))
            if ww != w:
                raise RuntimeError(f"peer {names[k]} sent window {ww} in window {w}")
            if n:
                got.append((k, self._read(s, n, names[k], w)))
            stop = stop or st
        return stop, got

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        for _, s in self.peers:
            try:
                s.close()
            except OSError:
                pass
        try:
            self.listener.close()
        except OSError:
            pass
