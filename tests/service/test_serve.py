"""`serve`/`run_until` in-process: a port that is taken is a clear error, not a hang."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from reconciler.api import create_app
from reconciler.service import LoopSettings, ReconcileLoop, ServeError
from reconciler.service.process import build_server, run_until
from reconciler.store import Store
from tests.support.passes import Result


def test_a_port_in_use_stops_the_loop_releases_the_lock_and_says_so(tmp_path: Path) -> None:
    with socket.socket() as taken, Store.open(tmp_path / "store.db") as store:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        loop = ReconcileLoop(Result, store.leader_lock(), LoopSettings(interval=60))
        server = build_server(create_app(store, status_provider=loop.status), "127.0.0.1", port)
        with pytest.raises(ServeError, match=f"could not serve on 127.0.0.1:{port}"):
            run_until(threading.Event(), server, loop)
        assert loop.status()["role"] == "stopped"
        other = store.leader_lock()
        assert other.acquire(0.0)  # the loop let go of leadership on the way out
        other.release()


def test_stopping_waits_for_the_pass_in_progress_then_stops_the_api(tmp_path: Path) -> None:
    started, release, finished = threading.Event(), threading.Event(), threading.Event()

    def slow_pass() -> Result:
        started.set()
        release.wait(5)
        finished.set()
        return Result(applied=1)

    with Store.open(tmp_path / "store.db") as store:
        loop = ReconcileLoop(slow_pass, store.leader_lock(), LoopSettings(interval=60))
        server = build_server(create_app(store, status_provider=loop.status), "127.0.0.1", 0)
        stop = threading.Event()
        runner = threading.Thread(target=run_until, args=(stop, server, loop))
        runner.start()
        assert started.wait(10)
        stop.set()  # what SIGTERM does
        runner.join(0.3)
        assert runner.is_alive()  # still finishing the pass
        release.set()
        runner.join(10)
        assert not runner.is_alive()
        assert finished.is_set()
        assert loop.status()["last_result"]["applied"] == 1
        assert server.should_exit


def test_a_loop_that_dies_of_a_bug_ends_the_process_instead_of_serving_stale_data(tmp_path: Path) -> None:
    class BuggyLoop(ReconcileLoop):
        def step(self) -> float:
            raise RuntimeError("a bug in the loop itself")

    with Store.open(tmp_path / "store.db") as store:
        loop = BuggyLoop(Result, store.leader_lock(), LoopSettings(interval=60))
        server = build_server(create_app(store, status_provider=loop.status), "127.0.0.1", 0)
        with pytest.raises(ServeError, match="reconcile loop stopped unexpectedly"):
            run_until(threading.Event(), server, loop)
        assert server.should_exit


def test_the_api_is_served_on_uvloop_and_httptools(tmp_path: Path) -> None:
    seen: dict[str, str] = {}

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        seen["loop"] = type(asyncio.get_running_loop()).__module__
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        server = build_server(app, "127.0.0.1", port)
        stop = threading.Event()
        runner = threading.Thread(target=run_until, args=(stop, server, None, [sock]))
        runner.start()
        try:
            deadline = time.monotonic() + 10
            while not server.started and time.monotonic() < deadline:
                time.sleep(0.02)
            answer = httpx.get(f"http://127.0.0.1:{port}/")
        finally:
            stop.set()
            runner.join(10)
    assert answer.text == "ok"
    assert "server" not in answer.headers  # nothing to gain from naming the server
    assert seen["loop"].startswith("uvloop")
    assert server.config.http_protocol_class.__name__ == "HttpToolsProtocol"
