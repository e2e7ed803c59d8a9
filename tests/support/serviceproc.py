"""Run `reconciler run` / `reconciler serve` as real processes in tests and talk to them over HTTP."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from tests.support.paths import ROOT

START_TIMEOUT = 30.0  # imports plus migrations on a loaded CI machine


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Service:
    """One running `reconciler` process and its HTTP address."""

    process: subprocess.Popen[str]
    port: int
    log_path: Path
    env: dict[str, str] = field(default_factory=dict)

    @classmethod
    def start(cls, tmp_path: Path, name: str, *args: str, env: dict[str, str] | None = None) -> Service:
        """Start the command and wait until it answers /healthz."""
        service = cls.launch(tmp_path, name, *args, env=env)
        service.wait_ready()
        return service

    @classmethod
    def launch(cls, tmp_path: Path, name: str, *args: str, env: dict[str, str] | None = None) -> Service:
        """Start the command without waiting (start several, then `wait_ready` each)."""
        port = free_port()
        log_path = tmp_path / f"{name}.log"
        full_env = {
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "XDG_CACHE_HOME": str(tmp_path / f"{name}-cache"),
            **(env or {}),
        }
        with log_path.open("w") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", "reconciler", *args, "--port", str(port)],
                cwd=tmp_path,
                env=full_env,
                stdout=log,
                stderr=subprocess.STDOUT,
                text=True,
            )
        return cls(process, port, log_path, full_env)

    def wait_ready(self) -> None:
        self.wait_until(lambda: self.get("/healthz").status_code == 200, START_TIMEOUT)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def get(self, path: str, **params: Any) -> httpx.Response:
        return httpx.get(self.url + path, params=params, timeout=5.0)

    def status(self) -> dict[str, Any]:
        body: dict[str, Any] = self.get("/api/reconciler/status").json()
        return body

    def log(self) -> str:
        return self.log_path.read_text()

    def wait_until(self, predicate: Callable[[], bool], timeout: float = 10.0) -> float:
        started = time.monotonic()
        while True:
            if self.process.poll() is not None:
                raise AssertionError(f"reconciler exited with {self.process.returncode}:\n{self.log()}")
            try:
                if predicate():
                    return time.monotonic() - started
            except httpx.TransportError:
                pass
            if time.monotonic() - started > timeout:
                raise AssertionError(f"condition not reached within {timeout} s:\n{self.log()}")
            time.sleep(0.05)

    def terminate(self, timeout: float = 10.0) -> tuple[int, float]:
        """SIGTERM (to this process alone, as an orchestrator sends it); (exit code, seconds taken)."""
        started = time.monotonic()
        self.process.send_signal(signal.SIGTERM)
        code = self.process.wait(timeout)
        return code, time.monotonic() - started

    def kill(self) -> None:
        self.process.kill()
        self.process.wait(10)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.kill()
