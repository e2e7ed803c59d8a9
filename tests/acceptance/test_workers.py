"""`serve --workers N` and `run --workers N` as real processes: several API processes on one
port, one process that reconciles, webhooks and status across them, a clean or loud exit."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from reconciler.github.webhooks import sign
from reconciler.store import Store
from tests.support import policyrepo as pr
from tests.support.gitutil import GitRepo
from tests.support.paths import ROOT
from tests.support.serviceproc import Service

SECRET = "webhook secret for tests"

pytestmark = pytest.mark.slow  # real processes, each worker a fresh interpreter

# Each worker imports the whole application afresh: on a machine busy with other work that
# takes far longer than one process's start.
WORKERS_START = 180.0


@pytest.fixture
def services() -> Iterator[list[Service]]:
    started: list[Service] = []
    yield started
    for service in started:
        service.stop()


def start(services: list[Service], tmp_path: Path, *args: str, **env: str) -> Service:
    """Launch, make sure the fixture stops it even if it never gets ready, wait for both workers."""
    service = Service.launch(tmp_path, args[0], *args, env=env)
    services.append(service)
    service.wait_until(lambda: len(worker_pids(service)) == 2, WORKERS_START)
    service.wait_until(lambda: service.get("/healthz").status_code == 200, WORKERS_START)
    return service


def worker_pids(service: Service) -> set[int]:
    return {int(pid) for pid in re.findall(r"Started server process \[(\d+)\]", service.log())}


def healthz_count(metrics: str) -> float:
    found = re.search(
        r'reconciler_api_request_duration_seconds_count\{[^}]*route="/healthz"[^}]*\} (\S+)', metrics
    )
    return float(found.group(1)) if found else 0.0


def alive(pid: int) -> bool:
    """Whether the process runs (an exited one waiting to be reaped does not)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def flag_rollout(service: Service, key: str) -> float | None:
    answer = service.get("/api/projects/1/feature_flags/")
    if answer.status_code == 404:  # the first pass has not created the environment yet
        return None
    for flag in answer.json()["results"]:
        if flag["key"] == key:
            return float(flag["filters"]["groups"][0]["rollout_percentage"])
    return None


def push(service: Service, head: str, delivery: str) -> httpx.Response:
    body = json.dumps({"ref": "refs/heads/main", "before": "0" * 40, "after": head}).encode()
    return httpx.post(
        service.url + "/webhooks/github",
        content=body,
        headers={
            "X-GitHub-Event": "push",
            "X-GitHub-Delivery": delivery,
            "X-Hub-Signature-256": sign(SECRET.encode(), body),
            "Content-Type": "application/json",
        },
    )


def test_serve_with_two_workers_answers_from_two_processes_and_stops_them_all(
    services: list[Service], tmp_path: Path
) -> None:
    store = tmp_path / "store.db"
    Store.open(store).close()
    service = start(services, tmp_path, "serve", "--store", str(store), "--workers", "2")
    pids = worker_pids(service)
    assert service.process.pid not in pids  # the supervisor serves nothing itself
    assert "with 2 API worker processes" in service.log()
    with httpx.Client(base_url=service.url) as client:
        before = healthz_count(client.get("/metrics").text)
        for _ in range(20):
            with httpx.Client(base_url=service.url) as fresh:  # a new connection: either worker
                assert fresh.get("/healthz").json() == {"status": "ok"}
        assert client.get("/api/projects/1/feature_flags/").status_code == 401  # auth in every worker
        # Requests answered by either worker are counted together (prometheus multiprocess files).
        assert healthz_count(client.get("/metrics").text) == before + 20

    code, _ = service.terminate(90)
    assert code == 0
    assert not any(alive(pid) for pid in pids)
    assert "shut down cleanly" in service.log()


def test_a_worker_that_dies_ends_the_whole_server_with_exit_2(
    services: list[Service], tmp_path: Path
) -> None:
    store = tmp_path / "store.db"
    service = start(services, tmp_path, "serve", "--store", str(store), "--workers", "2")
    victim, other = sorted(worker_pids(service))
    os.kill(victim, signal.SIGKILL)
    assert service.process.wait(90) == 2
    assert "a process of this server stopped on its own: api-" in service.log()
    assert not alive(other)


def test_workers_stop_when_the_supervisor_is_killed(services: list[Service], tmp_path: Path) -> None:
    service = start(services, tmp_path, "serve", "--store", str(tmp_path / "s.db"), "--workers", "2")
    pids = worker_pids(service)
    service.kill()  # SIGKILL: the supervisor cannot stop them itself
    deadline = time.monotonic() + 60
    while any(alive(pid) for pid in pids):
        assert time.monotonic() < deadline, "orphaned workers kept running"
        time.sleep(0.1)
    assert "the supervisor process is gone: stopping" in service.log()


def test_a_taken_port_is_a_clear_error_before_any_worker_starts(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        command = ["serve", "--store", str(tmp_path / "s.db"), "--workers", "2", "--port", str(port)]
        result = subprocess.run(
            [sys.executable, "-m", "reconciler", *command],
            cwd=tmp_path,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert result.returncode == 2
    assert f"could not serve on 127.0.0.1:{port}" in result.stderr
    assert "Started server process" not in result.stderr


def test_workers_beyond_the_cap_are_refused(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "reconciler", "serve", "--store", str(tmp_path / "s.db"), "--workers", "0"],
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert "--workers" in result.stderr


def test_run_with_two_workers_applies_each_change_once_and_a_webhook_to_any_worker_starts_a_pass(
    services: list[Service], tmp_path: Path, git_repo: GitRepo, store_url: str
) -> None:
    pr.bootstrap(git_repo)
    pr.land(
        git_repo, {"changes/create-checkout.yaml": pr.create_flag("create-checkout", "checkout", rollout=0)}
    )
    args = ["run", "--repo", str(git_repo.path), "--store", store_url, "--allow-anonymous"]
    args += ["--interval", "600", "--branch", "main", "--workers", "2"]
    service = start(services, tmp_path, *args, RECONCILER_WEBHOOK_SECRET=SECRET)
    service.wait_until(lambda: flag_rollout(service, "checkout") == 0, 60)
    # Every worker reports the one loop: it leads, and it has run the first pass.
    statuses = [service.status()["service"] for _ in range(10)]
    assert {s["role"] for s in statuses} == {"leader"}

    percentages = [10, 20, 40]
    for n, percentage in enumerate(percentages):
        pr.land(git_repo, {f"changes/ramp-{n}.yaml": pr.ramp(f"ramp-{n}", "checkout", percentage)})
        # The poll is ten minutes away: only the webhook, received by whichever worker takes
        # the connection, can start this pass.
        assert push(service, git_repo.head(), f"delivery-{n}").status_code == 202
        service.wait_until(lambda p=percentage: flag_rollout(service, "checkout") == p, 15)  # type: ignore[misc]
    assert push(service, git_repo.head(), "delivery-0").json()["status"] == "duplicate"

    metrics = service.get("/metrics").text
    assert 'reconciler_webhook_deliveries_total{event="push",result="pass_requested"} 3.0' in metrics
    assert "reconciler_leader 1.0" in metrics  # one leader, summed over the processes
    assert service.status()["last_applied_commit"] == git_repo.head()

    code, _ = service.terminate(90)
    assert code == 0
    with Store.open(store_url) as store:
        _, requests = store.list_change_requests()
        assert sorted(r.state for r in requests) == ["applied"] * (1 + len(percentages))
        producing = sorted(v.change_request_id or "" for v in store.flag_history(1, "checkout"))
        assert producing == sorted(r.id for r in requests)  # one flag version per change, no more
        lock = store.leader_lock()
        assert lock.acquire(0.0)  # the loop's process let go of the lock on the way out
        lock.release()
