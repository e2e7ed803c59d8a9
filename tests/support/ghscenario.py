"""Pull requests in a real git repository, mirrored on the fake GitHub, for approval tests.

A `PullRequestScenario` builds the history a policy repository really has: a branch per pull
request with pinned authors and dates, merged into the tracked branch (`main`, the default
branch, unless `create(branch=...)` names another) by a merge commit, a squash commit or
rebased commits, exactly as GitHub's three merge buttons do; and it describes the same pull
request to `tests.support.fakegithub.FakeGitHub` (author, commits, reviews pointing at the real
commits, merge commit, merger), so the reconcile pass and `check-approvals` read both sides
consistently.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal

import httpx

from reconciler.reconcile import PassResult, ReconcileConfig, reconcile_once
from reconciler.store import Store
from tests.support.fakegithub import FakeGitHub
from tests.support.fakegithub import _user as github_user
from tests.support.gitutil import GitRepo
from tests.support.people import ALICE, CAROL
from tests.support.policyrepo import bootstrap, create_flag, policy, project, ramp

MergeMethod = Literal["merge", "squash", "rebase"]
GITHUB = ("GitHub", "noreply@github.com")
REPOSITORY = "acme/feature-flag-policies"


def iso(seconds: int) -> str:
    """A git clock value as GitHub writes times."""
    return datetime.fromtimestamp(seconds, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class Pull:
    number: int
    branch: str
    author: str
    base: str  # the tracked branch's head when the pull request was opened
    created: int
    commits: list[str] = field(default_factory=list)

    @property
    def head(self) -> str:
        return self.commits[-1]


@dataclass
class PullRequestScenario:
    repo: GitRepo
    gh: FakeGitHub
    pulls: dict[int, Pull] = field(default_factory=dict)
    branch: str = "main"  # the tracked branch, that pull requests merge into

    @classmethod
    def create(
        cls, repo: GitRepo, *, quorum: int = 1, branch: str = "main", **fake: Any
    ) -> PullRequestScenario:
        """A bootstrapped policy repository (`approvals.source: github`) and its fake GitHub.

        `branch` other than `main` is a branch taken off `main` after the bootstrap; `main`
        stays the repository's default branch.
        """
        bootstrap(repo, source="github", quorum=quorum)
        if branch != "main":
            repo.git("checkout", "-q", "-b", branch, "main")
        return cls(repo, FakeGitHub(REPOSITORY, **fake), branch=branch)

    def set_dashboard(self, url: str) -> None:
        """`dashboard_url` in the bootstrap's reconciler.yaml, so the rules in force name it from the
        start; call right after `create`."""
        doc = project("github")
        doc["spec"]["dashboard_url"] = url
        self.repo.write("reconciler.yaml", doc)
        self.repo.git("add", "-A")
        self.repo.git(
            "commit", "-q", "--amend", "--no-edit", env={"GIT_COMMITTER_DATE": f"{self.repo.clock} +0000"}
        )

    def now(self) -> datetime:
        """When the scenario's next event happens: a minute after its last commit."""
        return datetime.fromtimestamp(self.repo.clock + 60, tz=UTC)

    def reconcile(self, store: Store, *, now: datetime | None = None) -> PassResult:
        """One reconcile pass of the tracked branch, reading reviews from this scenario's fake GitHub."""
        config = ReconcileConfig(repo=str(self.repo.path), branch=self.branch)
        with self.gh.client() as client:
            return reconcile_once(config, store, github=client, now=now or self.now())

    def land_checkout(self, method: MergeMethod = "merge") -> None:
        """Pull request #1 creates `checkout` in production at 10 %, approved by bob, merged."""
        self.open(1, {"changes/create-checkout.yaml": create_flag("create-checkout", "checkout", rollout=10)})
        self.review(1, "bob", "APPROVED")
        self.merge(1, method)

    def open_weakening(self, number: int) -> None:
        """Pull request `number` by alice weakens `production-rollouts` to one vote from alice, who may
        approve her own change, and in the same pull request ramps `checkout` to 100 %; alice approves."""
        weaker = policy(
            "production-rollouts",
            "feature_flag.update",
            1,
            match={"environments": ["production"]},
            approver_config={"quorum": 1, "users": ["alice"]},
            allow_self_approve=True,
        )
        ramp_to_100 = ramp("ramp-checkout", "checkout", 100)
        self.open(
            number, {"policies/production-rollouts.yaml": weaker, "changes/ramp-checkout.yaml": ramp_to_100}
        )
        self.review(number, "alice", "APPROVED")

    def open(
        self,
        number: int,
        files: dict[str, Any],
        *,
        login: str = "alice",
        author: tuple[str, str] = ALICE.identity,
        message: str = "Change flags",
    ) -> Pull:
        """Branch off the tracked branch, commit `files` as `author`, and open pull request `number`."""
        base = self.repo.head(self.branch)
        branch = f"pr-{number}"
        self.repo.git("checkout", "-q", "-b", branch, self.branch)
        pull = Pull(number, branch, login, base, self.repo.clock + 30)
        self.pulls[number] = pull
        self.gh.add_pull(
            number,
            user=login,
            head_sha=base,
            base_ref=self.branch,
            base_sha=base,
            created_at=iso(pull.created),
        )
        self.push(number, files, login=login, author=author, message=message)
        return pull

    def push(
        self,
        number: int,
        files: dict[str, Any],
        *,
        login: str | None = "alice",
        author: tuple[str, str] = ALICE.identity,
        message: str = "Change flags",
        remove: tuple[str, ...] = (),
    ) -> str:
        """Another commit on the pull request's branch (a co-author goes in `message`)."""
        pull = self.pulls[number]
        self.repo.git("checkout", "-q", pull.branch)
        for path, content in files.items():
            self.repo.write(path, content)
        for path in remove:
            self.repo.remove(path)
        sha = self.repo.commit(message, author=author)
        self.repo.git("checkout", "-q", self.branch)
        pull.commits.append(sha)
        self.gh.pulls[number]["head"]["sha"] = sha
        self.gh.add_commit(
            number,
            sha,
            login=login,
            email=author[1],
            name=author[0],
            message=message,
            date=iso(self.repo.clock),
        )
        for path in files:
            if not any(f["filename"] == path for f in self.gh.files.get(number, [])):
                self.gh.add_file(number, path)
        self.gh.pulls[number]["changed_files"] = len(self.gh.files.get(number, []))
        return sha

    def review(
        self,
        number: int,
        login: str,
        state: str,
        *,
        commit: str | None = None,
        at: int | None = None,
        body: str = "",
    ) -> None:
        """A review of the pull request's head (or `commit`), submitted at `at` (default: now)."""
        self.repo.clock += 60
        when = at if at is not None else self.repo.clock
        self.gh.add_review(
            number,
            login,
            state,
            commit_id=commit or self.pulls[number].head,
            submitted_at=iso(when),
            body=body,
        )

    def merge(
        self,
        number: int,
        method: MergeMethod = "merge",
        *,
        merged_by: str = "carol",
        merger: tuple[str, str] = CAROL.identity,
    ) -> list[str]:
        """Merge on the tracked branch as GitHub's button does; return the landing commits, oldest first."""
        pull = self.pulls[number]
        if method == "merge":
            landed = [self._merge_commit(pull, merger)]
        elif method == "squash":
            self.repo.git("merge", "--squash", "-q", pull.branch)
            landed = [
                self.repo.commit(f"Squashed pull request #{number}", author=ALICE.identity, committer=GITHUB)
            ]
        else:
            landed = [self._cherry_pick(sha) for sha in pull.commits]
        self.gh.pulls[number].update(
            state="closed",
            merged=True,
            merged_at=iso(self.repo.clock),
            merge_commit_sha=landed[-1],
            closed_at=iso(self.repo.clock),
            updated_at=iso(self.repo.clock),
        )
        self.gh.pulls[number]["merged_by"] = github_user(merged_by)
        for sha in landed:
            self.gh.link_commit(sha, number, branch=self.branch)
        return landed

    def close(self, number: int) -> None:
        self.repo.clock += 60
        self.gh.pulls[number].update(state="closed", closed_at=iso(self.repo.clock))

    def push_main(
        self,
        files: dict[str, Any],
        *,
        author: tuple[str, str] = ALICE.identity,
        committer: tuple[str, str] | None = None,
    ) -> str:
        """A direct push to the tracked branch, without a pull request."""
        for path, content in files.items():
            self.repo.write(path, content)
        return self.repo.commit("Direct change", author=author, committer=committer)

    def _merge_commit(self, pull: Pull, merger: tuple[str, str]) -> str:
        self.repo.clock += 60
        date = f"{self.repo.clock} +0000"
        self.repo.git(
            "merge",
            "--no-ff",
            "-q",
            "-m",
            f"Merge pull request #{pull.number}",
            pull.branch,
            env={
                "GIT_AUTHOR_NAME": merger[0],
                "GIT_AUTHOR_EMAIL": merger[1],
                "GIT_AUTHOR_DATE": date,
                "GIT_COMMITTER_NAME": GITHUB[0],
                "GIT_COMMITTER_EMAIL": GITHUB[1],
                "GIT_COMMITTER_DATE": date,
            },
        )
        return self.repo.head()

    def _cherry_pick(self, sha: str) -> str:
        self.repo.clock += 60
        self.repo.git(
            "cherry-pick",
            "--allow-empty",
            sha,
            env={
                "GIT_COMMITTER_NAME": GITHUB[0],
                "GIT_COMMITTER_EMAIL": GITHUB[1],
                "GIT_COMMITTER_DATE": f"{self.repo.clock} +0000",
            },
        )
        return self.repo.head()


@contextmanager
def serve(gh: FakeGitHub) -> Iterator[str]:
    """Serve the fake GitHub over real HTTP on 127.0.0.1; yields the API root for GITHUB_API_URL.

    For commands that build their own client from the environment, as GitHub Actions runs them.
    """

    class Handler(BaseHTTPRequestHandler):
        def _forward(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            request = httpx.Request(
                self.command,
                f"http://{self.headers['Host']}{self.path}",
                headers=dict(self.headers.items()),
                content=self.rfile.read(length),
            )
            response = gh.handle(request)
            body = response.read()
            self.send_response(response.status_code)
            for name, value in response.headers.items():
                if name.lower() not in ("content-length", "transfer-encoding"):
                    self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = do_PATCH = _forward

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
