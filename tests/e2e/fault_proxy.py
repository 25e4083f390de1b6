"""A TCP proxy on 127.0.0.1 in front of a Redis, to land a fault at an exact
moment of a client's conversation rather than at a lucky time.

Clients (and sentinels, replicas) connect to the proxy, which forwards bytes
both ways. ``arm(marker, action)``: the first chunk a client sends that holds
every byte string of ``marker`` is not forwarded; ``action()`` runs first (it
stops or kills the Redis behind, say), then that client's connection closes.
So "Redis died just as the worker sent ``CLIENT SETNAME``" happens every time.
"""

import contextlib
import socket
import threading
from collections.abc import Callable, Sequence

from testkit.procs import HOST

BUFFER_BYTES = 65536


class FaultProxy:
    """Forwards ``HOST:port`` to ``HOST:upstream_port`` until :meth:`stop`."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self._listener = socket.create_server((HOST, 0))
        self.port: int = self._listener.getsockname()[1]
        self._marker: Sequence[bytes] = ()
        self._action: Callable[[], None] | None = None
        self._armed = threading.Lock()
        self.fired = threading.Event()
        self._sockets: set[socket.socket] = set()
        self._sockets_lock = threading.Lock()
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._accept, name="fault-proxy", daemon=True)

    def start(self) -> "FaultProxy":
        self._thread.start()
        return self

    def arm(self, marker: Sequence[bytes], action: Callable[[], None]) -> None:
        """Run ``action`` instead of forwarding the first client chunk holding
        every part of ``marker`` (compared upper-cased), once."""
        with self._armed:
            self._marker = [part.upper() for part in marker]
            self._action = action
            self.fired.clear()

    def stop(self) -> None:
        self._stopped.set()
        self._listener.close()
        with self._sockets_lock:
            for sock in self._sockets:
                with contextlib.suppress(OSError):
                    sock.close()
        self._thread.join(timeout=5)

    def __enter__(self) -> "FaultProxy":
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _accept(self) -> None:
        while not self._stopped.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection((HOST, self.upstream_port), timeout=1)
            except OSError:
                client.close()  # the Redis behind is down: so is the proxy, for this client
                continue
            upstream.settimeout(None)
            with self._sockets_lock:
                self._sockets.update((client, upstream))
            for source, sink, watched in ((client, upstream, True), (upstream, client, False)):
                threading.Thread(
                    target=self._pump, args=(source, sink, watched), daemon=True
                ).start()

    def _pump(self, source: socket.socket, sink: socket.socket, watched: bool) -> None:
        try:
            # A command is one write of a few hundred bytes: one read on loopback.
            while data := source.recv(BUFFER_BYTES):
                if watched and self._fires(data):
                    return
                sink.sendall(data)
        except OSError:
            pass
        finally:
            self._close(source, sink)

    def _fires(self, data: bytes) -> bool:
        with self._armed:
            upper = data.upper()
            if self._action is None or not all(part in upper for part in self._marker):
                return False
            action, self._action = self._action, None
        action()
        self.fired.set()
        return True

    def _close(self, *sockets: socket.socket) -> None:
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            with contextlib.suppress(OSError):
                sock.close()
            with self._sockets_lock:
                self._sockets.discard(sock)
