"""Benchmark: `reconciler validate` on a large policy repository, against two baselines.

Generates a repository of 10,000 change requests and 200 policies (bench/.work/repo), then
times in one run:

1. `reconciler validate` cold: a fresh process, nothing cached, the way CI runs it;
2. `check-jsonschema` validating the same files against our JSON Schemas (what a user would
   otherwise wire into CI), one invocation per kind;
3. a bare single-process parse of the same bytes with PyYAML's C loader (no validation at
   all), in this process, so without interpreter start-up.

Usage: python bench/validate.py [--changes N] [--policies N] [--repeat N]
Targets (bench/README.md): validate >= 20x faster than check-jsonschema, and no slower than
the bare parse.
"""

from __future__ import annotations

import argparse
import os
import random
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

import yaml

from reconciler.model.states import FLAG_ACTIONS

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / "bench" / ".work"
ENVIRONMENTS = ["development", "staging", "production"]
ROLES = ["release-managers", "platform", "payments", "growth", "sre", "security"]
LOGINS = [f"dev-{i:02}" for i in range(12)]


def project() -> dict[str, object]:
    environments = [
        {"key": key, "id": 100 + i, "name": key.title(), "api_token": f"phc_{key}"}
        for i, key in enumerate(ENVIRONMENTS)
    ]
    return {
        "apiVersion": "reconciler/v1",
        "kind": "Project",
        "metadata": {"name": "bench"},
        "spec": {"environments": environments, "github": {"repository": "acme/feature-flag-policies"}},
    }


def members() -> dict[str, object]:
    people = [
        {
            "login": login,
            "email": f"{login}@acme.example",
            "level": 8 if i < 3 else 1,
            "roles": ROLES[i % 6 : i % 6 + 2],
        }
        for i, login in enumerate(LOGINS)
    ]
    return {
        "apiVersion": "reconciler/v1",
        "kind": "Members",
        "metadata": {"name": "people"},
        "spec": {"roles": [{"name": r} for r in ROLES], "members": people},
    }


def policy(i: int, rng: random.Random) -> dict[str, object]:
    spec: dict[str, object] = {
        "action_key": FLAG_ACTIONS[i % 6],
        "match": {"environments": [ENVIRONMENTS[i % 3]], "flags": [f"team-{i % 17}-*"]},
        "approver_config": {
            "quorum": 1 + i % 2,
            "roles": rng.sample(ROLES, 2),
            "users": rng.sample(LOGINS, 2),
        },
        "bypass_roles": ["sre"],
        "expires_after": f"{1 + i % 14}d",
    }
    if i % 5 == 0:
        spec["conditions"] = {
            "type": "change_amount",
            "field": "rollout_percentage",
            "operator": ">=",
            "value": 20,
        }
    return {
        "apiVersion": "reconciler/v1",
        "kind": "ApprovalPolicy",
        "metadata": {"name": f"policy-{i:04}"},
        "spec": spec,
    }


def change(i: int, rng: random.Random) -> dict[str, object]:
    action = FLAG_ACTIONS[i % 6].removeprefix("feature_flag.")
    env = ENVIRONMENTS[i % 3]
    spec: dict[str, object] = {
        "action_key": f"feature_flag.{action}",
        "resource_id": f"team-{i % 17}-flag-{i % 400}",
        "environment": env,
    }
    if action == "update":
        spec["base_version"] = 1 + i % 9
        spec["instructions"] = [
            {"kind": "updateRollout", "group": 0, "percentage": rng.randint(0, 100)},
            {
                "kind": "addGroup",
                "properties": [{"key": "email", "value": "@acme.example", "operator": "icontains"}],
            },
            {"kind": "addTags", "tags": ["bench", f"wave-{i % 7}"]},
        ]
    elif action == "enable":
        spec["instructions"] = [{"kind": "turnFlagOn"}]
    elif action == "create":
        spec["flag"] = {
            "name": f"Flag {i}",
            "active": False,
            "filters": {"groups": [{"properties": [], "rollout_percentage": 10}]},
            "tags": ["bench"],
        }
    elif action == "copy":
        spec["source_environment"] = ENVIRONMENTS[(i + 1) % 3]
        spec["excluded_actions"] = ["active"]
    return {
        "apiVersion": "reconciler/v1",
        "kind": "ChangeRequest",
        "metadata": {"name": f"change-{i:05}", "description": f"Generated change request number {i}."},
        "spec": spec,
    }


def generate(changes: int, policies: int) -> Path:
    repo = WORK / "repo"
    shutil.rmtree(repo, ignore_errors=True)
    (repo / "policies").mkdir(parents=True)
    rng = random.Random(1)

    def write(path: Path, doc: object) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")

    write(repo / "reconciler.yaml", project())
    write(repo / "members.yaml", members())
    for i in range(policies):
        write(repo / "policies" / f"policy-{i:04}.yaml", policy(i, rng))
    for i in range(changes):
        write(repo / "changes" / f"batch-{i // 500:02}" / f"change-{i:05}.yaml", change(i, rng))
    return repo


def files_by_kind(repo: Path) -> dict[str, list[Path]]:
    return {
        "project": [repo / "reconciler.yaml"],
        "members": [repo / "members.yaml"],
        "approval-policy": sorted((repo / "policies").glob("*.yaml")),
        "change-request": sorted((repo / "changes").rglob("*.yaml")),
    }


Timing = tuple[float, float]  # wall-clock seconds, CPU seconds (all processes, user + system)


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_timed(commands: list[list[str]]) -> Timing:
    """Wall and CPU time of commands run one after the other (CPU includes their workers)."""
    cpu, started = children_cpu(), time.perf_counter()
    for command in commands:
        result = subprocess.run(command, check=False, capture_output=True, text=True)
        if result.returncode != 0:
            raise SystemExit(f"{command[0]} failed:\n{result.stdout[-2000:]}{result.stderr[-2000:]}")
    return time.perf_counter() - started, children_cpu() - cpu


def time_validate(repo: Path) -> Timing:
    return run_timed([[sys.executable, "-m", "reconciler", "validate", str(repo)]])


def time_check_jsonschema(repo: Path) -> Timing:
    tool = shutil.which("check-jsonschema", path=str(Path(sys.executable).parent)) or "check-jsonschema"
    return run_timed(
        [
            [tool, "--schemafile", str(ROOT / "schemas" / f"{kind}.schema.json"), *map(str, files)]
            for kind, files in files_by_kind(repo).items()
        ]
    )


def time_bare_parse(repo: Path) -> Timing:
    files = [f for group in files_by_kind(repo).values() for f in group]
    cpu, started = time.process_time(), time.perf_counter()
    for path in files:
        yaml.load(path.read_bytes(), Loader=yaml.CSafeLoader)
    return time.perf_counter() - started, time.process_time() - cpu


def best(runs: list[Timing]) -> Timing:
    """The least disturbed run: the machine may be busy with other work."""
    return min(runs)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--changes", type=int, default=10_000)
    parser.add_argument("--policies", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=3, help="runs of the fast measurements (best is kept)")
    parser.add_argument("--skip-check-jsonschema", action="store_true", help="only the fast measurements")
    args = parser.parse_args()

    repo = generate(args.changes, args.policies)
    count = sum(len(v) for v in files_by_kind(repo).values())
    print(f"repository: {count} files in {repo.relative_to(ROOT)}; {os.cpu_count()} CPUs")
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    bare_runs: list[Timing] = []
    our_runs: list[Timing] = []
    for _ in range(args.repeat):  # interleaved, so that a burst of other load hits both alike
        bare_runs.append(time_bare_parse(repo))
        our_runs.append(time_validate(repo))
    bare, ours = best(bare_runs), best(our_runs)
    theirs = (float("nan"), float("nan")) if args.skip_check_jsonschema else time_check_jsonschema(repo)
    print(f"load average after:  {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"{'':36} {'wall s':>8} {'CPU s':>8} {'wall ratio':>11} {'CPU ratio':>10}")
    rows = [
        ("reconciler validate (cold process)", ours),
        ("check-jsonschema (4 invocations)", theirs),
        ("bare PyYAML CSafeLoader parse", bare),
    ]
    for label, (wall, cpu) in rows:
        print(f"{label:36} {wall:8.2f} {cpu:8.2f} {wall / ours[0]:10.2f}x {cpu / ours[1]:9.2f}x")
    print("(ratios: that row's time divided by reconciler validate's; > 1 means validate is faster)")


if __name__ == "__main__":
    main()
