"""The peer of `bench/api.py`: the Unleash server answering its frontend API for the same flags.

`unleash-server` (npm) is installed into `bench/.work/unleash/` on first use (git-ignored), runs
on its own database `unleash_bench` on the PostgreSQL server of RECONCILER_TEST_POSTGRES_URL
(dropped and created afresh on each run), and gets one flag per flag of ours through its admin
API: same keys, one `flexibleRollout` strategy per condition group of ours (same rollout
percentage, the same property condition as a constraint), enabled in its `development`
environment. Its frontend API (`/api/frontend`, the endpoint browser and mobile SDKs call to
have every flag evaluated for one user; `POST` with the context in the body, as our `POST
/flags` is measured) is then measured with the same load generator, in the same rounds as
our endpoints.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import httpx
import sqlalchemy as sa

ROOT = Path(__file__).resolve().parent.parent
HOME = ROOT / "bench" / ".work" / "unleash"
VERSION = "8.2.0"
PACKAGE = f"unleash-server@{VERSION}"
DATABASE = "unleash_bench"
ADMIN_TOKEN = "*:*.bench-admin-token"
FRONTEND_TOKEN = "default:development.bench-frontend-token"
ENVIRONMENT = "development"


def install() -> Path:
    """The server's entry point, installing the pinned version with npm the first time."""
    entry = HOME / "node_modules" / "unleash-server" / "dist" / "server.js"
    if not entry.exists():
        HOME.mkdir(parents=True, exist_ok=True)
        print(f"  installing unleash-server {VERSION} into {HOME} (once)")
        subprocess.run(
            ["npm", "install", "--prefix", str(HOME), "--no-audit", "--no-fund", "--loglevel=error", PACKAGE],
            check=True,
        )
    return entry


def fresh_database(admin_url: str) -> str:
    """Drop and create `unleash_bench`; returns its URL as node-postgres reads it."""
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE)'))
            conn.execute(sa.text(f'CREATE DATABASE "{DATABASE}"'))
    finally:
        admin.dispose()
    url = sa.engine.make_url(admin_url)
    password = f":{url.password}" if url.password else ""
    return f"postgres://{url.username}{password}@{url.host}:{url.port or 5432}/{DATABASE}"


@contextmanager
def server(admin_url: str, port: int, logfile: Path) -> Iterator[str]:
    """Unleash on `port` over a fresh database; yields its base URL."""
    entry = install()
    env = {
        **os.environ,
        "DATABASE_URL": fresh_database(admin_url),
        "DATABASE_SSL": "false",
        "HTTP_PORT": str(port),
        "NODE_ENV": "production",
        "LOG_LEVEL": "warn",
        "TZ": "UTC",
        "INIT_ADMIN_API_TOKENS": ADMIN_TOKEN,
        "INIT_FRONTEND_API_TOKENS": FRONTEND_TOKEN,
    }
    with logfile.open("w") as log:
        proc = subprocess.Popen(["node", str(entry)], env=env, cwd=HOME, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180  # the first start runs its migrations
        while True:
            try:
                if httpx.get(f"{base}/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline or proc.poll() is not None:
                raise RuntimeError(f"the Unleash server did not start; see {logfile}")
            time.sleep(0.5)
        yield base
    finally:
        proc.terminate()
        proc.wait(30)


@dataclass(frozen=True)
class Rule:
    """One release condition, written for both servers: a rollout among the users whose
    `property` matches (`contains` the value, ignoring case; or is `in` the values); without a
    property, among everyone. Ours: a PostHog condition group; Unleash: a `flexibleRollout`
    strategy with one constraint. A flag's rules apply in order, the first that matches wins."""

    rollout: int
    property: str | None = None
    operator: Literal["contains", "in"] = "in"
    values: tuple[str, ...] = ()


def strategy(key: str, rule: Rule) -> dict[str, Any]:
    constraints = []
    if rule.property is not None:
        operator = "STR_CONTAINS" if rule.operator == "contains" else "IN"
        constraints.append(
            {
                "contextName": rule.property,
                "operator": operator,
                "values": list(rule.values),
                "caseInsensitive": rule.operator == "contains",
                "inverted": False,
            }
        )
    parameters = {"rollout": str(rule.rollout), "stickiness": "default", "groupId": key}
    return {"name": "flexibleRollout", "parameters": parameters, "constraints": constraints}


def create_flags(base: str, flags: dict[str, list[Rule]]) -> None:
    """One enabled flag per key, with one strategy per rule."""
    headers = {"Authorization": ADMIN_TOKEN}
    project = f"{base}/api/admin/projects/default/features"
    with httpx.Client(headers=headers, timeout=30) as client:
        for key, rules in flags.items():
            client.post(project, json={"name": key, "type": "release"}).raise_for_status()
            where = f"{project}/{key}/environments/{ENVIRONMENT}"
            for rule in rules:
                client.post(f"{where}/strategies", json=strategy(key, rule)).raise_for_status()
            client.post(f"{where}/on").raise_for_status()


def wait_for_frontend(base: str, path: str, body: str, flags: int) -> int:
    """Wait until the frontend API answers with the new flags (it refreshes from the database on
    its own schedule); returns how many are on for the benchmark's user."""
    deadline = time.monotonic() + 60
    seen = -1
    while time.monotonic() < deadline:
        headers = {"Authorization": FRONTEND_TOKEN, "Content-Type": "application/json"}
        answer = httpx.post(base + path, headers=headers, content=body, timeout=5)
        answer.raise_for_status()
        count = len(answer.json()["toggles"])
        if count > 0 and count == seen:
            return count
        seen = count
        time.sleep(2)
    raise RuntimeError(f"Unleash's frontend API did not show the {flags} flags within a minute")
