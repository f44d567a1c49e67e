"""A TCP forwarder on 127.0.0.1 that counts the bytes the server sends back: proof of how much a read fetched."""

from __future__ import annotations

import socket
import threading


class CountingProxy:
    """Forwards every connection to `upstream` (http://host:port); `received` counts server-to-client bytes."""

    def __init__(self, upstream: str):
        host, port = upstream.split("://", 1)[1].rstrip("/").split(":")
        self.upstream = (host, int(port))
        self.received = 0
        self._lock = threading.Lock()
        self._server = socket.create_server(("127.0.0.1", 0))
        self.endpoint = f"http://127.0.0.1:{self._server.getsockname()[1]}"
        self._sockets: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def reset(self) -> int:
        """The bytes counted so far, and start again from zero."""
        with self._lock:
            seen, self.received = self.received, 0
        return seen

    def _accept(self):
        while True:
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            server = socket.create_connection(self.upstream)
            self._sockets += [client, server]
            threading.Thread(target=self._pump, args=(client, server, False), daemon=True).start()
            threading.Thread(target=self._pump, args=(server, client, True), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, count: bool):
        try:
            while data := src.recv(1 << 16):
                if count:
                    with self._lock:
                        self.received += len(data)
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def close(self):
        self._server.close()
        for s in self._sockets:
            s.close()
