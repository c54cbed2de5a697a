"""A TCP proxy in front of the AWS emulator that can cut the network for a while.

Every process of the chaos stack reaches the emulator through it. `outage(seconds)` resets
every connection in flight (SO_LINGER 0: the peer sees a reset, as when a link or a NAT
drops) and, until the outage ends, resets each new connection as soon as it is accepted.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
import time

BUFFER = 65536


def _reset(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    with contextlib.suppress(OSError):
        sock.close()


class FaultyProxy:
    def __init__(self, upstream: tuple[str, int], listen: tuple[str, int]) -> None:
        self.upstream = upstream
        self._server = socket.create_server(listen, reuse_port=False)
        self.address = self._server.getsockname()[:2]
        self._lock = threading.Lock()
        self._open: set[socket.socket] = set()
        self._down_until = 0.0
        self._stopped = threading.Event()
        self.connections = 0
        self.resets = 0
        threading.Thread(target=self._accept, name="proxy-accept", daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://{self.address[0]}:{self.address[1]}"

    def outage(self, seconds: float) -> None:
        """Reset every open connection, and every new one for `seconds`."""
        with self._lock:
            self._down_until = time.monotonic() + seconds
            doomed, self._open = self._open, set()
            self.resets += len(doomed)
        for sock in doomed:
            _reset(sock)

    def _down(self) -> bool:
        with self._lock:
            return time.monotonic() < self._down_until

    def _accept(self) -> None:
        while not self._stopped.is_set():
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            if self._down():
                with self._lock:
                    self.resets += 1
                _reset(client)
                continue
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        try:
            upstream = socket.create_connection(self.upstream, timeout=10)
        except OSError:
            _reset(client)
            return
        upstream.settimeout(None)
        with self._lock:
            self.connections += 1
            self._open.update((client, upstream))
        pump = threading.Thread(target=self._pump, args=(upstream, client), daemon=True)
        pump.start()
        self._pump(client, upstream)
        pump.join()
        with self._lock:
            self._open.difference_update((client, upstream))
        for sock in (client, upstream):
            with contextlib.suppress(OSError):
                sock.close()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(BUFFER):
                sink.sendall(data)
        except OSError:
            pass
        # One side ended (or was reset): end the other direction too.
        for sock in (source, sink):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        self._stopped.set()
        with contextlib.suppress(OSError):
            self._server.shutdown(socket.SHUT_RDWR)  # wakes the accept()
        with contextlib.suppress(OSError):
            self._server.close()
        self.outage(0)
