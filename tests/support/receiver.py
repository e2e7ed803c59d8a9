"""A chat webhook receiver on a free loopback port: a real HTTP server, in a thread.

It answers each POST as its script says (a status code, optionally after a delay, with
headers), then 200 once the script runs out, and keeps what it was sent. `down_url()` is a
loopback URL nobody listens on.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

# The path a Slack incoming-webhook URL has: its secret.
SECRET_PATH = "/services/T000SECRET/B000SECRET/XXXXsecretXXXXtokenXXXX"


@dataclass(frozen=True)
class Answer:
    status: int = 200
    delay: float = 0.0
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Receiver:
    url: str
    script: list[Answer]
    received: list[dict[str, Any]] = field(default_factory=list)
    paths: list[str] = field(default_factory=list)
    attempts: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def texts(self) -> list[str]:
        with self.lock:
            return [str(body.get("text")) for body in self.received]

    def wait_for(self, count: int, timeout: float = 10.0) -> list[str]:
        """The texts once `count` messages arrived (fails the test after `timeout`)."""
        deadline = time.monotonic() + timeout
        while len(self.texts()) < count:
            assert time.monotonic() < deadline, f"only {len(self.texts())} of {count} messages arrived"
            time.sleep(0.01)
        return self.texts()


@contextmanager
def receiver(*script: Answer) -> Iterator[Receiver]:
    """A receiver answering with `script`, at `{url}` = http://127.0.0.1:PORT/services/…secret…."""
    state: list[Receiver] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            me = state[0]
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            with me.lock:
                me.attempts += 1
                answer = me.script.pop(0) if me.script else Answer()
            time.sleep(answer.delay)
            if 200 <= answer.status < 300:
                with me.lock:
                    me.received.append(json.loads(body))
                    me.paths.append(self.path)
            self.send_response(answer.status)
            for name, value in answer.headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    state.append(Receiver(f"http://127.0.0.1:{server.server_address[1]}{SECRET_PATH}", list(script)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state[0]
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


def down_url() -> str:
    """A loopback URL where nothing listens (the port was free a moment ago)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}{SECRET_PATH}"
