"""Several API processes on one port, and the reconcile loop in a process of its own.

`serve_workers(target, workers=N, ...)` is `--workers N` of `serve` and `run`. This process
(the supervisor) binds the port once and starts N worker processes that each build the app
with `target.app(link)` and serve that one socket, so the kernel spreads connections over
them. Workers are spawned, not forked: each starts a fresh interpreter and opens its own
store connections (a forked SQLAlchemy pool or a forked lock would be shared by accident).

For `reconciler run`, `target.loop(link)` builds the reconcile loop, which runs in one more
process: exactly one process of the group reconciles whatever N is, and between replicas the
store's leader lock still decides. Workers hand each verified webhook to that process through
a queue (so a push starts a pass whichever worker received it) and answer
`/api/reconciler/status` from a file the loop process rewrites when its state changes.

Metrics use prometheus-client's multiprocess mode over a directory of the supervisor's
(`PROMETHEUS_MULTIPROC_DIR`, set for the children only), so `/metrics` on any worker answers
for every process: request latencies summed over the workers, the loop's counters and gauges.

SIGTERM or SIGINT: the loop process finishes the pass in progress and releases the leader
lock first, then the workers drain, and the supervisor exits 0. A child that ends on its own
(a bug, a worker killed) stops the rest and raises ServeError, so the orchestrator restarts
the whole replica rather than keep one whose data no longer moves or whose capacity shrank.
"""

from __future__ import annotations

import contextlib
import json
import logging
import multiprocessing
import os
import signal
import socket
import tempfile
import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from multiprocessing.process import BaseProcess
from multiprocessing.queues import Queue
from pathlib import Path
from types import FrameType
from typing import Any, Protocol

from reconciler.github.webhooks import WebhookEvent
from reconciler.service.logs import LogFormat, configure_logging
from reconciler.service.loop import ReconcileLoop
from reconciler.service.process import (
    SHUTDOWN_GRACE_SECONDS,
    TICK_SECONDS,
    ServeError,
    build_server,
    run_until,
    stop_on_signals,
)

log = logging.getLogger("reconciler.service")

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
MAX_WORKERS = 64
STATUS_FILE = "loop-status.json"
STATUS_WRITE_SECONDS = 0.1
ORPHAN_CHECK_SECONDS = 0.5
_STOP_QUEUE = "stop"  # the loop process's queue reader ends on this


@dataclass(frozen=True)
class WorkerLink:
    """What a worker process shares with the reconcile loop's process (nothing for `serve`)."""

    webhooks: Queue[WebhookEvent | str] | None = None
    status_path: Path | None = None

    def on_webhook(self, event: WebhookEvent) -> None:
        """Hand a verified delivery to the loop's process; returns at once."""
        assert self.webhooks is not None, "no reconcile loop in this group"
        self.webhooks.put(event)

    def status(self) -> dict[str, Any]:
        """The loop's last published state (`starting` until it has published one)."""
        assert self.status_path is not None, "no reconcile loop in this group"
        try:
            body: dict[str, Any] = json.loads(self.status_path.read_text())
        except FileNotFoundError:
            return {"role": "starting", "failing": False}
        return body


class WorkerTarget(Protocol):
    """What the command gives the workers: picklable (a module-level class), so that a spawned
    process can rebuild it."""

    @property
    def reconciles(self) -> bool:
        """Whether the group runs the reconcile loop (`run`) or serves alone (`serve`)."""
        ...

    def app(self, link: WorkerLink) -> AbstractContextManager[Any]:
        """The ASGI app of one worker, for as long as the context is open."""
        ...

    def loop(self) -> AbstractContextManager[ReconcileLoop]:
        """The reconcile loop, for as long as the context is open (only when `reconciles`)."""
        ...


def bind(host: str, port: int) -> socket.socket:
    """The listening socket every worker shares; a taken port or a bad host is a ServeError."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
    except OSError as err:
        sock.close()
        raise ServeError(f"the API could not serve on {host}:{port} (is the port in use?): {err}") from err
    sock.set_inheritable(True)
    return sock


def serve_workers(target: WorkerTarget, *, host: str, port: int, workers: int, log_format: LogFormat) -> None:
    """Serve with `workers` API processes (and the loop process when the target reconciles)
    until SIGTERM/SIGINT; returns after a clean shutdown."""
    if not 1 <= workers <= MAX_WORKERS:
        raise ServeError(f"--workers must be between 1 and {MAX_WORKERS}, not {workers}")
    with (
        stop_on_signals() as stop,
        bind(host, port) as sock,
        tempfile.TemporaryDirectory(prefix="reconciler-") as run_dir,
    ):
        _supervise(stop, target, sock, Path(run_dir), workers, log_format)


def _supervise(
    stop: threading.Event,
    target: WorkerTarget,
    sock: socket.socket,
    run_dir: Path,
    workers: int,
    log_format: LogFormat,
) -> None:
    spawn = multiprocessing.get_context("spawn")
    metrics_dir = run_dir / "metrics"
    metrics_dir.mkdir()
    link = WorkerLink()
    loop_process: BaseProcess | None = None
    with _child_environment({MULTIPROC_ENV: str(metrics_dir)}):
        if target.reconciles:
            link = WorkerLink(spawn.Queue(), run_dir / STATUS_FILE)
            loop_process = spawn.Process(
                target=_loop_main, args=(target, link, log_format), name="reconcile-loop", daemon=False
            )
            loop_process.start()
        api = [
            spawn.Process(target=_worker_main, args=(target, link, sock, log_format), name=f"api-{n}")
            for n in range(1, workers + 1)
        ]
        for process in api:
            process.start()
    host, port = sock.getsockname()[:2]
    log.info(
        "serving on %s:%s with %d API worker processes%s",
        host,
        port,
        workers,
        " and the reconcile loop in its own process" if loop_process else "",
        extra={"workers": workers},
    )
    children = [*api, *([loop_process] if loop_process else [])]
    while not stop.wait(TICK_SECONDS):
        if any(not child.is_alive() for child in children):
            break
    died = [child for child in children if not child.is_alive()] if not stop.is_set() else []
    if loop_process is not None:
        _stop(loop_process, None)  # finishes the pass in progress and releases the leader lock
    for process in api:
        _signal(process)
    for process in api:
        _stop(process, SHUTDOWN_GRACE_SECONDS)
    if link.webhooks is not None:
        link.webhooks.close()
    if died:
        names = ", ".join(f"{child.name} (exit {child.exitcode})" for child in died)
        raise ServeError(f"a process of this server stopped on its own: {names}; see the log above")
    log.info("shut down cleanly")


@contextlib.contextmanager
def _child_environment(values: dict[str, str]) -> Iterator[None]:
    """Environment variables that processes spawned inside the block inherit; this process's
    own environment is restored after."""
    saved = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _signal(process: BaseProcess) -> None:
    if process.is_alive() and process.pid is not None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(process.pid, signal.SIGTERM)


def _stop(process: BaseProcess, timeout: float | None) -> None:
    """SIGTERM, wait (forever when `timeout` is None), then SIGKILL if it is still there."""
    _signal(process)
    process.join(timeout)
    if process.is_alive():
        log.warning("%s did not stop within %s s: killed", process.name, timeout)
        process.kill()
        process.join()


def _stop_on_signals() -> threading.Event:
    """Set on SIGTERM or SIGINT, or when the supervisor is gone (killed with SIGKILL, it could
    not stop its children: they notice they were handed to another parent and stop)."""
    stop = threading.Event()

    def on_signal(_signum: int, _frame: FrameType | None) -> None:
        stop.set()

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, on_signal)
    parent = os.getppid()

    def watch_parent() -> None:
        while not stop.wait(ORPHAN_CHECK_SECONDS):
            if os.getppid() != parent:
                log.warning("the supervisor process is gone: stopping")
                stop.set()

    threading.Thread(target=watch_parent, name="parent-watch", daemon=True).start()
    return stop


def _worker_main(target: WorkerTarget, link: WorkerLink, sock: socket.socket, log_format: LogFormat) -> None:
    """One API worker: builds the app and serves the shared socket until SIGTERM."""
    configure_logging(log_format)
    stop = _stop_on_signals()
    host, port = sock.getsockname()[:2]
    with target.app(link) as app:
        run_until(stop, build_server(app, host, port), None, sockets=[sock])


def _loop_main(target: WorkerTarget, link: WorkerLink, log_format: LogFormat) -> None:
    """The reconcile loop's process: the loop, the webhooks the workers forward, its status."""
    configure_logging(log_format)
    stop = _stop_on_signals()
    assert link.webhooks is not None and link.status_path is not None
    with target.loop() as loop:
        runner = threading.Thread(target=loop.run, name="reconcile-loop", daemon=True)
        runner.start()
        readers = [
            threading.Thread(target=_forward_webhooks, args=(link.webhooks, loop), daemon=True),
            threading.Thread(target=_publish_status, args=(loop, link.status_path, stop), daemon=True),
        ]
        for reader in readers:
            reader.start()
        while not stop.wait(TICK_SECONDS):
            if not runner.is_alive():
                log.error("the reconcile loop stopped unexpectedly")
                raise SystemExit(2)
        loop.stop()
        runner.join()
        _write_status(loop.status, link.status_path)
        link.webhooks.put(_STOP_QUEUE)


def _forward_webhooks(queue: Queue[WebhookEvent | str], loop: ReconcileLoop) -> None:
    while True:
        event = queue.get()
        if isinstance(event, str):
            return
        try:
            loop.on_webhook(event)
        except Exception:  # one odd event must not stop the others from reaching the loop
            log.exception("could not hand a webhook to the reconcile loop")


def _publish_status(loop: ReconcileLoop, path: Path, stop: threading.Event) -> None:
    last = ""
    while not stop.wait(STATUS_WRITE_SECONDS):
        last = _write_status(loop.status, path, last)


def _write_status(status: Callable[[], dict[str, Any]], path: Path, last: str = "") -> str:
    """Replace the status file when the state changed (atomically: a reader sees the old or the
    new one, never half); returns what was written."""
    text = json.dumps(status(), sort_keys=True)
    if text != last:
        partial = path.with_suffix(".tmp")
        partial.write_text(text)
        partial.replace(path)
    return text
