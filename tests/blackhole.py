"""A TCP proxy on 127.0.0.1 that can silently black-hole the connections it carries: the
sockets stay open, nothing passes, no FIN or RST — a NAT box or a sleeping laptop's Wi-Fi.
New connections after that pass normally."""

from __future__ import annotations

import socket
import threading


class BlackholeProxy:
    def __init__(self, upstream_port: int) -> None:
        self.upstream = ("127.0.0.1", upstream_port)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.generation = 0
        self.dead_below = 0  # connections of an older generation are black-holed
        self.sockets: list[socket.socket] = []
        self.closed = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def drop_silently(self) -> None:
        self.dead_below = self.generation + 1
        self.generation += 1

    def close(self) -> None:
        self.closed.set()
        self.listener.close()
        for s in self.sockets:
            s.close()

    def _accept(self) -> None:
        while not self.closed.is_set():
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.upstream)
            self.sockets += [client, upstream]
            gen = self.generation
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b, gen), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, gen: int) -> None:
        while True:
            try:
                data = src.recv(65536)
            except OSError:
                return
            if not data:
                return
            if gen < self.dead_below:
                continue  # swallowed: the peer waits for an answer that never comes
            try:
                dst.sendall(data)
            except OSError:
                return
