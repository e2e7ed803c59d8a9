"""One service process: the API under uvicorn and, for `reconciler run`, the reconcile loop.

It takes an ASGI app already built. uvicorn and the loop
each get a thread; the main thread owns the signals. On SIGTERM or SIGINT the loop finishes
the pass in progress (its transaction commits or rolls back whole), releases the leader lock,
then uvicorn stops accepting and drains, and the process exits 0. uvicorn is kept off the
main thread because it re-raises a captured signal after shutdown, which would end the
process by that signal instead of exit 0.
"""

from __future__ import annotations

import logging
import signal
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any

import uvicorn

from reconciler.errors import ReconcilerError
from reconciler.service.loop import ReconcileLoop

log = logging.getLogger("reconciler.service")

TICK_SECONDS = 0.1
SHUTDOWN_GRACE_SECONDS = 10.0


class ServeError(ReconcilerError):
    """The API could not start (port in use, bad host) or stopped on its own."""


# The production event loop and HTTP parser, named rather than left to uvicorn's "auto" so that
# a broken install fails at start instead of silently serving a fraction of the requests.
EVENT_LOOP = "uvloop"
HTTP_PARSER = "httptools"


def build_server(app: Any, host: str, port: int) -> uvicorn.Server:
    """A uvicorn server for `app` on uvloop and httptools that logs through our handlers (see
    logs.configure_logging), the access log included."""
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        loop=EVENT_LOOP,
        http=HTTP_PARSER,
        log_config=None,
        lifespan="on",
        access_log=True,
        server_header=False,  # nothing to gain from naming the server; one header less per answer
    )
    return uvicorn.Server(config)


def serve(app: Any, *, host: str, port: int, loop: ReconcileLoop | None = None) -> None:
    """Serve `app` (and run `loop`) until SIGTERM/SIGINT; returns after a clean shutdown."""
    with stop_on_signals() as stop:
        run_until(stop, build_server(app, host, port), loop)


@contextmanager
def stop_on_signals() -> Iterator[threading.Event]:
    """An event SIGTERM or SIGINT sets while the block runs; the previous handlers after it."""
    stop = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        log.info("received %s: shutting down", signal.Signals(signum).name)
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield stop
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _run_server(server: uvicorn.Server, sockets: list[socket.socket] | None) -> None:
    try:
        server.run(sockets)
    except SystemExit:  # uvicorn exits when it cannot bind; run_until turns that into ServeError
        log.error("the API server stopped during startup")


def _run_loop(loop: ReconcileLoop) -> None:
    try:
        loop.run()
    except Exception:  # a bug in the loop itself (passes cannot get here); run_until exits non-zero
        log.exception("the reconcile loop stopped unexpectedly")


def run_until(
    stop: threading.Event,
    server: uvicorn.Server,
    loop: ReconcileLoop | None,
    sockets: list[socket.socket] | None = None,
) -> None:
    """Run `server` (on `sockets` when given, already bound) and `loop` in threads until `stop`
    is set, then shut both down in order.

    If either thread ends on its own (the port is taken, a bug ends the loop), both are shut
    down and ServeError says which, so an orchestrator restarts the process rather than
    keeping an API whose data no longer moves.
    """
    api = threading.Thread(target=_run_server, args=(server, sockets), name="api", daemon=True)
    api.start()
    worker = None
    if loop is not None:
        worker = threading.Thread(target=_run_loop, args=(loop,), name="reconcile-loop", daemon=True)
        worker.start()
    while not stop.wait(TICK_SECONDS):
        if not api.is_alive() or (worker is not None and not worker.is_alive()):
            break
    loop_died = worker is not None and not worker.is_alive() and not stop.is_set()
    if loop is not None and worker is not None:
        loop.stop()
        worker.join()  # finishes the pass in progress and releases the leader lock
    server.should_exit = True
    api.join(SHUTDOWN_GRACE_SECONDS)
    if loop_died:
        raise ServeError(
            "the reconcile loop stopped unexpectedly (a bug; see the log above): restart the process"
        )
    if not stop.is_set():
        where = f"{server.config.host}:{server.config.port}"
        raise ServeError(f"the API could not serve on {where} (is the port in use?); see the log above")
    log.info("shut down cleanly")
