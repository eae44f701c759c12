"""A TCP relay in front of a real gateway that can lose one reply on purpose.

It forwards bytes both ways unchanged. Armed with :meth:`Relay.lose_reply_to`, it forwards
the next request whose bytes hold a marker (a Thrift method name) to the gateway, waits for
the gateway's reply — so HBase did apply the call — and then throws the reply away and cuts
both sockets: exactly what a client sees when its gateway dies after doing the work.
"""

from __future__ import annotations

import contextlib
import socket
import threading


class Relay:
    """Listens on 127.0.0.1 (a free port, :attr:`port`) and relays to ``target_port``.

    :param target_port: the gateway's port on 127.0.0.1
    """

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._lock = threading.Lock()
        self._marker: bytes | None = None
        #: Replies thrown away so far.
        self.lost = 0
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def lose_reply_to(self, marker: bytes | None) -> None:
        """Lose the reply to the next request that contains ``marker`` (once; ``None``:
        lose none)."""
        with self._lock:
            self._marker = marker

    def close(self) -> None:
        """Stop accepting connections (open ones end with their peers)."""
        self._closed = True
        self._listener.close()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            server = socket.create_connection(("127.0.0.1", self.target_port), timeout=30)
            server.settimeout(None)
            pair = _Pair(client, server)
            threading.Thread(target=self._requests, args=(pair,), daemon=True).start()
            threading.Thread(target=self._replies, args=(pair,), daemon=True).start()

    def _requests(self, pair: _Pair) -> None:
        while chunk := pair.recv(pair.client):
            with self._lock:
                if self._marker is not None and self._marker in chunk:
                    self._marker = None
                    pair.swallow = True
            if not pair.send(pair.server, chunk):
                break
        pair.cut()

    def _replies(self, pair: _Pair) -> None:
        while chunk := pair.recv(pair.server):
            if pair.swallow:
                with self._lock:
                    self.lost += 1
                break
            if not pair.send(pair.client, chunk):
                break
        pair.cut()


class _Pair:
    def __init__(self, client: socket.socket, server: socket.socket) -> None:
        self.client, self.server = client, server
        self.swallow = False

    @staticmethod
    def recv(sock: socket.socket) -> bytes:
        try:
            return sock.recv(65536)
        except OSError:
            return b""

    @staticmethod
    def send(sock: socket.socket, data: bytes) -> bool:
        try:
            sock.sendall(data)
        except OSError:
            return False
        return True

    def cut(self) -> None:
        for sock in (self.client, self.server):
            with contextlib.suppress(OSError):  # the peer may have gone already
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()
