"""`reconciler run` and `reconciler serve` as real processes: signals, webhooks, outages.

Each test builds a policy repository in tmp_path (trailer approvals, tests/support/policyrepo.py),
starts the command as a subprocess on a free port and talks to it over HTTP.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from reconciler.github.webhooks import sign
from reconciler.store import Store
from tests.support import policyrepo as pr
from tests.support.gitutil import GitRepo
from tests.support.serviceproc import Service

SECRET = "webhook secret for tests"

# Each test starts real processes; their imports alone take seconds on a busy machine.
pytestmark = pytest.mark.slow


@pytest.fixture
def services() -> Iterator[list[Service]]:
    started: list[Service] = []
    yield started
    for service in started:
        service.stop()


def start(services: list[Service], tmp_path: Path, name: str, *args: str, **env: str) -> Service:
    service = Service.start(tmp_path, name, *args, env=env)
    services.append(service)
    return service


def flag_rollout(service: Service, key: str) -> float | None:
    answer = service.get("/api/projects/1/feature_flags/")
    if answer.status_code == 404:  # the first pass has not created the environment yet
        return None
    flags = answer.json()["results"]
    for flag in flags:
        if flag["key"] == key:
            return float(flag["filters"]["groups"][0]["rollout_percentage"])
    return None


def run_args(repo: str, store: str, *extra: str) -> list[str]:
    return ["run", "--repo", repo, "--store", store, "--allow-anonymous", *extra]


def test_run_and_serve_share_a_store_and_exit_zero_on_sigterm(
    services: list[Service], tmp_path: Path, git_repo: GitRepo
) -> None:
    pr.bootstrap(git_repo)
    pr.land(
        git_repo, {"changes/create-checkout.yaml": pr.create_flag("create-checkout", "checkout", rollout=25)}
    )
    store = str(tmp_path / "store.db")
    runner = start(services, tmp_path, "run", *run_args(str(git_repo.path), store, "--interval", "0.5"))
    runner.wait_until(lambda: flag_rollout(runner, "checkout") == 25)
    server = start(
        services, tmp_path, "serve", "serve", "--store", store, "--allow-anonymous", "--log-format", "json"
    )
    assert flag_rollout(server, "checkout") == 25
    assert server.status()["last_applied_commit"] == git_repo.head()
    assert server.status()["service"] == {}  # no loop in this process
    board = runner.get("/ui/")  # the dashboard is served by both commands, with the loop's state
    assert (
        board.status_code == 200 and 'Sync status: <span class="sync sync-Synced">Synced</span>' in board.text
    )
    assert "Last pass" in board.text and "Last pass" not in server.get("/ui/").text
    assert "History" in server.get("/ui/flags/production/checkout").text

    code, seconds = runner.terminate()
    assert code == 0
    assert seconds < 5
    assert "shut down cleanly" in runner.log()
    with Store.open(store) as opened:
        assert opened.position().sync_status == "Synced"
        lock = opened.leader_lock()
        assert lock.acquire(0.0)  # the stopped leader let go of the lock
        lock.release()

    assert flag_rollout(server, "checkout") == 25  # the API replica is unaffected
    assert server.terminate()[0] == 0
    lines = [json.loads(line) for line in server.log().splitlines() if line.startswith("{")]
    assert any(line["message"] == "shut down cleanly" for line in lines)


def test_a_push_webhook_applies_a_change_before_the_next_poll(
    services: list[Service], tmp_path: Path, git_repo: GitRepo
) -> None:
    pr.bootstrap(git_repo)
    pr.land(
        git_repo, {"changes/create-checkout.yaml": pr.create_flag("create-checkout", "checkout", rollout=10)}
    )
    args = run_args(str(git_repo.path), str(tmp_path / "store.db"), "--interval", "600", "--branch", "main")
    service = start(services, tmp_path, "run", *args, RECONCILER_WEBHOOK_SECRET=SECRET)
    service.wait_until(lambda: flag_rollout(service, "checkout") == 10)
    pr.land(git_repo, {"changes/ramp-checkout.yaml": pr.ramp("ramp-checkout", "checkout", 40)})
    body = json.dumps({"ref": "refs/heads/main", "before": "0" * 40, "after": git_repo.head()}).encode()
    answer = httpx.post(
        service.url + "/webhooks/github",
        content=body,
        headers={
            "X-GitHub-Event": "push",
            "X-GitHub-Delivery": "delivery-1",
            "X-Hub-Signature-256": sign(SECRET.encode(), body),
            "Content-Type": "application/json",
        },
    )
    assert answer.status_code == 202
    service.wait_until(lambda: flag_rollout(service, "checkout") == 40, 5)
    metrics = service.get("/metrics").text
    assert 'reconciler_webhook_deliveries_total{event="push",result="pass_requested"} 1.0' in metrics


def test_an_unreachable_remote_keeps_serving_and_the_status_says_why(
    services: list[Service], tmp_path: Path, git_repo: GitRepo
) -> None:
    pr.bootstrap(git_repo)
    pr.land(
        git_repo, {"changes/create-checkout.yaml": pr.create_flag("create-checkout", "checkout", rollout=10)}
    )
    url = git_repo.path.as_uri()
    service = start(
        services, tmp_path, "run", *run_args(url, str(tmp_path / "store.db"), "--interval", "0.3")
    )
    service.wait_until(lambda: flag_rollout(service, "checkout") == 10)
    assert service.get("/readyz").status_code == 200

    hidden = git_repo.path.with_name("moved-away")
    shutil.move(git_repo.path, hidden)  # the remote is gone
    service.wait_until(lambda: service.status()["service"]["failing"] is True, 10)
    assert service.get("/readyz").status_code == 200  # still serves reads: stays in rotation
    status = service.status()
    assert "cannot fetch" in status["last_error"]
    assert status["last_error_at"] is not None
    assert status["service"]["failing"] is True
    assert status["service"]["last_error_kind"] == "temporary"
    assert status["service"]["next_attempt_at"] is not None
    assert flag_rollout(service, "checkout") == 10  # the last good state is still served
    metrics = service.get("/metrics").text
    assert "reconciler_git_fetch_failures_total 0.0" not in metrics

    shutil.move(hidden, git_repo.path)  # and back: the loop recovers by itself
    service.wait_until(lambda: service.status()["service"]["consecutive_failures"] == 0, 10)
    assert service.get("/readyz").status_code == 200


@pytest.mark.postgres
def test_two_run_processes_on_postgresql_apply_every_change_exactly_once(
    services: list[Service], tmp_path: Path, git_repo: GitRepo, postgres_url: str
) -> None:
    pr.bootstrap(git_repo)
    pr.land(
        git_repo, {"changes/create-checkout.yaml": pr.create_flag("create-checkout", "checkout", rollout=0)}
    )
    args = run_args(str(git_repo.path), postgres_url, "--interval", "0.3")
    replicas = [Service.launch(tmp_path, name, *args) for name in ("a", "b")]
    services.extend(replicas)
    for replica in replicas:
        replica.wait_ready()

    def applied_head(service: Service) -> bool:
        return bool(service.status()["last_applied_commit"] == git_repo.head())

    percentages = [5, 10, 20, 30, 50, 70, 100]
    for n, percentage in enumerate(percentages[:4]):
        pr.land(git_repo, {f"changes/ramp-{n}.yaml": pr.ramp(f"ramp-{n}", "checkout", percentage)})
    replicas[0].wait_until(lambda: applied_head(replicas[0]), 15)
    roles = {s.status()["service"]["role"]: s for s in replicas}
    assert sorted(roles) == ["leader", "standby"]

    roles["leader"].kill()  # SIGKILL: no clean release; PostgreSQL drops the lock with the session
    for n, percentage in enumerate(percentages[4:], start=4):
        pr.land(git_repo, {f"changes/ramp-{n}.yaml": pr.ramp(f"ramp-{n}", "checkout", percentage)})
    survivor = roles["standby"]
    survivor.wait_until(lambda: applied_head(survivor), 15)
    assert survivor.status()["service"]["role"] == "leader"
    assert flag_rollout(survivor, "checkout") == 100

    with Store.open(postgres_url) as store:
        _, requests = store.list_change_requests()
        assert sorted(r.state for r in requests) == ["applied"] * (1 + len(percentages))
        history = store.flag_history(1, "checkout")
        producing = [v.change_request_id or "" for v in history]
        assert sorted(producing) == sorted(r.id for r in requests)  # one flag version per change
        flag = store.get_flag(1, "checkout")
        assert flag is not None
        assert flag.flag.version == 1 + len(percentages)
