"""A TCP proxy on the loopback for tests that need a database which hangs or vanishes.

`pause()` keeps every connection open but forwards nothing (a server that stopped
answering); `resume()` forwards what was held; `cut()` drops every connection and refuses
new ones (a server that is gone).
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import sqlalchemy as sa


class Proxy:
    def __init__(self, host: str, port: int):
        self.target = (host, port)
        self.forwarding = threading.Event()
        self.forwarding.set()
        self.held = threading.Event()  # set once a byte arrived while paused
        self.refusing = False
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self._sockets: list[socket.socket] = []
        self._guard = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def pause(self) -> None:
        self.held.clear()
        self.forwarding.clear()

    def resume(self) -> None:
        self.forwarding.set()

    def cut(self) -> None:
        self.refusing = True
        self._close_all()

    def close(self) -> None:
        self.refusing = True
        self.forwarding.set()
        with contextlib.suppress(OSError):
            self._listener.close()
        self._close_all()

    def _close_all(self) -> None:
        with self._guard:
            sockets, self._sockets = self._sockets, []
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            if self.refusing:
                client.close()
                continue
            try:
                upstream = socket.create_connection(self.target, timeout=10)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            with self._guard:
                self._sockets += [client, upstream]
            threading.Thread(target=self._pump, args=(client, upstream), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                if not self.forwarding.is_set():
                    self.held.set()
                    self.forwarding.wait()
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)


@contextmanager
def proxied(database_url: str) -> Iterator[tuple[Proxy, str]]:
    """A proxy in front of the server of `database_url`, and the URL that goes through it."""
    url = sa.make_url(database_url)
    proxy = Proxy(url.host or "127.0.0.1", url.port or 5432)
    try:
        yield proxy, url.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
    finally:
        proxy.close()
