"""`serve`/`run_until` in-process: a port that is taken is a clear error, not a hang."""

from __future__ import annotations

import socket
import threading
from dataclasses import dataclass
from pathlib import Path

import pytest

from reconciler.api import create_app
from reconciler.service import LoopSettings, ReconcileLoop, ServeError
from reconciler.service.process import build_server, run_until
from reconciler.store import Store


@dataclass(frozen=True)
class Result:
    head: str | None = None
    applied: int = 0
    failed: int = 0
    status: str = "Synced"


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
